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
// address (unaligned), the later ones aligned; one AXI ID per burst in flight (2^AXI_ID_W of them), so
// read data of different bursts may come back in any order or interleaved. A request's data lands in a
// circular buffer of BUF_BYTES (one line per bus beat, allocated in full when the first burst issues,
// freed in order once read out), at the lanes of its address. The transmit side walks the
// completions of the oldest request and reads its lines out through a realigner (payload byte 0 in
// lane 0 for tlp_tx). Memory bytes outside the request but in the same bus beat are read too (host
// memory has no read side effects).
//
// Throughput: one R beat per cycle in; one request accepted and one AR issued per cycle for
// one-burst reads; out, one payload beat per cycle, plus one realignment cycle per completion whose
// payload does not start in lane 0 and spans more than one bus line (a payload within one line, e.g.
// a 1-DW read at any offset, has none): back-to-back 1-DW reads with memory latency 0 leave as
// completions one beat per cycle (dma_perf, 256-bit bus: 40 reads -> 40 cycles, lane-0 data and any
// offset). A slot is held from acceptance until its last completion header is issued, about memory
// latency + 6 cycles, and an AXI ID carries one burst at a time, so sustained 1-DW reads are bounded
// by NREQ and 2^AXI_ID_W over that time: ~0.6 per cycle at memory latency 20 with 16 of each.
// Latency (no back-pressure): request handshake -> AR valid 2 cycles; last R beat -> completion header
// valid 1 cycle, its first payload beat 3 cycles (buffer read, line FIFO, realigner register); through
// tlp_tx the first TLP beat is valid 4 cycles after the last R beat.
module dma_rd
  import dma_pkg::*;
