`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types of the request-to-PASID-entry lookup (rtl/pasid_lookup.sv): the request, the response, the
// cached context / PASID entry contents and the two invalidation commands. Field names follow VT-d
// 5.10 (../../shared/docs/vtd.md §2, §4.2). Kept apart from iommu_pkg until the lead folds them in.
package pasid_lookup_pkg;

  // What kind of request is looked up (vtd §2.6; the checks of FAULT_PRIORITY depend on it).
  typedef enum logic [2:0] {
    PL_READ        = 3'd0,  // untranslated memory read (AT=00)
    PL_WRITE       = 3'd1,  // untranslated memory write
    PL_ATOMIC      = 3'd2,  // untranslated AtomicOp
    PL_TRANSLATION = 3'd3,  // ATS translation request (AT=01)
    PL_TRANSLATED  = 3'd4,  // translated request (AT=10), read, write or atomic alike
    PL_PAGE_REQ    = 3'd5   // PRI page request (before it is written into the PRQ)
  } pl_kind_e;

  // Fault reasons the lookup can report (vtd §6.1; value = the FRCD.FR code). PL_FR_NONE = no fault.
  typedef enum logic [7:0] {
    PL_FR_NONE   = 8'h00,
    PL_FR_RTA_1  = 8'h30,  // TTM invalid (or legacy mode, which is not implemented)
    PL_FR_RTA_2  = 8'h31,  // TTM=00, request with PASID
    PL_FR_RTA_3  = 8'h32,  // TTM=00, page request
    PL_FR_RTA_4  = 8'h33,  // TTM=11, abort-DMA mode
    PL_FR_RTA_5  = 8'h34,  // ER=1, VER major >= 8
    PL_FR_SRT_1  = 8'h38,  // root entry read error
    PL_FR_SRT_2  = 8'h39,  // LP / UP = 0
    PL_FR_SRT_3  = 8'h3a,  // root entry reserved bits
    PL_FR_SCT_1  = 8'h40,  // context entry read error
    PL_FR_SCT_2  = 8'h41,  // context P=0
    PL_FR_SCT_3  = 8'h42,  // context reserved bits
    PL_FR_SCT_4  = 8'h43,  // context invalid programming
    PL_FR_SCT_5  = 8'h44,  // DTE=0 for a translation / translated request
    PL_FR_SCT_6  = 8'h45,  // PASIDE=0 for a request with PASID
    PL_FR_SCT_7  = 8'h46,  // PASID above the PDTS limit
    PL_FR_SCT_8  = 8'h47,  // PRE=0 for a page request
    PL_FR_SCT_9  = 8'h48,  // request with PASID carries the RID_PASID value
    PL_FR_SCT_10 = 8'h49,  // translated request with PASID, EPTR (or PTRS) = 0
    PL_FR_SPD_1  = 8'h50,  // PASID directory entry read error
    PL_FR_SPD_2  = 8'h51,  // directory P=0
    PL_FR_SPD_3  = 8'h52,  // directory reserved bits
    PL_FR_SPT_1  = 8'h58,  // PASID entry read error
    PL_FR_SPT_2  = 8'h59,  // PASID entry P=0
    PL_FR_SPT_3  = 8'h5a,  // PASID entry reserved bits
    PL_FR_SPT_4  = 8'h5b,  // PASID entry invalid programming
    PL_FR_SPT_5  = 8'h5c,  // ER=1, VER major <= 7
    PL_FR_SPT_6  = 8'h5d,  // supervisor request with SRE=0
    PL_FR_SGN_10 = 8'h89   // PASID wider than ECAP.PSS
  } pl_fault_e;

  typedef struct packed {
    logic [15:0] rid;          // requester ID {bus, devfn}
    logic        pasid_valid;  // the request carries a PASID prefix
    logic [19:0] pasid;
    logic        pmr;          // Privileged Mode Requested (ignored without PASID)
    logic        er;           // Execute Requested (ignored without PASID)
    pl_kind_e    kind;
  } pl_req_t;

  // What a context-cache entry holds: the context entry fields the later checks and the response
  // need. Only entries that passed the context-stage checks (P, reserved, invalid) are cached.
  typedef struct packed {
    logic        fpd;
    logic        dte;
    logic        paside;
    logic        pre;
    logic        eptr;
    logic [2:0]  pdts;
    logic [51:0] pasiddirptr;  // address bits 63:12
    logic [19:0] rid_pasid;    // effective: 0 when ECAP.RPS=0
    logic        rid_priv;     // effective: 0 when ECAP.RPRIVS=0
  } pl_ctx_t;

  // What a PASID-cache entry holds: the PASID entry fields the first stage needs. fpd is the OR of
  // the PASID directory entry's FPD and the PASID entry's FPD (the context FPD comes from the
  // context used). Only entries that passed the PASID-entry checks (P, reserved, invalid) are cached.
  typedef struct packed {
    logic        fpd;
    logic [15:0] did;
    logic [2:0]  pgtt;
    logic [1:0]  fspm;
    logic [51:0] fsptptr;      // address bits 63:12
    logic        sre;
    logic        wpe;
    logic        eafe;
    logic        pwsnp;
    logic        pgsnp;
  } pl_pe_t;

  // The answer to one lookup. disabled: GSTS.TES=0 (vtd §2.6 step 1), nothing was looked up.
  // Otherwise reason != PL_FR_NONE is a fault and fpd says whether an FPD bit was seen on the way
  // (a qualified fault is then not recorded, vtd §2.6). Without a fault: pasid is the PASID the
  // request is processed with (its own or RID_PASID), priv its privilege (PMR or RID_PRIV), ctx
  // the context entry used and, when pe_valid (every kind but PL_TRANSLATED), pe the PASID entry.
  // The fields a fault leaves undetermined are don't-care.
  typedef struct packed {
    logic        disabled;
    pl_fault_e   reason;
    logic        fpd;
    logic        pe_valid;
    logic [19:0] pasid;
    logic        priv;
    pl_ctx_t     ctx;
    pl_pe_t      pe;
  } pl_rsp_t;

  // cc_inv_dsc in scalable mode (vtd §4.2, §4.3): g = 11 device-selective (sid under the function
  // mask fm), anything else (01 global, 10 domain: DID is ignored in scalable mode) drops every entry.
  typedef struct packed {
    logic [1:0]  g;
    logic [15:0] sid;
    logic [1:0]  fm;
  } pl_cc_inv_t;

  // pc_inv_dsc (vtd §4.2, §4.3): g = 00 domain-selective (did), 01 PASID-selective within the domain
  // (did and pasid), anything else (11 global) drops every entry.
  typedef struct packed {
    logic [1:0]  g;
    logic [15:0] did;
    logic [19:0] pasid;
  } pl_pc_inv_t;

  localparam logic [1:0] CC_G_DEVICE = 2'b11;
  localparam logic [1:0] PC_G_DOMAIN = 2'b00;
  localparam logic [1:0] PC_G_PASID  = 2'b01;

endpackage

`resetall
