`resetall
`timescale 1ns / 1ps
`default_nettype none

// Request-to-PASID-entry lookup (vtd.md §2.6 steps 1-9): requester ID (+ PASID) in; the context
// entry and the PASID entry the request is processed with out, or the fault reason and FPD.
//
// Order of checks: exactly the rows of FAULT_PRIORITY (models/iommu.py, docs/fault-priority.md)
// of the stages request, root, context, context_use, pasid_dir, pasid_entry and pasid_use, in table
// order; the first row that fires is the answer. Within a structure: read error, P=0, reserved
// bits, invalid programming. A translated request stops after context_use (it needs no PASID entry).
// FPD: the context, PASID-directory and PASID-entry FPD bits seen on the way are ORed (also from a
// not-present entry) and returned with every answer; the consumer suppresses qualified faults.
//
// Structure fetches (one AXI4 INCR burst each, size = the structure's): root entry 16 B at
// RTA + 16*bus, context entry 32 B at CTP + 32*devfn[6:0] (lower / upper table by devfn[7]),
// PASID directory entry 8 B at PASIDDIRPTR + 8*PASID[19:6], PASID entry 64 B at
// SMPTBLPTR + 64*PASID[5:0]. RRESP SLVERR/DECERR on any beat is a read error of that structure.
//
// Caches (fully associative, flops; round-robin victim when full; a fill of a key already held
// overwrites that entry):
//   context cache, CTX_ENTRIES entries, key = requester ID, filled with a context entry that
//     passed the context-stage checks (also when a request-specific check then fails);
//   PASID cache, PE_ENTRIES entries, key = (requester ID, PASID), filled with a PASID entry that
//     passed the PASID-entry checks; it also holds the directory entry's FPD.
// A lookup probes the context cache when it is accepted and the PASID cache once it knows its PASID:
// on a context hit in the accepting cycle too (the PASID is the request's, or RID_PASID of the cached
// context entry), unless an older lookup is waiting to probe the PASID cache in that cycle (the cache
// has one probe port and the older lookup goes first; the new one probes in a later cycle). Each hit
// saves the reads of that half of the walk.
//
// Concurrency: SLOTS lookups in flight, not hit-under-miss. Each slot has its own AXI ID (the slot
// index), so the reads of different lookups overlap and may come back in any order or interleaved;
// hits are found while older lookups wait for memory, but answers leave in request order (a hit
// behind a miss waits for the miss's answer). The tag is opaque and only returned.
// Latency from acceptance to rsp_valid_o (a lookup accepted in cycle t is answered from cycle t+N
// on): both caches hit = 1 cycle (both probes in the accepting cycle, the answer in the slot
// register), 2 when an older lookup had the PASID-cache probe in that cycle; context hit and PASID
// miss = 2 reads in series (directory, PASID entry; the directory read is set up in the accepting
// cycle); both miss = 4 reads in series (root, context, directory, PASID entry). Each read costs the
// memory's latency plus 3 cycles here (state -> AR register, the AR handshake, last R beat -> next
// state). Measured with tb/axi_mem.py answering without added latency: 19 cycles for a miss at
// AXI_DATA_W=256 (a PASID entry is 2 beats), 29 at 64 (8 beats), 18 at 512. Throughput of hits: one
// per cycle with SLOTS >= 2. The accepting cycle's path runs req_i.rid -> context-cache compare ->
// RID_PASID (a request without PASID) -> PASID-cache compare -> the slot's next state.
//
// Invalidation (cc_inv / pc_inv semantics of vtd §4.3) and lookups in flight: while an
// invalidation is offered, no new lookup is accepted; the invalidation is taken (ready) only
// when no lookup is left in the block (every accepted lookup answered), and applied in that
// cycle. So every lookup accepted before an invalidation completes is answered before it, and
// every lookup accepted after it sees the caches without the invalidated entries; no walk that
// started before an invalidation can fill a cache after it.
//
// Not here: GSTS.TES=0 is answered (disabled) without a lookup, but what that means per request kind
// (pass through, UR, page-request auto response) and the interrupt-window rule for requests
// without PASID (vtd §3.6, it needs the address) belong to the consumer.
//
// Configuration: the capability profile is a set of parameters (defaults = models.vtd.PROFILE);
// GSTS.TES and the root table address / TTM latched by SRTP are inputs, sampled when a lookup is
// accepted (TES, TTM) and when its root read is issued (RTA). The register block changes them only
// while busy_o is 0 (SRTP and TE changes are followed by global invalidations, which drain).
module pasid_lookup
  import pasid_lookup_pkg::*;
#(
  parameter int unsigned AXI_DATA_W  = 256,  // >= 64, power of two
  parameter int unsigned AXI_ID_W    = 4,    // >= $clog2(SLOTS)
  parameter int unsigned TAG_W       = 8,    // opaque request tag, returned with the answer
  parameter int unsigned SLOTS       = 4,    // lookups in flight (>= 2)
  parameter int unsigned CTX_ENTRIES = 8,    // context-cache entries (>= 1)
  parameter int unsigned PE_ENTRIES  = 16,   // PASID-cache entries (>= 1)
  // capability profile (vtd §1.2-§1.4)
  parameter int unsigned HAW         = 48,   // host address width: pointer bits >= HAW are reserved
  parameter int unsigned VER_MAJOR   = 8,    // >= 8: ER=1 faults RTA.5 up front, else SPT.5 later
  parameter int unsigned PSS         = 19,   // ECAP.PSS: PASIDs are PSS+1 bits wide
  parameter bit          SMTS        = 1'b1, // scalable mode (TTM=01 valid)
  parameter bit          ADMS        = 1'b0, // abort-DMA mode (TTM=11 valid)
  parameter bit          RPS         = 1'b1, // context RID_PASID honoured (else PASID 0)
  parameter bit          RPRIVS      = 1'b0, // context RID_PRIV honoured (else 0)
  parameter bit          SRS         = 1'b1, // supervisor requests: PASID entry SRE (else reserved)
  parameter bit          PTRS        = 1'b0, // PASID in translated requests: context EPTR (else reserved)
  parameter bit          HPTS        = 1'b0, // host permission tables: context HPTE, PASID entry HPT fields
  parameter bit          FSTS        = 1'b1, // PGTT=001 first stage supported
  parameter bit          PT          = 1'b0, // PGTT=100 pass-through supported
  parameter bit          FS5LP       = 1'b1, // FSPM=01 (5-level first stage) supported
  parameter bit          SMPWCS      = 1'b1, // PASID entry PWSNP (else reserved)
  parameter bit          SC          = 1'b0, // PASID entry PGSNP (else reserved)
  parameter bit          MTS         = 1'b0, // PASID entry CD, EMTE, PAT (else reserved)
  parameter bit          EAFS        = 1'b0, // PASID entry EAFE (else reserved)
  parameter bit          SSADS       = 1'b0, // PASID entry SSADE (else reserved)
  parameter bit          C           = 1'b1  // root/context/PASID table reads are snooped (ARCACHE)
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  // configuration from the register block
  input  logic                    tes_i,       // GSTS.TES
  input  logic [51:0]             rta_i,       // latched root table address, bits 63:12
  input  logic [1:0]              ttm_i,       // latched RTADDR.TTM
  output logic                    busy_o,      // a lookup is in the block

  // lookups
  input  pl_req_t                 req_i,
  input  logic [TAG_W-1:0]        req_tag_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  output pl_rsp_t                 rsp_o,
  output logic [TAG_W-1:0]        rsp_tag_o,
  output logic                    rsp_valid_o,
  input  logic                    rsp_ready_i,

  // invalidations (from the invalidation queue)
  input  pl_cc_inv_t              cc_inv_i,
  input  logic                    cc_inv_valid_i,
  output logic                    cc_inv_ready_o,
  input  pl_pc_inv_t              pc_inv_i,
  input  logic                    pc_inv_valid_i,
  output logic                    pc_inv_ready_o,

  // AXI4 master. The lookup only reads; the write channels exist so that every structure-fetching
  // block has the same AXI4 port, and are idle (AWVALID = WVALID = 0, BREADY = 1).
  output logic [AXI_ID_W-1:0]     m_axi_awid,
  output logic [63:0]             m_axi_awaddr,
  output logic [7:0]              m_axi_awlen,
  output logic [2:0]              m_axi_awsize,
  output logic [1:0]              m_axi_awburst,
  output logic                    m_axi_awlock,
  output logic [3:0]              m_axi_awcache,
  output logic [2:0]              m_axi_awprot,
  output logic [3:0]              m_axi_awqos,
  output logic                    m_axi_awvalid,
  /* verilator lint_off UNUSEDSIGNAL */  // no write is ever issued
  input  logic                    m_axi_awready,
  /* verilator lint_on UNUSEDSIGNAL */
  output logic [AXI_DATA_W-1:0]   m_axi_wdata,
  output logic [AXI_DATA_W/8-1:0] m_axi_wstrb,
  output logic                    m_axi_wlast,
  output logic                    m_axi_wvalid,
  /* verilator lint_off UNUSEDSIGNAL */  // no write is ever issued
  input  logic                    m_axi_wready,
  input  logic [AXI_ID_W-1:0]     m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  input  logic                    m_axi_bvalid,
  /* verilator lint_on UNUSEDSIGNAL */
  output logic                    m_axi_bready,
  output logic [AXI_ID_W-1:0]     m_axi_arid,
  output logic [63:0]             m_axi_araddr,
  output logic [7:0]              m_axi_arlen,
  output logic [2:0]              m_axi_arsize,
  output logic [1:0]              m_axi_arburst,
  output logic                    m_axi_arlock,
  output logic [3:0]              m_axi_arcache,
  output logic [2:0]              m_axi_arprot,
  output logic [3:0]              m_axi_arqos,
  output logic                    m_axi_arvalid,
  input  logic                    m_axi_arready,
  input  logic [AXI_ID_W-1:0]     m_axi_rid,
  input  logic [AXI_DATA_W-1:0]   m_axi_rdata,
  /* verilator lint_off UNUSEDSIGNAL */  // RRESP[1] = SLVERR/DECERR; OKAY and EXOKAY are both success
  input  logic [1:0]              m_axi_rresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_rlast,
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready
);

  localparam int unsigned SLOT_W    = $clog2(SLOTS);
  localparam int unsigned BUS_BYTES = AXI_DATA_W / 8;
  localparam int unsigned LANE_W    = $clog2(BUS_BYTES);
  localparam int unsigned ENTRY_W   = 512;                          // the largest structure
  localparam int unsigned BEAT_W    = AXI_DATA_W < ENTRY_W ? AXI_DATA_W : ENTRY_W;
  localparam int unsigned BEATS_MAX = ENTRY_W / BEAT_W;
  localparam int unsigned BEAT_IW   = BEATS_MAX > 1 ? $clog2(BEATS_MAX) : 1;

  if (AXI_DATA_W < 64 || (AXI_DATA_W & (AXI_DATA_W - 1)) != 0) begin : g_bad_data_w
    $error("pasid_lookup: AXI_DATA_W must be a power of two >= 64");
  end
  if (SLOTS < 2 || AXI_ID_W < SLOT_W) begin : g_bad_slots
    $error("pasid_lookup: SLOTS must be >= 2 and fit in AXI_ID_W bits");
  end
  if (HAW < 32 || HAW > 52 || PSS > 19) begin : g_bad_profile
    $error("pasid_lookup: HAW must be 32..52 and PSS <= 19");
  end

  // -----------------------------------------------------------------------------------------------
  // Structure layouts (vtd §2.2-§2.5): reserved-bit masks
  // -----------------------------------------------------------------------------------------------
  function automatic logic [ENTRY_W-1:0] span(input int unsigned hi, input int unsigned lo);
    span = '0;
    for (int unsigned i = lo; i <= hi; i++) span[i] = 1'b1;
  endfunction

  // root: 11:1, 75:65, LCTP / UCTP address bits >= HAW
  localparam logic [127:0] ROOT_RSVD = 128'(span(11, 1) | span(75, 65) | span(63, HAW) | span(127, 64 + HAW));
  // context: 8:7, 255:85, PASIDDIRPTR bits >= HAW, HPTE without HPTS, EPTR without PTRS
  localparam logic [255:0] CTX_RSVD = 256'(span(8, 7) | span(255, 85) | span(63, HAW)
                                           | (HPTS ? '0 : span(5, 5)) | (PTRS ? '0 : span(6, 6)));
  // PASID directory: 11:2, SMPTBLPTR bits >= HAW
  localparam logic [63:0]  DIR_RSVD = 64'(span(11, 2) | span(63, HAW));
  // PASID entry, always: the fixed reserved ranges, bit 3 of each PAT entry, HPTPTR bits >= HAW,
  // and every field whose capability is not advertised (PasidEntry.CAP_GATED in models/vtd.py)
  localparam logic [ENTRY_W-1:0] PAT_RSVD = span(99, 99) | span(103, 103) | span(107, 107)
                                          | span(111, 111) | span(115, 115) | span(119, 119)
                                          | span(123, 123) | span(127, 127);
  localparam logic [ENTRY_W-1:0] PE_RSVD = span(5, 5) | span(11, 10) | span(86, 80) | span(95, 91)
      | span(129, 129) | span(139, 136) | span(255, 192) | span(267, 259) | span(511, 336)
      | PAT_RSVD | span(319, 256 + HAW)
      | (SSADS  ? '0 : span(9, 9))
      | (SMPWCS ? '0 : span(87, 87))
      | (SC     ? '0 : span(88, 88))
      | (MTS    ? '0 : span(90, 89) | span(127, 96))
      | (SRS    ? '0 : span(128, 128))
      | (EAFS   ? '0 : span(135, 135))
      | (HPTS   ? '0 : span(258, 256) | span(335, 268));
  localparam logic [ENTRY_W-1:0] FSPTPTR_HI = span(191, 128 + HAW);  // reserved with PGTT=001
  localparam logic [ENTRY_W-1:0] SSPTPTR_HI = span(63, HAW);         // reserved with PGTT=010/011

  localparam logic [2:0] PGTT_FS = 3'b001;
  localparam logic [2:0] PGTT_SS = 3'b010;
  localparam logic [2:0] PGTT_NESTED = 3'b011;
  localparam logic [2:0] PGTT_PT = 3'b100;

  // AXI burst shape of each structure: one INCR burst of the structure's size
  function automatic logic [7:0] burst_len(input int unsigned bytes);
    burst_len = bytes <= BUS_BYTES ? 8'd0 : 8'(bytes / BUS_BYTES - 1);
  endfunction
  function automatic logic [2:0] burst_size(input int unsigned bytes);
    burst_size = 3'($clog2(bytes <= BUS_BYTES ? bytes : BUS_BYTES));
  endfunction

  // -----------------------------------------------------------------------------------------------
  // The request-specific checks of FAULT_PRIORITY (the request alone, or with entries already held)
  // -----------------------------------------------------------------------------------------------
  /* verilator lint_off UNUSEDSIGNAL */  // check functions take whole structures, read some fields
  // ER counts for untranslated reads and translation requests with PASID (pcie §2.2)
  function automatic logic execute_requested(input pl_req_t r);
    execute_requested = r.pasid_valid && r.er && (r.kind == PL_READ || r.kind == PL_TRANSLATION);
  endfunction

  // privilege: PMR of the prefix, or RID_PRIV (effective) without PASID (vtd §2.1)
  function automatic logic privileged(input pl_req_t r, input pl_ctx_t c);
    privileged = r.pasid_valid ? r.pmr : c.rid_priv;
  endfunction

  // PASID > 2^(PDTS+13)-1 (vtd §2.3)
  function automatic logic above_pdts(input logic [19:0] pasid, input logic [2:0] pdts);
    above_pdts = (pasid >> (5'd13 + 5'(pdts))) != 20'd0;
  endfunction

  // stage "request": rows 1-7
  function automatic pl_fault_e request_check(input pl_req_t r, input logic [1:0] ttm);
    if (ttm == 2'b10 || (ttm == 2'b11 && !ADMS) || (ttm == 2'b01 && !SMTS)) return PL_FR_RTA_1;
    if (ttm == 2'b00 && r.pasid_valid) return PL_FR_RTA_2;
    if (ttm == 2'b00 && r.kind == PL_PAGE_REQ) return PL_FR_RTA_3;
    if (ttm == 2'b11) return PL_FR_RTA_4;
    if (ttm == 2'b00) return PL_FR_RTA_1;  // legacy mode is not implemented
    if (r.pasid_valid && r.kind != PL_PAGE_REQ && (r.pasid >> (PSS + 1)) != 20'd0) return PL_FR_SGN_10;
    if (VER_MAJOR >= 8 && execute_requested(r)) return PL_FR_RTA_5;
    return PL_FR_NONE;
  endfunction

  // stage "context_use": rows 15-20
  function automatic pl_fault_e context_use_check(input pl_req_t r, input pl_ctx_t c);
    if ((r.kind == PL_TRANSLATION || r.kind == PL_TRANSLATED) && !c.dte) return PL_FR_SCT_5;
    if (r.pasid_valid && !c.paside) return PL_FR_SCT_6;
    if (r.pasid_valid && above_pdts(r.pasid, c.pdts)) return PL_FR_SCT_7;
    if (r.kind == PL_PAGE_REQ && !c.pre) return PL_FR_SCT_8;
    if (r.pasid_valid && r.pasid == c.rid_pasid) return PL_FR_SCT_9;
    if (r.kind == PL_TRANSLATED && r.pasid_valid && !(PTRS && c.eptr)) return PL_FR_SCT_10;
    return PL_FR_NONE;
  endfunction

  // stage "pasid_use": rows 28-29
  function automatic pl_fault_e pasid_use_check(input pl_req_t r, input pl_ctx_t c, input pl_pe_t p);
    if (VER_MAJOR <= 7 && execute_requested(r)) return PL_FR_SPT_5;
    if (r.kind != PL_PAGE_REQ && privileged(r, c) && !p.sre) return PL_FR_SPT_6;
    return PL_FR_NONE;
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Structure decode and the checks of one fetched entry
  // -----------------------------------------------------------------------------------------------
  function automatic pl_ctx_t ctx_decode(input logic [255:0] e);
    ctx_decode = '{fpd: e[1], dte: e[2], paside: e[3], pre: e[4], eptr: e[6], pdts: e[11:9],
                   pasiddirptr: e[63:12], rid_pasid: RPS ? e[83:64] : 20'd0,
                   rid_priv: RPRIVS ? e[84] : 1'b0};
  endfunction

  // context invalid programming (SCT.4): PRE without DTE, RID_PASID above PDTS, EPTR without PASIDE
  function automatic logic ctx_invalid(input pl_ctx_t c);
    ctx_invalid = (c.pre && !c.dte) || above_pdts(c.rid_pasid, c.pdts) || (c.eptr && !c.paside);
  endfunction

  // fpd here is the entry's own FPD; the caller ORs the directory entry's in
  function automatic pl_pe_t pe_decode(input logic [ENTRY_W-1:0] e);
    pe_decode = '{fpd: e[1], did: e[79:64], pgtt: e[8:6], fspm: e[131:130], fsptptr: e[191:140],
                  sre: e[128], wpe: e[132], eafe: e[135], pwsnp: e[87], pgsnp: e[88]};
  endfunction

  function automatic logic pe_reserved(input logic [ENTRY_W-1:0] e);
    logic [2:0] pgtt;
    pgtt = e[8:6];
    pe_reserved = (e & PE_RSVD) != '0
               || (pgtt == PGTT_FS && (e & FSPTPTR_HI) != '0)
               || ((pgtt == PGTT_SS || pgtt == PGTT_NESTED) && (e & SSPTPTR_HI) != '0);
  endfunction

  // PASID entry invalid programming (SPT.4): only first stage (FSTS) and pass-through (PT)
  function automatic logic pe_invalid(input pl_pe_t p);
    if (p.pgtt == PGTT_FS) return !FSTS || p.fspm[1] || (p.fspm == 2'b01 && !FS5LP);
    if (p.pgtt == PGTT_PT) return !PT;
    return 1'b1;
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // -----------------------------------------------------------------------------------------------
  // Lookup slots: a circular queue; head answers first
  // -----------------------------------------------------------------------------------------------
  typedef enum logic [3:0] {
    S_ROOT_AR,   // root entry read to issue
    S_ROOT_R,    // root entry read issued
    S_CTX_AR,
    S_CTX_R,
    S_PE_PROBE,  // PASID cache to probe
    S_DIR_AR,
    S_DIR_R,
    S_PE_AR,
    S_PE_R,
    S_DONE       // answer ready
  } state_e;

  state_e                    st_q       [SLOTS], st_d       [SLOTS];
  pl_req_t                   req_q      [SLOTS], req_d      [SLOTS];
  logic [TAG_W-1:0]          tag_q      [SLOTS], tag_d      [SLOTS];
  logic                      disabled_q [SLOTS], disabled_d [SLOTS];
  pl_fault_e                 reason_q   [SLOTS], reason_d   [SLOTS];
  logic [19:0]               pasid_q    [SLOTS], pasid_d    [SLOTS];  // the PASID processed with
  pl_ctx_t                   ctx_q      [SLOTS], ctx_d      [SLOTS];  // fpd: the context FPD
  pl_pe_t                    pe_q       [SLOTS], pe_d       [SLOTS];  // fpd: directory | entry FPD
  logic [63:0]               addr_q     [SLOTS], addr_d     [SLOTS];  // structure being fetched
  logic [ENTRY_W-1:0]        buf_q      [SLOTS], buf_d      [SLOTS];  // beats received so far
  logic [BEAT_IW-1:0]        beat_q     [SLOTS], beat_d     [SLOTS];
  logic                      rerr_q     [SLOTS], rerr_d     [SLOTS];  // an earlier beat had an error

  logic [SLOT_W-1:0] head_q, head_d;
  logic [SLOT_W:0]   count_q, count_d;

  function automatic logic [SLOT_W-1:0] slot_add(input logic [SLOT_W-1:0] a, input logic [SLOT_W:0] b);
    logic [SLOT_W+1:0] s;
    s = (SLOT_W + 2)'(a) + (SLOT_W + 2)'(b);
    if (s >= (SLOT_W + 2)'(SLOTS)) s -= (SLOT_W + 2)'(SLOTS);
    return s[SLOT_W-1:0];
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Caches
  // -----------------------------------------------------------------------------------------------
  localparam int unsigned CTX_KEY_W = 16;
  localparam int unsigned PE_KEY_W  = 36;  // {rid, pasid}
  localparam int unsigned CTX_W     = $bits(pl_ctx_t);
  localparam int unsigned PE_W      = $bits(pl_pe_t);

  logic                              ctx_hit, ctx_fill, pe_hit, pe_fill;
  logic [CTX_W-1:0]                  ctx_hit_data;
  logic [PE_W-1:0]                   pe_hit_data;
  logic [PE_KEY_W-1:0]               pe_probe_key, pe_fill_key;
  logic [15:0]                       ctx_fill_key;
  pl_ctx_t                           ctx_fill_data;
  pl_pe_t                            pe_fill_data;
  logic [CTX_ENTRIES-1:0]            ctx_kill;
  logic [PE_ENTRIES-1:0]             pe_kill;
  logic [CTX_ENTRIES-1:0][CTX_KEY_W-1:0] ctx_keys;
  logic [PE_ENTRIES-1:0][PE_KEY_W-1:0]   pe_keys;
  logic [PE_ENTRIES-1:0][PE_W-1:0]       pe_datas;

  pasid_lookup_cache #(.ENTRIES(CTX_ENTRIES), .KEY_W(CTX_KEY_W), .DATA_W(CTX_W)) u_ctx_cache (
    .clk_i, .rst_ni,
    .probe_key_i (req_i.rid),
    .probe_hit_o (ctx_hit),
    .probe_data_o(ctx_hit_data),
    .fill_i      (ctx_fill),
    .fill_key_i  (ctx_fill_key),
    .fill_data_i (ctx_fill_data),
    .kill_i      (ctx_kill),
    .keys_o      (ctx_keys),
    /* verilator lint_off PINCONNECTEMPTY */  // context invalidations select by key (SID) only
    .datas_o     ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  pasid_lookup_cache #(.ENTRIES(PE_ENTRIES), .KEY_W(PE_KEY_W), .DATA_W(PE_W)) u_pe_cache (
    .clk_i, .rst_ni,
    .probe_key_i (pe_probe_key),
    .probe_hit_o (pe_hit),
    .probe_data_o(pe_hit_data),
    .fill_i      (pe_fill),
    .fill_key_i  (pe_fill_key),
    .fill_data_i (pe_fill_data),
    .kill_i      (pe_kill),
    .keys_o      (pe_keys),
    .datas_o     (pe_datas)
  );

  // Invalidations: taken only when the block is empty (see the header)
  logic inv_pending, cc_inv_take, pc_inv_take;
  assign inv_pending    = cc_inv_valid_i || pc_inv_valid_i;
  assign cc_inv_ready_o = count_q == '0;
  assign pc_inv_ready_o = count_q == '0;
  assign cc_inv_take    = cc_inv_valid_i && cc_inv_ready_o;
  assign pc_inv_take    = pc_inv_valid_i && pc_inv_ready_o;

  // cc_inv: device-selective = SID under the function mask (FM masks function bits 2, 2:1, 2:0)
  logic [15:0] cc_fm_mask;
  always_comb begin
    unique case (cc_inv_i.fm)
      2'd0: cc_fm_mask = 16'h0000;
      2'd1: cc_fm_mask = 16'h0004;
      2'd2: cc_fm_mask = 16'h0006;
      default: cc_fm_mask = 16'h0007;
    endcase
    for (int unsigned i = 0; i < CTX_ENTRIES; i++) begin
      ctx_kill[i] = cc_inv_take && (cc_inv_i.g != CC_G_DEVICE
                                    || ((ctx_keys[i] ^ cc_inv_i.sid) & ~cc_fm_mask) == 16'h0);
    end
  end

  // pc_inv: domain-selective = DID of the cached entry; PASID-selective = DID and PASID
  always_comb begin
    for (int unsigned i = 0; i < PE_ENTRIES; i++) begin
      /* verilator lint_off UNUSEDSIGNAL */  // only the DID of a cached entry selects it
      pl_pe_t d;
      /* verilator lint_on UNUSEDSIGNAL */
      d = pl_pe_t'(pe_datas[i]);
      unique case (pc_inv_i.g)
        PC_G_DOMAIN: pe_kill[i] = pc_inv_take && d.did == pc_inv_i.did;
        PC_G_PASID:  pe_kill[i] = pc_inv_take && d.did == pc_inv_i.did && pe_keys[i][19:0] == pc_inv_i.pasid;
        default:     pe_kill[i] = pc_inv_take;
      endcase
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Acceptance: request-stage checks and the context-cache probe
  // -----------------------------------------------------------------------------------------------
  logic              accept;
  logic [SLOT_W-1:0] tail;
  pl_fault_e         acc_req_fault, acc_use_fault, acc_pe_fault;
  pl_ctx_t           acc_ctx;
  logic [19:0]       acc_pasid;                // the PASID the new lookup is processed with

  assign tail          = slot_add(head_q, count_q);
  assign req_ready_o   = count_q != (SLOT_W + 1)'(SLOTS) && !inv_pending;
  assign accept        = req_valid_i && req_ready_o;
  assign acc_ctx       = pl_ctx_t'(ctx_hit_data);
  assign acc_req_fault = request_check(req_i, ttm_i);
  assign acc_use_fault = context_use_check(req_i, acc_ctx);
  assign acc_pasid     = req_i.pasid_valid ? req_i.pasid : acc_ctx.rid_pasid;

  // -----------------------------------------------------------------------------------------------
  // AR: the oldest slot with a read to issue goes into the AR register
  // -----------------------------------------------------------------------------------------------
  logic              ar_valid_q, ar_load, ar_found;
  logic [SLOT_W-1:0] ar_id_q, ar_sel;
  logic [63:0]       ar_addr_q;
  logic [7:0]        ar_len_q, ar_len_d;
  logic [2:0]        ar_size_q, ar_size_d;

  assign ar_load = !ar_valid_q || m_axi_arready;

  always_comb begin
    ar_found  = 1'b0;
    ar_sel    = head_q;
    for (int unsigned k = 0; k < SLOTS; k++) begin
      logic [SLOT_W-1:0] i;
      i = slot_add(head_q, (SLOT_W + 1)'(k));
      if (!ar_found && (SLOT_W + 1)'(k) < count_q
          && st_q[i] inside {S_ROOT_AR, S_CTX_AR, S_DIR_AR, S_PE_AR}) begin
        ar_found = 1'b1;
        ar_sel   = i;
      end
    end
    unique case (st_q[ar_sel])
      S_ROOT_AR: begin ar_len_d = burst_len(16); ar_size_d = burst_size(16); end
      S_CTX_AR:  begin ar_len_d = burst_len(32); ar_size_d = burst_size(32); end
      S_DIR_AR:  begin ar_len_d = burst_len(8);  ar_size_d = burst_size(8);  end
      default:   begin ar_len_d = burst_len(64); ar_size_d = burst_size(64); end
    endcase
  end

  assign m_axi_arvalid = ar_valid_q;
  assign m_axi_arid    = AXI_ID_W'(ar_id_q);
  assign m_axi_araddr  = ar_addr_q;
  assign m_axi_arlen   = ar_len_q;
  assign m_axi_arsize  = ar_size_q;
  assign m_axi_arburst = 2'b01;                       // INCR
  assign m_axi_arlock  = 1'b0;
  assign m_axi_arcache = C ? 4'b1111 : 4'b0011;       // snooped table reads are cacheable
  assign m_axi_arprot  = 3'b010;                      // data, non-secure, unprivileged
  assign m_axi_arqos   = 4'd0;

  assign m_axi_awid    = '0;
  assign m_axi_awaddr  = '0;
  assign m_axi_awlen   = '0;
  assign m_axi_awsize  = '0;
  assign m_axi_awburst = 2'b01;
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = '0;
  assign m_axi_awprot  = '0;
  assign m_axi_awqos   = '0;
  assign m_axi_awvalid = 1'b0;
  assign m_axi_wdata   = '0;
  assign m_axi_wstrb   = '0;
  assign m_axi_wlast   = 1'b0;
  assign m_axi_wvalid  = 1'b0;
  assign m_axi_bready  = 1'b1;

  // -----------------------------------------------------------------------------------------------
  // PASID-cache probe: the oldest slot that knows its PASID
  // -----------------------------------------------------------------------------------------------
  logic              probe_found;
  logic [SLOT_W-1:0] probe_sel;
  pl_pe_t            probe_pe;
  pl_fault_e         probe_use_fault;

  always_comb begin
    probe_found = 1'b0;
    probe_sel   = head_q;
    for (int unsigned k = 0; k < SLOTS; k++) begin
      logic [SLOT_W-1:0] i;
      i = slot_add(head_q, (SLOT_W + 1)'(k));
      if (!probe_found && (SLOT_W + 1)'(k) < count_q && st_q[i] == S_PE_PROBE) begin
        probe_found = 1'b1;
        probe_sel   = i;
      end
    end
  end

  // the port goes to the oldest waiting slot, else to the lookup being accepted (its context hit)
  assign pe_probe_key    = probe_found ? {req_q[probe_sel].rid, pasid_q[probe_sel]} : {req_i.rid, acc_pasid};
  assign probe_pe        = pl_pe_t'(pe_hit_data);
  assign probe_use_fault = pasid_use_check(req_q[probe_sel], ctx_q[probe_sel], probe_pe);
  assign acc_pe_fault    = pasid_use_check(req_i, acc_ctx, probe_pe);

  // -----------------------------------------------------------------------------------------------
  // R: collect the beats of a slot's structure; evaluate it with the last beat
  // -----------------------------------------------------------------------------------------------
  logic [SLOT_W-1:0]  r_slot;
  logic [ENTRY_W-1:0] r_entry;   // the slot's buffer with this beat merged in
  logic               r_err;     // this or an earlier beat of the burst failed

  // IDs above the slot index are never issued; only the structure's byte lanes are read
  /* verilator lint_off UNUSEDSIGNAL */
  logic [AXI_DATA_W-1:0] r_word;
  logic [AXI_ID_W-1:0]   r_id;
  /* verilator lint_on UNUSEDSIGNAL */
  assign r_id         = m_axi_rid;
  assign r_slot       = r_id[SLOT_W-1:0];
  assign m_axi_rready = 1'b1;  // every slot has room for its own burst

  always_comb begin
    // a structure narrower than the bus sits at its address's byte lanes; wider ones fill whole beats
    r_word  = m_axi_rdata >> {addr_q[r_slot][LANE_W-1:0], 3'b000};
    r_entry = buf_q[r_slot];
    r_entry[beat_q[r_slot] * BEAT_W +: BEAT_W] = r_word[BEAT_W-1:0];
    r_err   = rerr_q[r_slot] || m_axi_rresp[1];  // SLVERR / DECERR
  end

  // -----------------------------------------------------------------------------------------------
  // Next state of every slot
  // -----------------------------------------------------------------------------------------------
  logic rsp_take;
  assign rsp_take = rsp_valid_o && rsp_ready_i;

  always_comb begin
    st_d = st_q;  req_d = req_q;  tag_d = tag_q;  disabled_d = disabled_q;  reason_d = reason_q;
    pasid_d = pasid_q;  ctx_d = ctx_q;  pe_d = pe_q;  addr_d = addr_q;  buf_d = buf_q;
    beat_d = beat_q;  rerr_d = rerr_q;
    ctx_fill = 1'b0;  ctx_fill_key = req_q[r_slot].rid;  ctx_fill_data = ctx_decode(r_entry[255:0]);
    pe_fill = 1'b0;  pe_fill_key = {req_q[r_slot].rid, pasid_q[r_slot]};
    pe_fill_data = pe_decode(r_entry);
    pe_fill_data.fpd = pe_q[r_slot].fpd || r_entry[1];

    // --- a new lookup (vtd §2.6 steps 1-4, and the context cache) ---
    if (accept) begin
      req_d[tail]      = req_i;
      tag_d[tail]      = req_tag_i;
      disabled_d[tail] = !tes_i;
      reason_d[tail]   = PL_FR_NONE;
      ctx_d[tail]      = ctx_hit ? acc_ctx : '0;   // no FPD seen yet
      pe_d[tail]       = '0;
      pasid_d[tail]    = req_i.pasid_valid ? req_i.pasid : acc_ctx.rid_pasid;
      addr_d[tail]     = {rta_i, req_i.rid[15:8], 4'h0};
      if (!tes_i) begin
        st_d[tail] = S_DONE;  // step 1: translation disabled, nothing to look up
      end else if (acc_req_fault != PL_FR_NONE) begin
        st_d[tail] = S_DONE;  reason_d[tail] = acc_req_fault;
      end else if (!ctx_hit) begin
        st_d[tail] = S_ROOT_AR;
      end else if (acc_use_fault != PL_FR_NONE) begin
        st_d[tail] = S_DONE;  reason_d[tail] = acc_use_fault;
      end else if (req_i.kind == PL_TRANSLATED) begin
        st_d[tail] = S_DONE;  // a translated request needs no PASID entry
      end else if (probe_found) begin
        st_d[tail] = S_PE_PROBE;  // an older lookup has the PASID-cache port this cycle
      end else if (pe_hit) begin
        st_d[tail] = S_DONE;  pe_d[tail] = probe_pe;  reason_d[tail] = acc_pe_fault;
      end else begin
        st_d[tail]   = S_DIR_AR;
        addr_d[tail] = {acc_ctx.pasiddirptr, 12'h000} + {47'd0, acc_pasid[19:6], 3'b000};
      end
    end

    // --- a read goes into the AR register ---
    if (ar_load && ar_found) begin
      unique case (st_q[ar_sel])
        S_ROOT_AR: st_d[ar_sel] = S_ROOT_R;
        S_CTX_AR:  st_d[ar_sel] = S_CTX_R;
        S_DIR_AR:  st_d[ar_sel] = S_DIR_R;
        default:   st_d[ar_sel] = S_PE_R;
      endcase
      beat_d[ar_sel] = '0;
      rerr_d[ar_sel] = 1'b0;
    end

    // --- the PASID cache answers one slot ---
    if (probe_found) begin
      if (pe_hit) begin
        pe_d[probe_sel]     = probe_pe;
        reason_d[probe_sel] = probe_use_fault;
        st_d[probe_sel]     = S_DONE;
      end else begin
        st_d[probe_sel]   = S_DIR_AR;
        addr_d[probe_sel] = {ctx_q[probe_sel].pasiddirptr, 12'h000}
                          + {47'd0, pasid_q[probe_sel][19:6], 3'b000};
      end
    end

    // --- a beat of a structure arrives; the last one completes the stage ---
    if (m_axi_rvalid && !m_axi_rlast) begin
      buf_d[r_slot]  = r_entry;
      beat_d[r_slot] = beat_q[r_slot] + 1'b1;
      rerr_d[r_slot] = r_err;
    end
    if (m_axi_rvalid && m_axi_rlast) begin
      automatic pl_req_t r = req_q[r_slot];
      unique case (st_q[r_slot])
        S_ROOT_R: begin  // rows 8-10
          automatic logic upper = r.rid[7];
          automatic logic present = upper ? r_entry[64] : r_entry[0];
          if (r_err) begin
            reason_d[r_slot] = PL_FR_SRT_1;  st_d[r_slot] = S_DONE;
          end else if (!present) begin
            reason_d[r_slot] = PL_FR_SRT_2;  st_d[r_slot] = S_DONE;
          end else if ((r_entry[127:0] & ROOT_RSVD) != '0) begin
            reason_d[r_slot] = PL_FR_SRT_3;  st_d[r_slot] = S_DONE;
          end else begin
            st_d[r_slot]   = S_CTX_AR;
            addr_d[r_slot] = {upper ? r_entry[127:76] : r_entry[63:12], r.rid[6:0], 5'h00};
          end
        end
        S_CTX_R: begin  // rows 11-20
          automatic pl_ctx_t c = ctx_decode(r_entry[255:0]);
          automatic pl_fault_e use_fault = context_use_check(r, c);
          if (!r_err) ctx_d[r_slot] = c;  // FPD counts even when P=0
          pasid_d[r_slot] = r.pasid_valid ? r.pasid : c.rid_pasid;
          st_d[r_slot] = S_DONE;
          if (r_err) begin
            reason_d[r_slot] = PL_FR_SCT_1;
          end else if (!r_entry[0]) begin
            reason_d[r_slot] = PL_FR_SCT_2;
          end else if ((r_entry[255:0] & CTX_RSVD) != '0) begin
            reason_d[r_slot] = PL_FR_SCT_3;
          end else if (ctx_invalid(c)) begin
            reason_d[r_slot] = PL_FR_SCT_4;
          end else begin
            ctx_fill = 1'b1;
            reason_d[r_slot] = use_fault;
            if (use_fault == PL_FR_NONE && r.kind != PL_TRANSLATED) st_d[r_slot] = S_PE_PROBE;
          end
        end
        S_DIR_R: begin  // rows 21-23
          if (!r_err) pe_d[r_slot].fpd = r_entry[1];
          if (r_err) begin
            reason_d[r_slot] = PL_FR_SPD_1;  st_d[r_slot] = S_DONE;
          end else if (!r_entry[0]) begin
            reason_d[r_slot] = PL_FR_SPD_2;  st_d[r_slot] = S_DONE;
          end else if ((r_entry[63:0] & DIR_RSVD) != '0) begin
            reason_d[r_slot] = PL_FR_SPD_3;  st_d[r_slot] = S_DONE;
          end else begin
            st_d[r_slot]   = S_PE_AR;
            addr_d[r_slot] = {r_entry[63:12], pasid_q[r_slot][5:0], 6'h00};
          end
        end
        S_PE_R: begin  // rows 24-29
          if (!r_err) pe_d[r_slot] = pe_fill_data;
          st_d[r_slot] = S_DONE;
          if (r_err) begin
            reason_d[r_slot] = PL_FR_SPT_1;
          end else if (!r_entry[0]) begin
            reason_d[r_slot] = PL_FR_SPT_2;
          end else if (pe_reserved(r_entry)) begin
            reason_d[r_slot] = PL_FR_SPT_3;
          end else if (pe_invalid(pe_fill_data)) begin
            reason_d[r_slot] = PL_FR_SPT_4;
          end else begin
            pe_fill = 1'b1;
            reason_d[r_slot] = pasid_use_check(r, ctx_q[r_slot], pe_fill_data);
          end
        end
        default: ;  // no read of this slot is outstanding: a stray beat is dropped
      endcase
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Answer of the oldest lookup
  // -----------------------------------------------------------------------------------------------
  always_comb begin
    automatic pl_req_t r = req_q[head_q];
    rsp_valid_o       = count_q != '0 && st_q[head_q] == S_DONE;
    rsp_tag_o         = tag_q[head_q];
    rsp_o.disabled    = disabled_q[head_q];
    rsp_o.reason      = reason_q[head_q];
    rsp_o.fpd         = ctx_q[head_q].fpd || pe_q[head_q].fpd;
    rsp_o.pe_valid    = !disabled_q[head_q] && reason_q[head_q] == PL_FR_NONE && r.kind != PL_TRANSLATED;
    rsp_o.pasid       = pasid_q[head_q];
    rsp_o.priv        = privileged(r, ctx_q[head_q]);
    rsp_o.ctx         = ctx_q[head_q];
    rsp_o.pe          = pe_q[head_q];
  end

  always_comb begin
    head_d  = rsp_take ? slot_add(head_q, (SLOT_W + 1)'(1)) : head_q;
    count_d = count_q + (SLOT_W + 1)'(accept) - (SLOT_W + 1)'(rsp_take);
  end

  assign busy_o = count_q != '0;

  // -----------------------------------------------------------------------------------------------
  // Flops
  // -----------------------------------------------------------------------------------------------
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      head_q     <= '0;
      count_q    <= '0;
      ar_valid_q <= 1'b0;
    end else begin
      head_q  <= head_d;
      count_q <= count_d;
      if (ar_load) ar_valid_q <= ar_found;
    end
  end

  // datapath: meaningful only while the slot is occupied / the AR register is valid
  always_ff @(posedge clk_i) begin
    st_q       <= st_d;
    req_q      <= req_d;
    tag_q      <= tag_d;
    disabled_q <= disabled_d;
    reason_q   <= reason_d;
    pasid_q    <= pasid_d;
    ctx_q      <= ctx_d;
    pe_q       <= pe_d;
    addr_q     <= addr_d;
    buf_q      <= buf_d;
    beat_q     <= beat_d;
    rerr_q     <= rerr_d;
    if (ar_load && ar_found) begin
      ar_id_q   <= ar_sel;
      ar_addr_q <= addr_q[ar_sel];
      ar_len_q  <= ar_len_d;
      ar_size_q <= ar_size_d;
    end
  end

endmodule


/* verilator lint_off DECLFILENAME */  // the lookup's private cache lives next to its only user
// A small fully associative cache of flops: probe by key (combinational), fill (a key already held
// is overwritten in place, else the first free entry, else a round-robin victim), and a kill vector
// that drops entries (kill wins over a fill of the same entry in the same cycle). Keys and data of
// every entry are visible so the owner can decide which entries an invalidation hits.
module pasid_lookup_cache #(
  parameter int unsigned ENTRIES = 8,
  parameter int unsigned KEY_W   = 16,
  parameter int unsigned DATA_W  = 8
) (
  input  logic                             clk_i,
  input  logic                             rst_ni,
  input  logic [KEY_W-1:0]                 probe_key_i,
  output logic                             probe_hit_o,
  output logic [DATA_W-1:0]                probe_data_o,
  input  logic                             fill_i,
  input  logic [KEY_W-1:0]                 fill_key_i,
  input  logic [DATA_W-1:0]                fill_data_i,
  input  logic [ENTRIES-1:0]               kill_i,
  output logic [ENTRIES-1:0][KEY_W-1:0]    keys_o,
  output logic [ENTRIES-1:0][DATA_W-1:0]   datas_o
);

  localparam int unsigned IDX_W = ENTRIES > 1 ? $clog2(ENTRIES) : 1;

  logic [ENTRIES-1:0]             valid_q, valid_d;
  logic [ENTRIES-1:0][KEY_W-1:0]  key_q;
  logic [ENTRIES-1:0][DATA_W-1:0] data_q;
  logic [IDX_W-1:0]               victim_q, victim_d;
  logic [IDX_W-1:0]               fill_idx;

  // probe: keys are unique among valid entries, so at most one matches
  always_comb begin
    probe_hit_o  = 1'b0;
    probe_data_o = '0;
    for (int unsigned i = 0; i < ENTRIES; i++) begin
      if (valid_q[i] && key_q[i] == probe_key_i) begin
        probe_hit_o  = 1'b1;
        probe_data_o = probe_data_o | data_q[i];
      end
    end
  end

  // fill: same key, else the first free entry, else the victim
  always_comb begin
    logic same, free;
    same     = 1'b0;
    free     = 1'b0;
    fill_idx = victim_q;
    for (int unsigned i = 0; i < ENTRIES; i++) begin
      if (!same && valid_q[i] && key_q[i] == fill_key_i) begin
        same     = 1'b1;
        fill_idx = IDX_W'(i);
      end
    end
    for (int unsigned i = 0; i < ENTRIES; i++) begin
      if (!same && !free && !valid_q[i]) begin
        free     = 1'b1;
        fill_idx = IDX_W'(i);
      end
    end
    victim_d = victim_q;
    if (fill_i && !same && free == 1'b0) begin
      victim_d = victim_q == IDX_W'(ENTRIES - 1) ? '0 : victim_q + 1'b1;
    end
    valid_d = valid_q;
    if (fill_i) valid_d[fill_idx] = 1'b1;
    valid_d = valid_d & ~kill_i;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q  <= '0;
      victim_q <= '0;
    end else begin
      valid_q  <= valid_d;
      victim_q <= victim_d;
    end
  end

  always_ff @(posedge clk_i) begin
    if (fill_i) begin
      key_q[fill_idx]  <= fill_key_i;
      data_q[fill_idx] <= fill_data_i;
    end
  end

  assign keys_o  = key_q;
  assign datas_o = data_q;

endmodule
/* verilator lint_on DECLFILENAME */

`resetall
