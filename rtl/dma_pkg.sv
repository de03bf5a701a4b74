`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types and helpers of the translated-DMA engines (dma_rd, dma_wr) and the TLP transmitter (tlp_tx).
// Field names follow pcie.md (§1.2-§1.4); the completion rules are those of models.tlp
// (read_completions / error_completion, PCIe TL §2.3.1.1 Tables 2-40/2-41).
package dma_pkg;

  import iommu_pkg::*;

  // Completion Status (pcie.md §1.4); every other value is reserved
  /* verilator lint_off UNUSEDPARAM */  // the encodings are listed whole; each block uses some of them
  localparam logic [2:0] CPL_SC  = 3'b000;
  localparam logic [2:0] CPL_UR  = 3'b001;
  localparam logic [2:0] CPL_CRS = 3'b010;
  localparam logic [2:0] CPL_CA  = 3'b100;
  /* verilator lint_on UNUSEDPARAM */

  // One TLP for tlp_tx: prefix DWs then header DWs, as drawn in the spec (DW bit 31 = the first
  // wire bit, so bits 31:24 are the first byte sent). A payload, if any, follows on the source's
  // payload stream (payload byte 0 in lane 0, tlast on its last beat) and must match the Length the
  // header announces; tlp_tx does not look inside the DWs.
  typedef struct packed {
    logic [3:0]   n_dw;          // prefix + header DWs: 3..8 (up to 4 prefixes + a 4-DW header)
    logic         has_data;      // a payload follows
    logic [255:0] dws;           // DW k in bits [32k+31:32k]; DWs at k >= n_dw are ignored
  } tx_hdr_t;

  // A memory read after translation, for dma_rd. status = CPL_SC: read host memory and answer with
  // CplDs; any other status: answer with one Cpl of that status without touching memory (the
  // translation failed: UR, or CA, pcie.md §1.4). locked: the request was an MRdLk; its completions
  // are CplLk/CplDLk (models.iommu answers every MRdLk with UR, i.e. one CplLk).
  typedef struct packed {
    logic [63:0] addr;           // translated address of the first DW (bits 1:0 are ignored)
    logic [4:0]  ua_lo;          // untranslated address bits 6:2 (Lower Address and RCB boundaries)
    logic [15:0] requester_id;
    logic [9:0]  tag;            // 10-bit tag, echoed in the completions
    logic [2:0]  tc;
    logic [2:0]  attr;           // {IDO, RO, NS}, echoed
    logic [9:0]  length;         // DW count, 0 = 1024 (as on the wire)
    logic [3:0]  first_be;
    logic [3:0]  last_be;
    logic [2:0]  status;
    logic        locked;
  } rd_req_t;

  // A memory write after translation, for dma_wr; its payload comes separately, as
  // tlp_rx_parser emits it. drop: consume the payload and write nothing (failed translation).
  typedef struct packed {
    logic [63:0] addr;           // translated address of the first DW (bits 1:0 are ignored)
    logic [9:0]  length;         // DW count, 0 = 1024
    logic [3:0]  first_be;
    logic [3:0]  last_be;
    logic        drop;
  } wr_req_t;

  // Offset of the first enabled byte in a DW (0 when none is enabled; TL Table 2-41)
  function automatic logic [1:0] be_first(input logic [3:0] be);
    if (be[0]) return 2'd0;
    if (be[1]) return 2'd1;
    if (be[2]) return 2'd2;
    if (be[3]) return 2'd3;
    return 2'd0;
  endfunction

  // One past the last enabled byte in a DW (0 when none is enabled)
  function automatic logic [2:0] be_end(input logic [3:0] be);
    if (be[3]) return 3'd4;
    if (be[2]) return 3'd3;
    if (be[1]) return 3'd2;
    if (be[0]) return 3'd1;
    return 3'd0;
  endfunction

  // One past the last enabled byte, from the DW-aligned start of the request (TL Table 2-40; a
  // zero-length read, Length 1 with no byte enabled, counts as one byte).
  function automatic logic [12:0] enabled_end(input logic [10:0] len_dw, input logic [3:0] first_be,
                                              input logic [3:0] last_be);
    if (len_dw == 11'd1) return first_be == 4'd0 ? 13'd1 : 13'(be_end(first_be));
    return {len_dw - 11'd1, 2'b00} + 13'(be_end(last_be));
  endfunction

  // Byte Count of the first (or only) completion of a read (TL §2.3.1.1 Table 2-40)
  function automatic logic [12:0] byte_enable_count(input logic [10:0] len_dw, input logic [3:0] first_be,
                                                    input logic [3:0] last_be);
    return enabled_end(len_dw, first_be, last_be) - 13'(be_first(first_be));
  endfunction

  // Lower Address of the first (or only) completion of a read (TL Table 2-41)
  function automatic logic [6:0] lower_address(input logic [4:0] addr_6_2, input logic [3:0] first_be);
    return {addr_6_2, be_first(first_be)};
  endfunction

  // DW count 1..1024 from the wire encoding
  function automatic logic [10:0] len_dw(input logic [9:0] length);
    return length == 10'd0 ? 11'd1024 : {1'b0, length};
  endfunction

  // A Cpl/CplD (CplLk/CplDLk) header (pcie.md §1.4): Requester ID, Tag, TC and Attr come from the
  // request (TL §2.2.9.1). payload_dw = 0 makes a Cpl without data. BCM is 0 (PCIe completers).
  // byte_count is the field: a count of 4096 is sent as 0, i.e. pass the count's low 12 bits.
  function automatic tx_hdr_t cpl_hdr(input logic [15:0] completer_id, input logic [15:0] requester_id,
                                      input logic [9:0] tag, input logic [2:0] tc, input logic [2:0] attr,
                                      input logic [2:0] status, input logic [11:0] byte_count,
                                      input logic [6:0] lower_addr, input logic [10:0] payload_dw,
                                      input logic locked);
    tx_hdr_t h;
    logic    data;
    data       = payload_dw != 11'd0;
    h          = '0;
    h.n_dw     = 4'd3;
    h.has_data = data;
    h.dws[31:0]  = {data ? FMT_3DW_DATA : FMT_3DW_NODATA, locked ? TYPE_CPL_LK : TYPE_CPL,
                    tag[9], tc, tag[8], attr[2], 1'b0 /* LN */, 1'b0 /* TH */, 1'b0 /* TD */,
                    1'b0 /* EP */, attr[1:0], 2'b00 /* AT */, payload_dw[9:0]};
    h.dws[63:32] = {completer_id, status, 1'b0 /* BCM */, byte_count};
    h.dws[95:64] = {requester_id, tag[7:0], 1'b0, lower_addr};
    return h;
  endfunction

endpackage

`resetall
