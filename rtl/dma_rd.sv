`resetall
`timescale 1ns / 1ps
`default_nettype none

// Translated DMA reads: a memory read request (already translated, dma_pkg::rd_req_t) -> AXI4 read
// bursts into an on-chip buffer -> completions for tlp_tx (a header descriptor per completion plus its
// payload stream), split exactly as models.tlp.read_completions does (PCIe TL §2.3.1.1):
//
// * one CplD when the request fits in MAX_PAYLOAD bytes; otherwise each CplD is as long as
//   MAX_PAYLOAD allows and ends on an RCB boundary, the last one ends where the request does. Byte
//   Count = bytes left including this completion (Table 2-40 for the first), Lower Address from
//   Table 2-41 for the first, the RCB-aligned address bits 6:0 for the later ones. RCB boundaries and
//   Lower Address use the untranslated address bits 6:2 (ua_lo); translation keeps bits 11:0.
// * An AXI read error (RRESP SLVERR/DECERR) on any beat of a request -> one Cpl with status CA, Byte
//   Count and Lower Address of the whole request (models.tlp.error_completion); a request whose status
//   is not SC -> one Cpl with that status, without a memory access. This is the golden model's
//   behaviour ("Failed DMA after a good translation: CA for reads"), and it is why a request's
//   completions start only once all of its data is in: a CA after CplDs would differ from the model.
//
// Structure: a request table of NREQ slots (accept -> issue -> transmit, all in request order);
// bursts of INCR, full-width beats, at most 256 beats, never crossing 4 KiB, the first at the request
// address (unaligned), the later ones aligned. Up to NBURST bursts are in flight, tracked in a burst
// table used in turn: entry e goes out with ARID e mod IDS (IDS = min(NBURST, 2^AXI_ID_W) IDs, NBURST /
// IDS bursts per ID). The bursts of one ID are issued in entry order and, by the AXI4 ordering rule for
// one ID (IHI 0022E: read data of transactions with the same ARID returns in issue order, a burst's
// beats not interleaved with another of that ID), return in that order, so a per-ID counter names the
// entry each R beat belongs to; bursts of different IDs may return in any order or interleaved. A new
// burst waits while the entry it would take is still in flight. A request's data lands in a circular
// buffer of BUF_BYTES (one line per bus beat, allocated in full when the first burst issues, freed in
// order once read out), at the lanes of its address. The transmit side walks the
// completions of the oldest request and reads its lines out through a realigner (payload byte 0 in
// lane 0 for tlp_tx). Memory bytes outside the request but in the same bus beat are read too (host
// memory has no read side effects).
//
// Throughput: one R beat per cycle in; one request accepted and one AR issued per cycle for
// one-burst reads; out, one payload beat per cycle, plus one realignment cycle per completion whose
// payload does not start in lane 0 and spans more than one bus line (a payload within one line, e.g.
// a 1-DW read at any offset, has none): back-to-back 1-DW reads with memory latency 0 leave as
// completions one beat per cycle (dma_perf, 256-bit bus: 40 reads -> 40 cycles, lane-0 data and any
// offset). At memory latency L a slot is held from acceptance until its last completion header is
// issued, about L + 5 cycles, and a burst-table entry from its AR to its last R beat, about L + 2, so
// sustained 1-DW reads are bounded by NREQ / (L + 5) and NBURST / (L + 2) per cycle: with the defaults
// (32 and 32) about one per cycle up to L = 27 (dma_perf at L = 20: 1.0 per cycle; 0.65 with
// NREQ = 16). Longer reads are bounded by BUF_BYTES as well.
// Latency (no back-pressure): when no earlier request waits to issue and the AR register, a
// burst-table entry and the buffer lines are free, a request starts (gets its buffer lines) in its
// accepting cycle and its first burst is loaded into the AR register from req_i. With AR_BYPASS=1
// (default) a burst loaded while the AR register is empty is also driven on the AR outputs in that
// cycle (and kept in the register if ARREADY is low): request handshake in cycle t -> ARVALID in
// cycle t, the AR outputs combinational from req_i. With AR_BYPASS=0 the AR outputs are the register:
// ARVALID in cycle t+1. Either way AXI inputs reach only registers (ARREADY frees the AR register for
// the next load), never an AXI output. Last R beat -> completion header valid 1 cycle,
// its first payload beat 3 cycles (buffer read, line FIFO, realigner register); through tlp_tx the
// first TLP beat is valid 4 cycles after the last R beat.
module dma_rd
  import dma_pkg::*;
#(
  parameter int AXI_DATA_W  = 256,
  parameter int AXI_ID_W    = 4,
  parameter int MAX_PAYLOAD = 256,   // bytes: 128..4096 (Max_Payload_Size)
  parameter int RCB         = 64,    // bytes: 64 or 128 (Read Completion Boundary)
  parameter int NREQ        = 32,    // requests accepted and not yet fully answered (power of two)
  parameter int NBURST      = 32,    // AXI read bursts in flight (power of two), NBURST / 2^AXI_ID_W per ID
  parameter bit AR_BYPASS   = 1'b1,  // 1: a burst loaded while the AR register is empty is on AR at once
  parameter int BUF_BYTES   = 8192   // read-data buffer (power of two, >= 4 KiB + one beat)
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  input  logic [15:0]             completer_id_i,   // the IOMMU's own RID (static)

  input  rd_req_t                 req_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  // AXI4 read channels (host memory)
  output logic [AXI_ID_W-1:0]     m_axi_arid,
  output logic [63:0]             m_axi_araddr,
  output logic [7:0]              m_axi_arlen,
  output logic [2:0]              m_axi_arsize,
  output logic [1:0]              m_axi_arburst,
  output logic                    m_axi_arlock,
  output logic [3:0]              m_axi_arcache,
  output logic [2:0]              m_axi_arprot,
  output logic                    m_axi_arvalid,
  input  logic                    m_axi_arready,
  input  logic [AXI_ID_W-1:0]     m_axi_rid,
  input  logic [AXI_DATA_W-1:0]   m_axi_rdata,
  /* verilator lint_off UNUSEDSIGNAL */  // RRESP[1] tells an error (SLVERR/DECERR); [0] adds nothing here
  input  logic [1:0]              m_axi_rresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_rlast,
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready,

  // completions, to a tlp_tx source
  output tx_hdr_t                 cpl_hdr_o,
  output logic                    cpl_hdr_valid_o,
  input  logic                    cpl_hdr_ready_i,
  output logic [AXI_DATA_W-1:0]   m_axis_cpl_tdata,
  output logic [AXI_DATA_W/8-1:0] m_axis_cpl_tkeep,
  output logic                    m_axis_cpl_tvalid,
  output logic                    m_axis_cpl_tlast,
  input  logic                    m_axis_cpl_tready,
  // every accepted request has read all of its memory and handed its last completion header over
  // (payload beats may still be leaving): no read of host memory is outstanding or still to be issued
  output logic                    idle_o
);

  localparam int B       = AXI_DATA_W / 8;         // bytes per beat = per buffer line
  localparam int OFF_W   = $clog2(B);
  localparam int LINES   = BUF_BYTES / B;
  localparam int LINE_W  = $clog2(LINES);
  localparam int RLINES  = 4096 / B + 1;           // most lines one request can take
  localparam int RL_W    = $clog2(RLINES + 1);
  localparam int FREE_W  = $clog2(LINES + 1);
  localparam int SLOT_W  = $clog2(NREQ);
  localparam int NID     = 1 << AXI_ID_W;
  localparam int IDS     = NBURST < NID ? NBURST : NID;   // AXI IDs in use
  localparam int IDQ     = NBURST / IDS;                   // bursts in flight per ID
  localparam int IDU_W   = $clog2(IDS);
  localparam int IDQ_W   = IDQ > 1 ? $clog2(IDQ) : 1;
  localparam int BT_W    = $clog2(NBURST);
  localparam int PEND_W  = $clog2(NBURST + 1);
  localparam int LFIFO   = 4;                      // realigner input FIFO (lines)
  localparam int DFIFO   = 4;                      // completion payload descriptors

  if (B < 8 || (B & (B - 1)) != 0) begin : g_bad_width
    $error("dma_rd: AXI_DATA_W must be a power of two >= 64");
  end
  if (BUF_BYTES < 4096 + B || (BUF_BYTES & (BUF_BYTES - 1)) != 0) begin : g_bad_buf
    $error("dma_rd: BUF_BYTES must be a power of two holding a 4 KiB request plus one beat");
  end
  if (NREQ < 2 || (NREQ & (NREQ - 1)) != 0) begin : g_bad_nreq
    $error("dma_rd: NREQ must be a power of two >= 2");
  end
  if (NBURST < 2 || (NBURST & (NBURST - 1)) != 0 || AXI_ID_W < 1) begin : g_bad_nburst
    $error("dma_rd: NBURST must be a power of two >= 2 and AXI_ID_W >= 1");
  end
  if (!(MAX_PAYLOAD inside {128, 256, 512, 1024, 2048, 4096}) || !(RCB inside {64, 128})) begin : g_bad_pcie
    $error("dma_rd: MAX_PAYLOAD must be 128..4096 (a power of two) and RCB 64 or 128");
  end

  // -----------------------------------------------------------------------------------------------
  // Request table (slots in request order: tx_ptr <= iss_ptr <= alloc_ptr)
  // -----------------------------------------------------------------------------------------------
  rd_req_t              slot_req_q  [NREQ];
  logic [RL_W-1:0]      slot_lines_q[NREQ];      // buffer lines of the request (0 without a memory access)
  logic [LINE_W-1:0]    slot_base_q [NREQ];      // first buffer line
  logic [PEND_W-1:0]    slot_pend_q [NREQ];      // bursts issued and not finished
  logic                 slot_err_q  [NREQ];      // some read beat answered SLVERR/DECERR

  logic [SLOT_W:0]      alloc_ptr_q, iss_ptr_q, tx_ptr_q;
  logic [SLOT_W-1:0]    iss_slot, tx_slot;
  assign iss_slot = iss_ptr_q[SLOT_W-1:0];
  assign tx_slot  = tx_ptr_q[SLOT_W-1:0];

  logic accept;
  assign req_ready_o = (alloc_ptr_q - tx_ptr_q) != (SLOT_W + 1)'(NREQ);
  assign accept      = req_valid_i && req_ready_o;
  assign idle_o      = alloc_ptr_q == tx_ptr_q;

  // bus beats of a request from its aligned start
  function automatic logic [RL_W-1:0] lines_of(input logic [OFF_W-1:2] lane_dw, input logic [9:0] length);
    logic [13:0] span;
    span = 14'({lane_dw, 2'b00}) + {1'b0, len_dw(length), 2'b00} + 14'(B - 1);
    return RL_W'(span >> OFF_W);
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Issue: a request starts (its buffer lines allocated) in the cycle its first burst goes into the AR
  // register; the bursts after it follow one per cycle. Requests start in order: from the table, or the
  // request being accepted when none waits there (the AR register is loaded from req_i directly).
  // -----------------------------------------------------------------------------------------------
  logic                 iss_active_q;           // a request has bursts left to issue (at iss_ptr)
  logic [63:0]          iss_addr_q;             // its next burst's address
  logic [RL_W-1:0]      iss_left_q;             // beats still to request
  logic [LINE_W-1:0]    iss_line_q;             // buffer line of the next burst's first beat
  logic [LINE_W-1:0]    buf_head_q;             // next line to allocate
  logic [FREE_W-1:0]    buf_free_q;
  logic [FREE_W-1:0]    buf_release;            // lines the read-out side frees this cycle

  // bursts in flight: entry e of the burst table uses ID e mod IDS; the table is used in turn, so the
  // bursts of one ID are issued in entry order and (same ID, AXI4 ordering) return in that order
  logic [NBURST-1:0]    bt_busy_q;
  logic [SLOT_W-1:0]    bt_slot_q [NBURST];
  logic [LINE_W-1:0]    bt_line_q [NBURST];     // buffer line of the burst's next beat
  logic [BT_W-1:0]      bt_wr_q;                // the entry the next burst takes
  logic [IDQ_W-1:0]     rh_q      [IDS];        // per ID: entry bits above the ID of its next R beat

  logic                 tbl_pending, from_req, st_valid, st_sc, bt_free;
  logic [63:2]          st_addr;                // the request that starts next: address, status, lines
  logic [2:0]           st_status;
  logic [RL_W-1:0]      st_lines, acc_lines;
  logic                 iss_skip, iss_start, ar_load, ar_free, ar_last, ar_bypass;
  logic                 ar_valid_q;             // the AR register holds a burst not yet taken
  logic [AXI_ID_W-1:0]  ar_id_q, ar_id_d;
  logic [63:0]          ar_addr_q;
  logic [7:0]           ar_len_q, ar_len_d;
  logic [63:0]          src_addr;
  logic [RL_W-1:0]      src_left;
  logic [LINE_W-1:0]    src_line;
  logic [8:0]           burst_beats;            // 1..256

  assign acc_lines   = lines_of(req_i.addr[OFF_W-1:2], req_i.length);
  assign tbl_pending = iss_ptr_q != alloc_ptr_q;
  assign from_req    = !tbl_pending && accept;  // iss_ptr = alloc_ptr: the accepted request is next
  assign st_addr     = from_req ? req_i.addr[63:2] : slot_req_q[iss_slot].addr[63:2];
  assign st_status   = from_req ? req_i.status : slot_req_q[iss_slot].status;
  assign st_lines    = from_req ? acc_lines : slot_lines_q[iss_slot];
  assign st_valid    = !iss_active_q && (tbl_pending || accept);
  assign st_sc       = st_status == CPL_SC;
  assign ar_free     = !ar_valid_q || m_axi_arready;
  assign bt_free     = !bt_busy_q[bt_wr_q];
  assign iss_skip    = st_valid && !st_sc;      // no memory access: straight to transmit
  assign iss_start   = st_valid && st_sc && ar_free && bt_free && buf_free_q >= FREE_W'(st_lines);
  assign ar_load     = (iss_active_q && ar_free && bt_free) || iss_start;

  assign src_addr = iss_active_q ? iss_addr_q : {st_addr, 2'b00};
  assign src_left = iss_active_q ? iss_left_q : st_lines;
  assign src_line = iss_active_q ? iss_line_q : buf_head_q;
  assign ar_last  = ar_load && src_left == RL_W'(burst_beats);

  // A burst: the beats left, at most 256, not past the next 4 KiB boundary (AXI4 §A3.4.1)
  always_comb begin
    logic [12:0] to_4k;
    to_4k = (13'h1000 - 13'({src_addr[11:OFF_W], OFF_W'(0)})) >> OFF_W;
    burst_beats = 9'd256;
    if (13'(src_left) < 13'(burst_beats)) burst_beats = 9'(src_left);
    if (to_4k < 13'(burst_beats)) burst_beats = 9'(to_4k);
  end

  // The AR outputs: the AR register, or with AR_BYPASS the burst being loaded while the register is
  // empty (it stays in the register if ARREADY is low). Either way ARVALID depends on no AXI input.
  assign ar_id_d       = AXI_ID_W'(bt_wr_q[IDU_W-1:0]);
  assign ar_len_d      = 8'(burst_beats - 9'd1);
  assign ar_bypass     = AR_BYPASS && ar_load && !ar_valid_q;
  assign m_axi_arvalid = ar_valid_q || ar_bypass;
  assign m_axi_arid    = ar_bypass ? ar_id_d : ar_id_q;
  assign m_axi_araddr  = ar_bypass ? src_addr : ar_addr_q;
  assign m_axi_arlen   = ar_bypass ? ar_len_d : ar_len_q;
  assign m_axi_arsize  = 3'(OFF_W);
  assign m_axi_arburst = 2'b01;                 // INCR
  assign m_axi_arlock  = 1'b0;
  assign m_axi_arcache = 4'b0011;               // normal non-cacheable bufferable
  assign m_axi_arprot  = 3'b000;                // unprivileged, secure, data
  assign m_axi_rready  = 1'b1;                  // every beat has its line reserved

  // -----------------------------------------------------------------------------------------------
  // Read data: into the buffer at the burst's line; count finished bursts per slot
  // -----------------------------------------------------------------------------------------------
  logic [AXI_DATA_W-1:0] buf_mem [LINES];       // no reset: a RAM
  logic                  r_fire, r_done;
  logic [SLOT_W-1:0]     r_slot;
  logic [BT_W-1:0]       r_bt;                  // the burst table entry of this beat
  logic [IDU_W-1:0]      r_idu;
  /* verilator lint_off UNUSEDSIGNAL */          // IDs above IDS are never issued
  logic [AXI_ID_W-1:0]   r_id;
  /* verilator lint_on UNUSEDSIGNAL */
  assign r_id   = m_axi_rid;
  assign r_idu  = r_id[IDU_W-1:0];
  assign r_bt   = IDQ > 1 ? BT_W'({rh_q[r_idu], r_idu}) : BT_W'(r_idu);
  assign r_fire = m_axi_rvalid;                 // rready is 1
  assign r_done = r_fire && m_axi_rlast;
  assign r_slot = bt_slot_q[r_bt];

  // -----------------------------------------------------------------------------------------------
  // Transmit: completions of the oldest request, once all of its data is in
  // -----------------------------------------------------------------------------------------------
  typedef struct packed {
    logic [LINE_W-1:0] line;                    // buffer line of payload byte 0
    logic [OFF_W-1:0]  lane;                    // its lane
    logic [12:0]       nbytes;                  // payload bytes (0: only release lines)
    logic [RL_W-1:0]   release_lines;           // lines to free once this payload is read
  } desc_t;

  rd_req_t      tx_req;
  logic         tx_ready, tx_fail, tx_step, tx_last, hdr_free, desc_full;
  logic [12:0]  tx_pos_q;                        // bytes of the request already sent
  logic [12:0]  tx_len, tx_cut;
  logic [11:0]  tx_bc;                           // Byte Count field (4096 is 0)
  logic [6:0]   tx_la;
  logic [13:0]  tx_at;                           // pos + lane of the request start
  tx_hdr_t      tx_hdr;
  desc_t        tx_desc;

  assign tx_req   = slot_req_q[tx_slot];
  assign tx_ready = tx_ptr_q != iss_ptr_q && slot_pend_q[tx_slot] == '0;
  assign tx_fail  = tx_req.status != CPL_SC || slot_err_q[tx_slot];
  assign hdr_free = !cpl_hdr_valid_o || cpl_hdr_ready_i;
  assign tx_step  = tx_ready && hdr_free && !desc_full;

  always_comb begin
    logic [6:0]  a_lo;
    logic [10:0] ndw;
    ndw    = len_dw(tx_req.length);
    a_lo   = {tx_req.ua_lo, 2'b00};
    tx_len = {ndw, 2'b00};
    // the next completion's bytes (models.tlp.read_completions)
    if (tx_len - tx_pos_q <= 13'(MAX_PAYLOAD)) tx_cut = tx_len - tx_pos_q;
    else tx_cut = 13'(MAX_PAYLOAD) - 13'(7'(a_lo + tx_pos_q[6:0]) & 7'(RCB - 1));
    tx_last = tx_fail || tx_pos_q + tx_cut == tx_len;
    if (tx_pos_q == '0) begin
      tx_bc = 12'(byte_enable_count(ndw, tx_req.first_be, tx_req.last_be));
      tx_la = lower_address(tx_req.ua_lo, tx_req.first_be);
    end else begin
      tx_bc = 12'(enabled_end(ndw, tx_req.first_be, tx_req.last_be) - tx_pos_q);
      tx_la = 7'(a_lo + tx_pos_q[6:0]);
    end
    tx_at = 14'({tx_req.addr[OFF_W-1:2], 2'b00}) + {1'b0, tx_pos_q};
    if (tx_fail) begin
      tx_hdr = cpl_hdr(completer_id_i, tx_req.requester_id, tx_req.tag, tx_req.tc, tx_req.attr,
                       tx_req.status == CPL_SC ? CPL_CA : tx_req.status, tx_bc, tx_la, 11'd0,
                       tx_req.locked);
      tx_desc.nbytes = '0;
    end else begin
      tx_hdr = cpl_hdr(completer_id_i, tx_req.requester_id, tx_req.tag, tx_req.tc, tx_req.attr, CPL_SC,
                       tx_bc, tx_la, tx_cut[12:2], tx_req.locked);
      tx_desc.nbytes = tx_cut;
    end
    tx_desc.line          = slot_base_q[tx_slot] + LINE_W'(tx_at >> OFF_W);
    tx_desc.lane          = tx_at[OFF_W-1:0];
    tx_desc.release_lines = tx_last ? slot_lines_q[tx_slot] : '0;
  end

  // descriptor FIFO
  desc_t            dq_q [DFIFO];
  logic [2:0]       dq_wr_q, dq_rd_q;
  logic             dq_empty, dq_pop;
  desc_t            dq_head;
  assign desc_full = (dq_wr_q - dq_rd_q) == 3'(DFIFO);
  assign dq_empty  = dq_wr_q == dq_rd_q;
  assign dq_head   = dq_q[dq_rd_q[1:0]];

  // -----------------------------------------------------------------------------------------------
  // Read-out: buffer lines of each payload -> line FIFO -> realigner -> payload stream
  // -----------------------------------------------------------------------------------------------
  typedef struct packed {                       // where a payload starts, carried with each line
    logic [OFF_W-1:0]  lane;
    logic [12:0]       nbytes;
  } tok_t;

  logic [RL_W-1:0]      f_idx_q;                 // lines of the head descriptor already read
  logic [RL_W-1:0]      f_lines;
  logic                 f_read, f_done_desc, f_credit;
  logic                 rd_valid_q;              // a RAM read is in flight (data next cycle)
  tok_t                 rd_tok_q;
  logic [AXI_DATA_W-1:0] rd_data_q;

  logic [AXI_DATA_W-1:0] lf_data_q [LFIFO];
  tok_t                  lf_tok_q  [LFIFO];
  logic [2:0]            lf_wr_q, lf_rd_q;
  logic                  lf_valid, lf_pop;
  logic [AXI_DATA_W-1:0] lf_data;
  tok_t                  lf_tok;
  assign lf_valid = lf_wr_q != lf_rd_q;
  assign lf_data  = lf_data_q[lf_rd_q[1:0]];
  assign lf_tok   = lf_tok_q[lf_rd_q[1:0]];

  assign f_lines     = RL_W'((14'(dq_head.lane) + {1'b0, dq_head.nbytes} + 14'(B - 1)) >> OFF_W);
  assign f_credit    = 3'(lf_wr_q - lf_rd_q) + 3'(rd_valid_q) < 3'(LFIFO);
  assign f_read      = !dq_empty && dq_head.nbytes != '0 && f_credit;
  assign f_done_desc = !dq_empty && (dq_head.nbytes == '0 || (f_read && f_idx_q + 1'b1 == f_lines));
  assign dq_pop      = f_done_desc;
  assign buf_release = f_done_desc ? FREE_W'(dq_head.release_lines) : '0;

  // Realigner: output beat = bytes lane.. of {next line, held line}
  logic                  al_active_q, al_hold_q;
  logic [OFF_W-1:0]      al_lane_q;
  logic [12:0]           al_left_q;
  logic [AXI_DATA_W-1:0] al_held_q;
  logic                  out_free, al_emit, al_load;
  logic [OFF_W-1:0]      c_lane;
  logic [12:0]           c_left;
  logic                  c_hold;
  logic [2*AXI_DATA_W-1:0] al_cat;
  logic [AXI_DATA_W-1:0] al_data;

  assign out_free = !m_axis_cpl_tvalid || m_axis_cpl_tready;

  always_comb begin
    logic starting;
    starting = !al_active_q;                     // the next line is the first of a payload
    c_lane   = starting ? lf_tok.lane : al_lane_q;
    c_left   = starting ? lf_tok.nbytes : al_left_q;
    c_hold   = starting ? 1'b0 : al_hold_q;
    al_emit  = 1'b0;
    al_load  = 1'b0;
    lf_pop   = 1'b0;
    al_cat   = {lf_data, al_held_q};
    if (!out_free) begin
      // wait for the output register
    end else if (c_lane == '0) begin             // lines go out as they are
      al_cat  = {{AXI_DATA_W{1'b0}}, lf_data};
      al_emit = lf_valid;
      lf_pop  = lf_valid;
    end else if (!c_hold) begin                  // first line of a payload not starting in lane 0
      al_cat  = {{AXI_DATA_W{1'b0}}, lf_data};
      lf_pop  = lf_valid;
      if (c_left <= 13'(B) - 13'(c_lane)) al_emit = lf_valid;   // all of it in this line
      else                                 al_load = lf_valid;
    end else if (c_left > 13'(B) - 13'(c_lane)) begin   // needs the next line too
      al_emit = lf_valid;
      lf_pop  = lf_valid;
    end else begin                               // the tail is all in the held line
      al_cat  = {{AXI_DATA_W{1'b0}}, al_held_q};
      al_emit = 1'b1;
    end
    al_data = AXI_DATA_W'(al_cat >> (8 * int'(c_lane)));
  end

  // -----------------------------------------------------------------------------------------------
  // Registers
  // -----------------------------------------------------------------------------------------------
  // Storage without reset (every entry is written before it is read): the buffer RAM with its
  // registered read port, the request table, the per-ID burst state and the two small FIFOs.
  always_ff @(posedge clk_i) begin
    if (r_fire) buf_mem[bt_line_q[r_bt]] <= m_axi_rdata;
    if (f_read) rd_data_q <= buf_mem[dq_head.line + LINE_W'(f_idx_q)];
    if (accept) begin
      slot_req_q[alloc_ptr_q[SLOT_W-1:0]]   <= req_i;
      slot_lines_q[alloc_ptr_q[SLOT_W-1:0]] <= req_i.status == CPL_SC ? acc_lines : '0;
    end
    if (iss_start) slot_base_q[iss_slot] <= buf_head_q;
    if (ar_load) begin
      bt_slot_q[bt_wr_q] <= iss_slot;
      bt_line_q[bt_wr_q] <= src_line;
    end
    if (r_fire) bt_line_q[r_bt] <= bt_line_q[r_bt] + 1'b1;   // r_bt is in flight, bt_wr_q is free
    if (tx_step) dq_q[dq_wr_q[1:0]] <= tx_desc;
    if (f_read) rd_tok_q <= '{lane: dq_head.lane, nbytes: dq_head.nbytes};
    if (rd_valid_q) begin
      lf_data_q[lf_wr_q[1:0]] <= rd_data_q;
      lf_tok_q[lf_wr_q[1:0]]  <= rd_tok_q;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      alloc_ptr_q   <= '0;
      iss_ptr_q     <= '0;
      tx_ptr_q      <= '0;
      iss_active_q  <= 1'b0;
      iss_addr_q    <= '0;
      iss_left_q    <= '0;
      iss_line_q    <= '0;
      buf_head_q    <= '0;
      buf_free_q    <= FREE_W'(LINES);
      bt_busy_q     <= '0;
      bt_wr_q       <= '0;
      for (int i = 0; i < IDS; i++) rh_q[i] <= '0;
      ar_valid_q    <= 1'b0;
      ar_id_q       <= '0;
      ar_addr_q     <= '0;
      ar_len_q      <= '0;
      tx_pos_q      <= '0;
      cpl_hdr_valid_o <= 1'b0;
      cpl_hdr_o     <= '0;
      dq_wr_q       <= '0;
      dq_rd_q       <= '0;
      f_idx_q       <= '0;
      rd_valid_q    <= 1'b0;
      lf_wr_q       <= '0;
      lf_rd_q       <= '0;
      al_active_q   <= 1'b0;
      al_hold_q     <= 1'b0;
      al_lane_q     <= '0;
      al_left_q     <= '0;
      al_held_q     <= '0;
      m_axis_cpl_tvalid <= 1'b0;
      m_axis_cpl_tdata  <= '0;
      m_axis_cpl_tkeep  <= '0;
      m_axis_cpl_tlast  <= 1'b0;
      for (int i = 0; i < NREQ; i++) begin
        slot_pend_q[i]  <= '0;
        slot_err_q[i]   <= 1'b0;
      end
    end else begin
      // accept
      if (accept) begin
        slot_err_q[alloc_ptr_q[SLOT_W-1:0]] <= 1'b0;
        alloc_ptr_q <= alloc_ptr_q + 1'b1;
      end

      // issue
      if (m_axi_arready) ar_valid_q <= 1'b0;
      if (ar_load) begin
        if (!(ar_bypass && m_axi_arready)) ar_valid_q <= 1'b1;   // else taken straight from the bypass
        ar_id_q       <= ar_id_d;
        ar_addr_q     <= src_addr;
        ar_len_q      <= ar_len_d;
        iss_addr_q    <= {src_addr[63:OFF_W], OFF_W'(0)} + (64'(burst_beats) << OFF_W);
        iss_left_q    <= src_left - RL_W'(burst_beats);
        iss_line_q    <= src_line + LINE_W'(burst_beats);
        iss_active_q  <= !ar_last;
        bt_wr_q       <= bt_wr_q + 1'b1;
      end
      iss_ptr_q <= iss_ptr_q + (SLOT_W + 1)'(ar_last || iss_skip);
      if (iss_start) begin
        buf_head_q <= buf_head_q + LINE_W'(st_lines);
      end
      buf_free_q <= buf_free_q + buf_release - (iss_start ? FREE_W'(st_lines) : '0);

      // bursts in flight per slot, per ID and in the burst table
      for (int i = 0; i < NREQ; i++) begin
        slot_pend_q[i] <= slot_pend_q[i]
                          + PEND_W'(ar_load && iss_slot == SLOT_W'(i))
                          - PEND_W'(r_done && r_slot == SLOT_W'(i));
      end
      if (r_fire && m_axi_rresp[1]) slot_err_q[r_slot] <= 1'b1;
      bt_busy_q <= (bt_busy_q | (ar_load ? NBURST'(1) << bt_wr_q : '0))
                   & ~(r_done ? NBURST'(1) << r_bt : '0);
      if (r_done && IDQ > 1) rh_q[r_idu] <= rh_q[r_idu] + 1'b1;

      // transmit
      if (cpl_hdr_ready_i) cpl_hdr_valid_o <= 1'b0;
      if (tx_step) begin
        cpl_hdr_valid_o <= 1'b1;
        cpl_hdr_o       <= tx_hdr;
        dq_wr_q         <= dq_wr_q + 1'b1;
        if (tx_last) begin
          tx_pos_q <= '0;
          tx_ptr_q <= tx_ptr_q + 1'b1;
        end else begin
          tx_pos_q <= tx_pos_q + tx_cut;
        end
      end

      // read-out
      if (dq_pop) dq_rd_q <= dq_rd_q + 1'b1;
      if (f_read) f_idx_q <= f_done_desc ? '0 : f_idx_q + 1'b1;
      rd_valid_q <= f_read;
      if (rd_valid_q) lf_wr_q <= lf_wr_q + 1'b1;
      if (lf_pop) lf_rd_q <= lf_rd_q + 1'b1;

      // realigner
      if (m_axis_cpl_tready) m_axis_cpl_tvalid <= 1'b0;
      if (al_emit) begin
        m_axis_cpl_tvalid <= 1'b1;
        m_axis_cpl_tdata  <= al_data;
        m_axis_cpl_tkeep  <= c_left >= 13'(B) ? '1 : ~({B{1'b1}} << c_left);
        m_axis_cpl_tlast  <= c_left <= 13'(B);
        al_left_q   <= c_left - 13'(B);
        al_active_q <= c_left > 13'(B);
        al_lane_q   <= c_lane;
        al_hold_q   <= c_hold;
      end
      if (al_load) begin
        al_active_q <= 1'b1;
        al_hold_q   <= 1'b1;
        al_lane_q   <= c_lane;
        al_left_q   <= c_left;
      end
      if (lf_pop) al_held_q <= lf_data;
    end
  end

endmodule

`resetall
