`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types and descriptor decoding of the invalidation queue engine (rtl/inv_queue.sv): the 7-bit
// descriptor types, the bits each descriptor defines (everything else is reserved, vtd.md §4.1, §4.2,
// §4.5) and the validation of models.vtd.decode_inv_desc with the IQEI codes of vtd.md §1.10.
package inv_queue_pkg;

  // IQERCD.IQEI codes (vtd §1.10; models.vtd.Iqei)
  localparam logic [3:0] IQEI_NONE            = 4'd0;
  localparam logic [3:0] IQEI_INVALID_TAIL    = 4'd1;
  localparam logic [3:0] IQEI_FETCH_ERROR     = 4'd2;
  localparam logic [3:0] IQEI_INVALID_TYPE    = 4'd3;
  localparam logic [3:0] IQEI_RESERVED_FIELD  = 4'd4;
  localparam logic [3:0] IQEI_INVALID_WIDTH   = 4'd5;
  localparam logic [3:0] IQEI_TAIL_MISALIGNED = 4'd6;
  localparam logic [3:0] IQEI_INVALID_TTM     = 4'd7;

  // Descriptor types {QW0[11:9], QW0[3:0]} (vtd §4.1, §4.2; models.vtd.InvDescType)
  localparam logic [6:0] DT_CC        = 7'h01;  // cc_inv_dsc
  localparam logic [6:0] DT_IOTLB     = 7'h02;  // iotlb_inv_dsc
  localparam logic [6:0] DT_DEV_TLB   = 7'h03;  // dev_tlb_inv_dsc
  localparam logic [6:0] DT_IEC       = 7'h04;  // iec_inv_dsc
  localparam logic [6:0] DT_INV_WAIT  = 7'h05;  // inv_wait_dsc
  localparam logic [6:0] DT_P_IOTLB   = 7'h06;  // p_iotlb_inv_dsc
  localparam logic [6:0] DT_PC        = 7'h07;  // pc_inv_dsc
  localparam logic [6:0] DT_P_DEV_TLB = 7'h08;  // p_dev_tlb_inv_dsc
  localparam logic [6:0] DT_PGRP_RESP = 7'h09;  // page_grp_resp_dsc
  localparam logic [6:0] DT_HPT       = 7'h0a;  // hpt_inv_dsc

  // Type field of an ID-routed message (Msg/MsgD Type 1_0rrr with rrr = 010, pcie.md §1.5, §3.4, §4.2):
  // ATS Invalidate Request, ATS Invalidate Completion and PRG Response all use it.
  localparam logic [4:0] TYPE_MSG_BY_ID = 5'b1_0010;

  // RTADDR.TTM values (vtd §1.6)
  localparam logic [1:0] TTM_LEGACY   = 2'b00;
  localparam logic [1:0] TTM_SCALABLE = 2'b01;
  localparam logic [1:0] TTM_ABORT    = 2'b11;

  // The capabilities that decide which descriptors exist and which fields are reserved
  // (models.vtd.InvDesc.REQUIRES / CAP_GATED): ECAP.DT, PRS, IR, HPTS, PDS.
  typedef struct packed {
    logic dt;
    logic prs;
    logic ir;
    logic hpts;
    logic pds;
  } iq_caps_t;

  // The bits of QW0/QW1 a descriptor type defines; every other bit of the 256-bit descriptor (QW2 and
  // QW3 always) is reserved and must be 0 (IQEI 4). One line per field, as vtd §4.2 / §4.5 list them.
  function automatic logic [127:0] defined_bits(input logic [6:0] dtype, input logic pds);
    logic [63:0] q0, q1;
    q0 = 64'h0000_0000_0000_0e0f;             // type[3:0] (3:0), type[6:4] (11:9)
    q1 = '0;
    unique case (dtype)
      DT_CC: begin
        q0 |= 64'h0000_0000_0000_0030;        // G 5:4
        q0 |= 64'h0000_0000_ffff_0000;        // DID 31:16
        q0 |= 64'h0000_ffff_0000_0000;        // SID 47:32
        q0 |= 64'h0003_0000_0000_0000;        // FM 49:48
      end
      DT_IOTLB: begin
        q0 |= 64'h0000_0000_0000_00f0;        // G 5:4, DW 6, DR 7
        q0 |= 64'h0000_0000_ffff_0000;        // DID 31:16
        q1 |= 64'h0000_0000_0000_007f;        // AM 5:0, IH 6
        q1 |= 64'hffff_ffff_ffff_f000;        // ADDR 63:12
      end
      DT_DEV_TLB: begin
        q0 |= 64'h0000_0000_0000_f000;        // PFSID[3:0] 15:12
        q0 |= 64'h0000_0000_001f_0000;        // MIP 20:16
        q0 |= 64'h0000_ffff_0000_0000;        // SID 47:32
        q0 |= 64'hfff0_0000_0000_0000;        // PFSID[15:4] 63:52
        q1 |= 64'h0000_0000_0000_0001;        // S 0
        q1 |= 64'hffff_ffff_ffff_f000;        // ADDR 63:12
      end
      DT_IEC: begin
        q0 |= 64'h0000_0000_0000_0010;        // G 4
        q0 |= 64'h0000_0000_f800_0000;        // IM 31:27
        q0 |= 64'h0000_ffff_0000_0000;        // IIDX 47:32
      end
      DT_INV_WAIT: begin
        q0 |= 64'h0000_0000_0000_0070;        // IF 4, SW 5, FN 6
        if (pds) q0 |= 64'h0000_0000_0000_0080;  // PD 7 (reserved without ECAP.PDS)
        q0 |= 64'hffff_ffff_0000_0000;        // status data 63:32
        q1 |= 64'hffff_ffff_ffff_fffc;        // status address 63:2
      end
      DT_P_IOTLB: begin
        q0 |= 64'h0000_0000_0000_0030;        // G 5:4
        q0 |= 64'h0000_0000_ffff_0000;        // DID 31:16
        q0 |= 64'h000f_ffff_0000_0000;        // PASID 51:32
        q1 |= 64'h0000_0000_0000_007f;        // AM 5:0, IH 6
        q1 |= 64'hffff_ffff_ffff_f000;        // ADDR 63:12
      end
      DT_PC: begin
        q0 |= 64'h0000_0000_0000_0030;        // G 5:4
        q0 |= 64'h0000_0000_ffff_0000;        // DID 31:16
        q0 |= 64'h000f_ffff_0000_0000;        // PASID 51:32
      end
      DT_P_DEV_TLB: begin
        q0 |= 64'h0000_0000_0000_01f0;        // MIP 8:4
        q0 |= 64'h0000_0000_0000_f000;        // PFSID[3:0] 15:12
        q0 |= 64'h0000_0000_ffff_0000;        // SID 31:16
        q0 |= 64'h000f_ffff_0000_0000;        // PASID 51:32
        q0 |= 64'hfff0_0000_0000_0000;        // PFSID[15:4] 63:52
        q1 |= 64'h0000_0000_0000_0001;        // GI 0
        q1 |= 64'h0000_0000_0000_0800;        // S 11
        q1 |= 64'hffff_ffff_ffff_f000;        // ADDR 63:12
      end
      DT_PGRP_RESP: begin
        q0 |= 64'h0000_0000_0000_0010;        // PP 4
        q0 |= 64'h0000_0000_0000_f000;        // RC 15:12
        q0 |= 64'h0000_0000_ffff_0000;        // RID 31:16
        q0 |= 64'h000f_ffff_0000_0000;        // PASID 51:32
        q1 |= 64'h0000_0000_0000_0004;        // IGN 2 (3.x LPIG: ignored, never reserved)
        q1 |= 64'h0000_0000_0000_0ff8;        // PRGI 11:3
      end
      DT_HPT: begin
        q0 |= 64'h0000_0000_0000_0030;        // G 5:4
        q0 |= 64'h0000_0000_ffff_0000;        // HPTDID 31:16
        q1 |= 64'h0000_0000_0000_00ff;        // AM 5:0, IH 7:6
        q1 |= 64'hffff_ffff_ffff_f000;        // ADDR 63:12
      end
      default: ;
    endcase
    return {q1, q0};
  endfunction

  // models.vtd.decode_inv_desc plus the legacy-mode rule of models.iommu_queues (vtd §4.1 Table 26),
  // in that order: 3 for an unknown type or one the profile lacks, 4 for a reserved bit, 4 for a
  // reserved granularity, 3 for a type above 0x5 in legacy mode (TTM = 00). IQEI_NONE: valid.
  function automatic logic [3:0] decode_error(input logic [255:0] d, input iq_caps_t caps,
                                              input logic legacy);
    logic [6:0] dtype;
    logic [1:0] g;
    logic       type_ok, g_ok;
    dtype = {d[11:9], d[3:0]};
    g     = d[5:4];
    unique case (dtype)
      DT_CC, DT_IOTLB, DT_INV_WAIT, DT_P_IOTLB, DT_PC: type_ok = 1'b1;
      DT_DEV_TLB, DT_P_DEV_TLB: type_ok = caps.dt;
      DT_IEC:                   type_ok = caps.ir;
      DT_PGRP_RESP:             type_ok = caps.prs;
      DT_HPT:                   type_ok = caps.hpts;
      default:                  type_ok = 1'b0;
    endcase
    unique case (dtype)
      DT_CC, DT_IOTLB: g_ok = g != 2'b00;    // 01 global, 10 domain, 11 device / page
      DT_P_IOTLB:      g_ok = g[1];          // 10 PASID, 11 page-in-PASID
      DT_PC:           g_ok = g != 2'b10;    // 00 domain, 01 PASID, 11 global
      default:         g_ok = 1'b1;
    endcase
    if (!type_ok) return IQEI_INVALID_TYPE;
    if (d[255:128] != '0 || (d[127:0] & ~defined_bits(dtype, caps.pds)) != '0) return IQEI_RESERVED_FIELD;
    if (!g_ok) return IQEI_RESERVED_FIELD;
    if (legacy && dtype > DT_INV_WAIT) return IQEI_INVALID_TYPE;
    return IQEI_NONE;
  endfunction

  // The queue configuration checks made before each fetch, in the order of models.iommu_queues
  // (InvalidationQueue._fetch): TTM, descriptor width, tail inside the queue, tail alignment.
  // qt is IQT bits 18:4 (16-byte units); the queue holds 256 << qs such units.
  function automatic logic [3:0] config_error(input logic [1:0] ttm, input logic dw, input logic [2:0] qs,
                                              input logic [14:0] qt, input logic smts, input logic adms);
    if (ttm == 2'b10 || (ttm == TTM_SCALABLE && !smts) || (ttm == TTM_ABORT && !adms))
      return IQEI_INVALID_TTM;
    if (!dw && (ttm == TTM_SCALABLE || ttm == TTM_ABORT)) return IQEI_INVALID_WIDTH;
    if (dw && !(smts || adms)) return IQEI_INVALID_WIDTH;
    if ({1'b0, qt} >= (16'd256 << qs)) return IQEI_INVALID_TAIL;
    if (dw && qt[0]) return IQEI_TAIL_MISALIGNED;
    return IQEI_NONE;
  endfunction

  // One invalidation wait (inv_wait_dsc) as the engine keeps it until it has completed (vtd §4.4).
  typedef struct packed {
    logic        if_;   // IF: set ICS.IWC
    logic        sw;    // SW: write data to addr
    logic        fn;    // FN: later descriptors wait for this one
    logic        pd;    // PD: ordered after the page requests received before it
    logic [61:0] addr;  // status address bits 63:2
    logic [31:0] data;  // status data
  } iq_wait_t;

endpackage

`resetall
