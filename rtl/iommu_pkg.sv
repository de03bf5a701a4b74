`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types shared by every svm-iommu block. Field names follow the PCIe Base Spec and VT-d 5.10
// (see ../../shared/docs/pcie.md and vtd.md, digests with sources).
package iommu_pkg;

  // ---------------------------------------------------------------------------------------------
  // PCIe TLP encodings (pcie.md §1.2)
  // ---------------------------------------------------------------------------------------------
  localparam logic [2:0] FMT_3DW_NODATA = 3'b000;
  localparam logic [2:0] FMT_4DW_NODATA = 3'b001;
  localparam logic [2:0] FMT_3DW_DATA   = 3'b010;
  localparam logic [2:0] FMT_4DW_DATA   = 3'b011;
  localparam logic [2:0] FMT_PREFIX     = 3'b100;

  localparam logic [4:0] TYPE_MEM       = 5'b0_0000;  // MRd / MWr
  localparam logic [4:0] TYPE_MEM_LK    = 5'b0_0001;  // MRdLk
  localparam logic [4:0] TYPE_CPL       = 5'b0_1010;  // Cpl / CplD
  localparam logic [4:0] TYPE_CPL_LK    = 5'b0_1011;  // CplLk / CplDLk
  // Msg / MsgD: Type = 1_0rrr (rrr = routing)

  localparam logic [3:0] E2E_PASID      = 4'b0001;    // End-End prefix type of the PASID prefix (byte 0 = 0x91)

  localparam logic [1:0] AT_UNTRANSLATED = 2'b00;
  localparam logic [1:0] AT_TRANSLATION  = 2'b01;     // ATS Translation Request
  localparam logic [1:0] AT_TRANSLATED   = 2'b10;

  localparam logic [7:0] MSG_ATS_INV_REQ = 8'h01;
  localparam logic [7:0] MSG_ATS_INV_CPL = 8'h02;
  localparam logic [7:0] MSG_PAGE_REQ    = 8'h04;
  localparam logic [7:0] MSG_PRG_RESP    = 8'h05;

  // What the parser found; the rest of the IOMMU dispatches on it.
  typedef enum logic [2:0] {
    TLP_MEM_RD   = 3'd0,   // MRd / MRdLk (AT tells untranslated / translation request / translated)
    TLP_MEM_WR   = 3'd1,
    TLP_CPL      = 3'd2,
    TLP_MSG      = 3'd3,   // Msg / MsgD, any routing; msg_code tells which
    TLP_OTHER    = 3'd4    // well-formed but not handled by the IOMMU (IO, Cfg, AtomicOp, ...)
  } tlp_kind_e;

  // Malformed input found in the first beat. The payload length check of a TLP with data can only
  // finish at its last beat: it is reported on the payload stream (tuser) instead.
  typedef enum logic [2:0] {
    TLP_OK              = 3'd0,
    TLP_ERR_TRUNCATED   = 3'd1,  // fewer bytes than the prefixes + header need
    TLP_ERR_FMT_TYPE    = 3'd2,  // reserved Fmt, or reserved Fmt/Type combination
    TLP_ERR_PREFIX      = 3'd3,  // > 4 prefixes, local after E2E, two PASID prefixes, PASID where not allowed
    TLP_ERR_LENGTH      = 3'd4,  // byte count does not match Fmt/Length (detected in the first beat)
    TLP_ERR_RESERVED    = 3'd5   // a reserved encoding in a field the IOMMU relies on (AT = 11)
  } tlp_err_e;

  // Parsed header of one TLP. dw1..dw3 are the raw header DWs (big-endian byte order folded into
  // a DW as in the spec figures); the decoded fields below are the memory-request and message views.
  typedef struct packed {
    tlp_kind_e   kind;
    tlp_err_e    err;
    logic [2:0]  pfx_cnt;        // number of prefix DWs in front of the header
    logic        pasid_valid;    // a PASID E2E prefix was present
    logic        pmr;            // Privileged Mode Requested (prefix bit 23)
    logic        er;             // Execute Requested (prefix bit 22)
    logic [19:0] pasid;
    logic        other_e2e;      // an End-End prefix other than PASID (the IOMMU answers UR)
    logic [2:0]  fmt;
    logic [4:0]  tlp_type;
    logic [2:0]  tc;
    logic [2:0]  attr;           // {IDO, RO, NS}
    logic        ln;             // Lightweight Notification (reserved in 6.x)
    logic        th;
    logic        td;
    logic        ep;
    logic [1:0]  at;
    logic [9:0]  length;         // in DW, 0 = 1024 (as on the wire)
    logic [15:0] requester_id;   // bytes 4-5 (the completer ID of a completion)
    logic [9:0]  tag;            // {T9, T8, Tag[7:0]} (byte 6; byte 10 of a completion)
    logic [3:0]  last_be;
    logic [3:0]  first_be;
    logic [63:0] addr;           // address with bits 1:0 cleared (3DW: upper 32 bits zero)
    logic [1:0]  ph;             // address bits 1:0 (PH, or NW for a Translation Request)
    logic [7:0]  msg_code;       // byte 7
    logic [31:0] dw1;
    logic [31:0] dw2;
    logic [31:0] dw3;
    logic [12:0] payload_bytes;  // bytes of data the header announces (0 for no-data TLPs)
  } tlp_hdr_t;

  // ---------------------------------------------------------------------------------------------
  // Build-time configuration of iommu_top (one struct; tb/rtl/iommu_tb.sv builds it from plain
  // integer parameters for the simulator). The capability profile itself (VER/CAP/ECAP, HAW) is the
  // register page's (rtl/iommu_reg_pkg.sv, generated from models.vtd.PROFILE).
  // ---------------------------------------------------------------------------------------------
  typedef struct packed {
    int unsigned data_w;         // TLP streams and both AXI data buses (>= 256: prefixes + header in one beat)
    int unsigned iotlb_entries;  // IOTLB size
    int unsigned iotlb_ways;     // IOTLB associativity (entries / ways sets, tree-PLRU per set)
    int unsigned ctx_entries;    // context-cache entries
    int unsigned pe_entries;     // PASID-cache entries
    int unsigned lookup_slots;   // context/PASID lookups in flight
    int unsigned n_walks;        // first-stage walks in flight
    int unsigned max_payload;    // Max_Payload_Size in bytes (read completions are split at it)
    int unsigned rcb;            // Read Completion Boundary in bytes (64 or 128)
    logic [15:0] iommu_rid;      // the IOMMU's own requester ID (completer ID of its completions)
    int unsigned iq_timeout;     // ATS invalidation completion timeout in clock cycles (the PCIe value is
                                 // a wall-clock time; the digests give none: set it for the clock)
    int unsigned iq_wait_slots;  // invalidation wait descriptors pending at once
  } iommu_cfg_t;

  localparam iommu_cfg_t IOMMU_CFG_DEFAULT = '{
    data_w:        256,
    iotlb_entries: 16,
    iotlb_ways:    4,
    ctx_entries:   8,
    pe_entries:    16,
    lookup_slots:  4,
    n_walks:       4,
    max_payload:   256,
    rcb:           64,
    iommu_rid:     16'h0000,
    iq_timeout:    1 << 26,      // ~0.27 s at 250 MHz
    iq_wait_slots: 4
  };

endpackage

`resetall