#(
  parameter int AXI_DATA_W  = 256,
  parameter int AXI_ID_W    = 4,
  parameter int MAX_PAYLOAD = 256,   // bytes: 128..4096 (Max_Payload_Size)
  parameter int RCB         = 64,    // bytes: 64 or 128 (Read Completion Boundary)
  parameter int NREQ        = 16,    // requests accepted and not yet fully answered (power of two)
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
  localparam int PEND_W  = $clog2(NID + 1);
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
  // Issue: allocate the buffer lines, then one AR per burst (AR outputs registered)
  // -----------------------------------------------------------------------------------------------
  logic                 iss_active_q;           // lines allocated, bursts going out
  logic [63:0]          iss_addr_q;
  logic [RL_W-1:0]      iss_left_q;             // beats still to request
  logic [LINE_W-1:0]    iss_line_q;             // buffer line of the next burst's first beat
  logic [LINE_W-1:0]    buf_head_q;             // next line to allocate
  logic [FREE_W-1:0]    buf_free_q;
  logic [FREE_W-1:0]    buf_release;            // lines the read-out side frees this cycle

  logic [NID-1:0]       id_busy_q;
  logic [SLOT_W-1:0]    id_slot_q [NID];
  logic [LINE_W-1:0]    id_line_q [NID];

  logic [63:2]          iss_req_addr;
  logic [2:0]           iss_req_status;
  logic                 iss_pending, iss_skip, iss_start, ar_load, ar_free, id_any;
  logic [AXI_ID_W-1:0]  id_pick;
  logic [8:0]           burst_beats;            // 1..256

  // The next request may start in the cycle the current one loads its last burst (one request per
  // cycle when each is one burst): it is the slot after the current one then.
  logic                 ar_last, iss_free;
  logic [SLOT_W:0]      nxt_ptr;
  logic [SLOT_W-1:0]    nxt_slot;
  assign ar_last  = ar_load && iss_left_q == RL_W'(burst_beats);
  assign iss_free = !iss_active_q || ar_last;
  assign nxt_ptr  = ar_last ? iss_ptr_q + 1'b1 : iss_ptr_q;
  assign nxt_slot = nxt_ptr[SLOT_W-1:0];

  assign iss_req_addr   = slot_req_q[nxt_slot].addr[63:2];
  assign iss_req_status = slot_req_q[nxt_slot].status;
  assign iss_pending = nxt_ptr != alloc_ptr_q;
  assign ar_free     = !m_axi_arvalid || m_axi_arready;
  assign iss_skip    = iss_pending && iss_free && iss_req_status != CPL_SC;
  assign iss_start   = iss_pending && iss_free && iss_req_status == CPL_SC
                       && buf_free_q >= FREE_W'(slot_lines_q[nxt_slot]);
  assign ar_load     = iss_active_q && ar_free && id_any;

  always_comb begin
    id_any  = 1'b0;
    id_pick = '0;
    for (int i = NID - 1; i >= 0; i--) begin
      if (!id_busy_q[i]) begin
        id_any  = 1'b1;
        id_pick = AXI_ID_W'(i);
      end
    end
  end

  // A burst: the beats left, at most 256, not past the next 4 KiB boundary (AXI4 §A3.4.1)
  always_comb begin
    logic [12:0] to_4k;
    to_4k = (13'h1000 - 13'({iss_addr_q[11:OFF_W], OFF_W'(0)})) >> OFF_W;
    burst_beats = 9'd256;
    if (13'(iss_left_q) < 13'(burst_beats)) burst_beats = 9'(iss_left_q);
    if (to_4k < 13'(burst_beats)) burst_beats = 9'(to_4k);
  end

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
  assign r_fire = m_axi_rvalid;                 // rready is 1
  assign r_done = r_fire && m_axi_rlast;
  assign r_slot = id_slot_q[m_axi_rid];

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
    if (r_fire) buf_mem[id_line_q[m_axi_rid]] <= m_axi_rdata;
    if (f_read) rd_data_q <= buf_mem[dq_head.line + LINE_W'(f_idx_q)];
    if (accept) begin
      slot_req_q[alloc_ptr_q[SLOT_W-1:0]]   <= req_i;
      slot_lines_q[alloc_ptr_q[SLOT_W-1:0]] <= req_i.status == CPL_SC
                                               ? lines_of(req_i.addr[OFF_W-1:2], req_i.length) : '0;
    end
    if (iss_start) slot_base_q[nxt_slot] <= buf_head_q;
    if (ar_load) begin
      id_slot_q[id_pick] <= iss_slot;
      id_line_q[id_pick] <= iss_line_q;
    end
    if (r_fire) id_line_q[m_axi_rid] <= id_line_q[m_axi_rid] + 1'b1;
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
      id_busy_q     <= '0;
      m_axi_arvalid <= 1'b0;
      m_axi_arid    <= '0;
      m_axi_araddr  <= '0;
      m_axi_arlen   <= '0;
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

      // issue (a start in the cycle of the last burst's load wins over that load's updates)
      if (m_axi_arready) m_axi_arvalid <= 1'b0;
      if (ar_load) begin
        m_axi_arvalid <= 1'b1;
        m_axi_arid    <= id_pick;
        m_axi_araddr  <= iss_addr_q;
        m_axi_arlen   <= 8'(burst_beats - 9'd1);
        iss_addr_q   <= {iss_addr_q[63:OFF_W], OFF_W'(0)} + (64'(burst_beats) << OFF_W);
        iss_left_q   <= iss_left_q - RL_W'(burst_beats);
        iss_line_q   <= iss_line_q + LINE_W'(burst_beats);
        if (ar_last) iss_active_q <= 1'b0;
      end
      iss_ptr_q <= nxt_ptr + (SLOT_W + 1)'(iss_skip);
      if (iss_start) begin
        iss_active_q <= 1'b1;
        iss_addr_q   <= {iss_req_addr, 2'b00};
        iss_left_q   <= slot_lines_q[nxt_slot];
        iss_line_q   <= buf_head_q;
        buf_head_q   <= buf_head_q + LINE_W'(slot_lines_q[nxt_slot]);
      end
      buf_free_q <= buf_free_q + buf_release
                    - (iss_start ? FREE_W'(slot_lines_q[nxt_slot]) : '0);

      // bursts in flight per slot and ID
      for (int i = 0; i < NREQ; i++) begin
        slot_pend_q[i] <= slot_pend_q[i]
                          + PEND_W'(ar_load && iss_slot == SLOT_W'(i))
                          - PEND_W'(r_done && r_slot == SLOT_W'(i));
      end
      if (r_fire && m_axi_rresp[1]) slot_err_q[r_slot] <= 1'b1;
      id_busy_q <= (id_busy_q | (ar_load ? NID'(1) << id_pick : '0))
                   & ~(r_done ? NID'(1) << m_axi_rid : '0);

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
