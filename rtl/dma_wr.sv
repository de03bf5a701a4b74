`resetall
`timescale 1ns / 1ps
`default_nettype none

// Translated DMA writes: a write header (already translated, dma_pkg::wr_req_t) + its payload stream
// exactly as tlp_rx_parser emits it -> AXI4 write bursts with WSTRB from the byte enables. Posted:
// nothing is answered; an AXI write error is dropped (models.iommu: "writes are dropped, nothing is
// logged"). Only the enabled bytes are written (First/Last DW BE; models.iommu's DMA rule).
//
// * Payload in (s_axis_*): payload byte 0 in lane 0; tuser on the last beat = the parser found that
//   the payload does not match Length. Payloads are stored whole, in arrival order, in a circular
//   buffer of BUF_BYTES (one line per beat) before anything goes to memory, because a bad payload is
//   known only at its last beat and must not reach memory. The payload may arrive before its header
//   (the header waits for the translation); headers and payloads pair up in order.
// * A write is dropped (payload consumed, no AXI traffic) when the header says drop, the payload
//   came with tuser, its byte count differs from Length (also caught here, in case tuser is missing),
//   it is longer than 4 KiB (the excess is discarded on arrival), or no byte is enabled (Length 1,
//   First DW BE 0000b: a zero-length write).
// * Bursts: INCR, full-width beats, at most 256 beats, never across 4 KiB; the first starts at the
//   write's address (unaligned), the later ones are aligned. One AXI ID (AXI_ID) for all writes keeps
//   them in order (PCIe posted writes stay ordered). Data is realigned from lane 0 to the address lanes
//   on the way out.
// * done_o pulses once per header, in header order, when its write is finished: every burst answered
//   (B), or the write dropped. The top counts these to keep a later read behind earlier writes
//   (PCIe ordering: a read must not pass a posted write).
//
// Throughput: payload in at one beat per cycle; W out at one beat per cycle within a write, plus two
// cycles between writes. Latency: last payload beat (with the header present) -> AW valid 2 cycles,
// first W beat valid 4 cycles.
module dma_wr
  import dma_pkg::*;
#(
  parameter int AXI_DATA_W  = 256,
  parameter int AXI_ID_W    = 4,
  parameter int AXI_ID      = 0,       // the ID of every write burst
  parameter int BUF_BYTES   = 8192,    // payload buffer (power of two, >= 4 KiB)
  parameter int MAX_BURSTS  = 8        // bursts waiting for B (power of two)
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  input  wr_req_t                 req_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  input  logic [AXI_DATA_W-1:0]   s_axis_tdata,
  input  logic [AXI_DATA_W/8-1:0] s_axis_tkeep,
  input  logic                    s_axis_tvalid,
  input  logic                    s_axis_tlast,
  input  logic                    s_axis_tuser,
  output logic                    s_axis_tready,

  // AXI4 write channels (host memory)
  output logic [AXI_ID_W-1:0]     m_axi_awid,
  output logic [63:0]             m_axi_awaddr,
  output logic [7:0]              m_axi_awlen,
  output logic [2:0]              m_axi_awsize,
  output logic [1:0]              m_axi_awburst,
  output logic                    m_axi_awlock,
  output logic [3:0]              m_axi_awcache,
  output logic [2:0]              m_axi_awprot,
  output logic                    m_axi_awvalid,
  input  logic                    m_axi_awready,
  output logic [AXI_DATA_W-1:0]   m_axi_wdata,
  output logic [AXI_DATA_W/8-1:0] m_axi_wstrb,
  output logic                    m_axi_wlast,
  output logic                    m_axi_wvalid,
  input  logic                    m_axi_wready,
  /* verilator lint_off UNUSEDSIGNAL */  // one ID, and errors are dropped: BID and BRESP carry nothing needed
  input  logic [AXI_ID_W-1:0]     m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_bvalid,
  output logic                    m_axi_bready,

  output logic                    done_o
);

  localparam int B      = AXI_DATA_W / 8;
  localparam int OFF_W  = $clog2(B);
  localparam int CNT_W  = $clog2(B + 1);
  localparam int LINES  = BUF_BYTES / B;
  localparam int LINE_W = $clog2(LINES);
  localparam int FREE_W = $clog2(LINES + 1);
  localparam int MAXB   = 4096 / B;               // payload lines of the longest write
  localparam int PB_W   = $clog2(MAXB + 2);       // 0..MAXB+1 (beats of a write incl. the realign spill)
  localparam int BT_W   = $clog2(MAX_BURSTS);
  localparam int LFIFO  = 4;

  if (B < 8 || (B & (B - 1)) != 0) begin : g_bad_width
    $error("dma_wr: AXI_DATA_W must be a power of two >= 64");
  end
  if (BUF_BYTES < 4096 || (BUF_BYTES & (BUF_BYTES - 1)) != 0) begin : g_bad_buf
    $error("dma_wr: BUF_BYTES must be a power of two >= 4096");
  end
  if (MAX_BURSTS < 2 || (MAX_BURSTS & (MAX_BURSTS - 1)) != 0) begin : g_bad_bursts
    $error("dma_wr: MAX_BURSTS must be a power of two >= 2");
  end

  function automatic logic [CNT_W-1:0] keep_count(input logic [B-1:0] keep);
    keep_count = '0;
    for (int i = 0; i < B; i++) keep_count += CNT_W'(keep[i]);
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Payload intake: every payload into the buffer, one record per payload
  // -----------------------------------------------------------------------------------------------
  typedef struct packed {
    logic [LINE_W-1:0] line;                    // first line
    logic [PB_W-1:0]   lines;                   // lines stored
    logic [12:0]       nbytes;                  // payload bytes (when not bad)
    logic              bad;                     // tuser, or longer than 4 KiB
  } rec_t;

  logic [AXI_DATA_W-1:0] buf_mem [LINES];       // no reset: a RAM
  logic [LINE_W-1:0]  in_ptr_q, in_start_q;
  logic [PB_W-1:0]    in_cnt_q;                 // lines of the current payload stored so far
  logic               in_over_q;                // the current payload is longer than 4 KiB
  logic [FREE_W-1:0]  free_q;
  logic [FREE_W-1:0]  release_lines;            // freed this cycle (read out, or dropped)

  rec_t               rq_q [4];
  logic [2:0]         rq_wr_q, rq_rd_q;
  logic               rq_full, rq_empty;
  rec_t               rq_head;
  assign rq_full  = (rq_wr_q - rq_rd_q) == 3'd4;
  assign rq_empty = rq_wr_q == rq_rd_q;
  assign rq_head  = rq_q[rq_rd_q[1:0]];

  logic in_store, in_fire;
  rec_t in_rec;
  assign in_store      = in_cnt_q < PB_W'(MAXB);
  assign s_axis_tready = !rq_full && (!in_store || free_q != '0);
  assign in_fire       = s_axis_tvalid && s_axis_tready;
  always_comb begin
    in_rec.line   = in_start_q;
    in_rec.lines  = in_cnt_q + PB_W'(in_store);
    in_rec.nbytes = 13'({in_cnt_q, OFF_W'(0)}) + 13'(keep_count(s_axis_tkeep));
    in_rec.bad    = s_axis_tuser || in_over_q || !in_store;
  end

  // -----------------------------------------------------------------------------------------------
  // Headers (2-deep FIFO), pairing with payloads
  // -----------------------------------------------------------------------------------------------
  wr_req_t            hq_q [2];
  logic [1:0]         hq_wr_q, hq_rd_q;
  logic               hq_empty;
  wr_req_t            hq_head;
  assign hq_empty    = hq_wr_q == hq_rd_q;
  assign req_ready_o = (hq_wr_q - hq_rd_q) != 2'd2;
  assign hq_head     = hq_q[hq_rd_q[0]];

  // B tracking: one entry per burst (last = the write's last burst) or per dropped write (marker)
  logic [1:0]         bt_q [MAX_BURSTS];        // {marker, last}
  logic [BT_W:0]      bt_wr_q, bt_rd_q;
  logic               bt_full, bt_empty, bt_push_burst, bt_pop;
  logic [1:0]         bt_head;
  assign bt_full  = (bt_wr_q - bt_rd_q) == (BT_W + 1)'(MAX_BURSTS);
  assign bt_empty = bt_wr_q == bt_rd_q;
  assign bt_head  = bt_q[bt_rd_q[BT_W-1:0]];

  logic               j_active_q;               // a write is going out
  logic               pair, pair_ok;
  logic [10:0]        h_ndw;
  assign h_ndw   = len_dw(hq_head.length);
  assign pair    = !j_active_q && !hq_empty && !rq_empty && !bt_full;
  assign pair_ok = !hq_head.drop && !rq_head.bad && rq_head.nbytes == {h_ndw, 2'b00}
                   && !(h_ndw == 11'd1 && hq_head.first_be == 4'd0);

  // -----------------------------------------------------------------------------------------------
  // The current write: AW bursts, line reads, W beats
  // -----------------------------------------------------------------------------------------------
  logic [OFF_W-1:0]   j_off_q;                  // lane of the first byte
  logic [12:0]        j_nbytes_q;
  logic [3:0]         j_fbe_q, j_lbe_q;
  logic               j_one_dw_q;
  logic [LINE_W-1:0]  j_line_q;
  logic [PB_W-1:0]    j_lines_q, j_beats_q;     // payload lines; W beats (lines or lines + 1)
  logic [63:0]        aw_addr_q;
  logic [PB_W-1:0]    aw_left_q;
  logic [PB_W-1:0]    f_idx_q;                  // lines read
  logic [PB_W-1:0]    w_k_q;                    // W beats sent
  logic [8:0]         w_in_burst_q;             // beats sent of the current burst
  logic [AXI_DATA_W-1:0] w_prev_q;              // the previous payload line (spill-over bytes)

  // burst lengths, AW -> W
  logic [8:0]         wl_q [4];
  logic [2:0]         wl_wr_q, wl_rd_q;
  logic               wl_full, wl_empty;
  logic [8:0]         wl_head;
  assign wl_full  = (wl_wr_q - wl_rd_q) == 3'd4;
  assign wl_empty = wl_wr_q == wl_rd_q;
  assign wl_head  = wl_q[wl_rd_q[1:0]];

  logic [8:0]         burst_beats;
  logic               aw_load;
  always_comb begin
    logic [12:0] to_4k;
    to_4k = (13'h1000 - 13'({aw_addr_q[11:OFF_W], OFF_W'(0)})) >> OFF_W;
    burst_beats = 9'd256;
    if (13'(aw_left_q) < 13'(burst_beats)) burst_beats = 9'(aw_left_q);
    if (to_4k < 13'(burst_beats)) burst_beats = 9'(to_4k);
  end
  assign aw_load = j_active_q && aw_left_q != '0 && (!m_axi_awvalid || m_axi_awready) && !bt_full
                   && !wl_full;
  assign bt_push_burst = aw_load;

  // line reads -> line FIFO
  logic                  f_read, rd_valid_q;
  logic [AXI_DATA_W-1:0] rd_data_q;
  logic [AXI_DATA_W-1:0] lf_q [LFIFO];
  logic [2:0]            lf_wr_q, lf_rd_q;
  logic                  lf_valid, lf_pop;
  assign lf_valid = lf_wr_q != lf_rd_q;
  assign f_read   = j_active_q && f_idx_q != j_lines_q
                    && 3'(lf_wr_q - lf_rd_q) + 3'(rd_valid_q) < 3'(LFIFO);
  assign release_lines = (f_read && f_idx_q + 1'b1 == j_lines_q) ? FREE_W'(j_lines_q)
                       : (pair && !pair_ok) ? FREE_W'(rq_head.lines) : '0;

  // W beats
  logic                  w_load, w_need_line, w_first, w_final;
  logic [AXI_DATA_W-1:0] w_cur, w_data;
  logic [B-1:0]          w_strb;
  assign w_need_line = w_k_q < j_lines_q;
  assign w_first     = w_k_q == '0;
  assign w_final     = w_k_q + 1'b1 == j_beats_q;
  assign w_load      = j_active_q && w_k_q != j_beats_q && !wl_empty && (!m_axi_wvalid || m_axi_wready)
                       && (!w_need_line || lf_valid);
  assign lf_pop      = w_load && w_need_line;
  assign w_cur       = w_need_line ? lf_q[lf_rd_q[1:0]] : '0;
  assign w_data      = AXI_DATA_W'({w_cur, w_prev_q} >> (8 * (B - int'(j_off_q))));

  always_comb begin
    logic [CNT_W-1:0] hi;                       // one past the last lane of the final beat
    logic [B-1:0]     lo_mask, hi_mask;
    logic [3:0]       fbe_off, lbe_off;          // disabled bytes of the first / last DW
    hi      = CNT_W'(OFF_W'(13'(j_off_q) + j_nbytes_q - 13'd1)) + CNT_W'(1);
    lo_mask = w_first ? ({B{1'b1}} << j_off_q) : '1;
    hi_mask = w_final ? ~({B{1'b1}} << hi) : '1;       // hi = B: all lanes
    w_strb  = lo_mask & hi_mask;
    fbe_off = ~j_fbe_q;
    lbe_off = ~j_lbe_q;
    if (w_first) w_strb &= ~(B'(fbe_off) << j_off_q);
    if (w_final && !j_one_dw_q) w_strb &= ~(B'(lbe_off) << (hi - CNT_W'(4)));
  end

  logic j_done;
  assign j_done = j_active_q && aw_left_q == '0 && f_idx_q == j_lines_q && w_k_q == j_beats_q;

  // B channel
  assign m_axi_bready = !bt_empty && !bt_head[1];
  assign bt_pop       = !bt_empty && (bt_head[1] || m_axi_bvalid);

  assign m_axi_awid    = AXI_ID_W'(AXI_ID);
  assign m_axi_awsize  = 3'(OFF_W);
  assign m_axi_awburst = 2'b01;                 // INCR
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = 4'b0011;               // normal non-cacheable bufferable
  assign m_axi_awprot  = 3'b000;

  // -----------------------------------------------------------------------------------------------
  // Registers
  // -----------------------------------------------------------------------------------------------
  // Storage without reset (every entry is written before it is read): the buffer RAM with its
  // registered read port and the FIFOs' entries.
  always_ff @(posedge clk_i) begin
    if (in_fire && in_store) buf_mem[in_ptr_q] <= s_axis_tdata;
    if (f_read) rd_data_q <= buf_mem[j_line_q + LINE_W'(f_idx_q)];
    if (in_fire && s_axis_tlast) rq_q[rq_wr_q[1:0]] <= in_rec;
    if (req_valid_i && req_ready_o) hq_q[hq_wr_q[0]] <= req_i;
    if (aw_load) wl_q[wl_wr_q[1:0]] <= burst_beats;
    if (bt_push_burst || (pair && !pair_ok))
      bt_q[bt_wr_q[BT_W-1:0]] <= {!bt_push_burst, !bt_push_burst || aw_left_q == PB_W'(burst_beats)};
    if (rd_valid_q) lf_q[lf_wr_q[1:0]] <= rd_data_q;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      in_ptr_q      <= '0;
      in_start_q    <= '0;
      in_cnt_q      <= '0;
      in_over_q     <= 1'b0;
      free_q        <= FREE_W'(LINES);
      rq_wr_q       <= '0;
      rq_rd_q       <= '0;
      hq_wr_q       <= '0;
      hq_rd_q       <= '0;
      bt_wr_q       <= '0;
      bt_rd_q       <= '0;
      j_active_q    <= 1'b0;
      j_off_q       <= '0;
      j_nbytes_q    <= '0;
      j_fbe_q       <= '0;
      j_lbe_q       <= '0;
      j_one_dw_q    <= 1'b0;
      j_line_q      <= '0;
      j_lines_q     <= '0;
      j_beats_q     <= '0;
      aw_addr_q     <= '0;
      aw_left_q     <= '0;
      f_idx_q       <= '0;
      w_k_q         <= '0;
      w_in_burst_q  <= '0;
      w_prev_q      <= '0;
      wl_wr_q       <= '0;
      wl_rd_q       <= '0;
      rd_valid_q    <= 1'b0;
      lf_wr_q       <= '0;
      lf_rd_q       <= '0;
      m_axi_awvalid <= 1'b0;
      m_axi_awaddr  <= '0;
      m_axi_awlen   <= '0;
      m_axi_wvalid  <= 1'b0;
      m_axi_wdata   <= '0;
      m_axi_wstrb   <= '0;
      m_axi_wlast   <= 1'b0;
      done_o        <= 1'b0;
    end else begin
      // intake
      if (in_fire) begin
        if (in_store) begin
          in_ptr_q <= in_ptr_q + 1'b1;
          in_cnt_q <= in_cnt_q + 1'b1;
        end else begin
          in_over_q <= 1'b1;
        end
        if (s_axis_tlast) begin
          rq_wr_q    <= rq_wr_q + 1'b1;
          in_cnt_q   <= '0;
          in_over_q  <= 1'b0;
          in_start_q <= in_ptr_q + LINE_W'(in_store);
        end
      end
      free_q <= free_q + release_lines - FREE_W'(in_fire && in_store);

      // headers
      if (req_valid_i && req_ready_o) hq_wr_q <= hq_wr_q + 1'b1;

      // pairing
      if (pair) begin
        hq_rd_q <= hq_rd_q + 1'b1;
        rq_rd_q <= rq_rd_q + 1'b1;
        if (pair_ok) begin
          j_active_q <= 1'b1;
          j_off_q    <= {hq_head.addr[OFF_W-1:2], 2'b00};
          j_nbytes_q <= rq_head.nbytes;
          j_fbe_q    <= hq_head.first_be;
          j_lbe_q    <= hq_head.last_be;
          j_one_dw_q <= h_ndw == 11'd1;
          j_line_q   <= rq_head.line;
          j_lines_q  <= rq_head.lines;
          j_beats_q  <= PB_W'((14'({hq_head.addr[OFF_W-1:2], 2'b00}) + 14'(rq_head.nbytes)
                              + 14'(B - 1)) >> OFF_W);
          aw_addr_q  <= {hq_head.addr[63:2], 2'b00};
          aw_left_q  <= PB_W'((14'({hq_head.addr[OFF_W-1:2], 2'b00}) + 14'(rq_head.nbytes)
                              + 14'(B - 1)) >> OFF_W);
          f_idx_q    <= '0;
          w_k_q      <= '0;
          w_prev_q   <= '0;
        end
      end
      if (j_done) j_active_q <= 1'b0;

      // AW
      if (m_axi_awready) m_axi_awvalid <= 1'b0;
      if (aw_load) begin
        m_axi_awvalid <= 1'b1;
        m_axi_awaddr  <= aw_addr_q;
        m_axi_awlen   <= 8'(burst_beats - 9'd1);
        aw_addr_q     <= {aw_addr_q[63:OFF_W], OFF_W'(0)} + (64'(burst_beats) << OFF_W);
        aw_left_q     <= aw_left_q - PB_W'(burst_beats);
        wl_wr_q       <= wl_wr_q + 1'b1;
      end

      // B tracking
      if (bt_push_burst || (pair && !pair_ok)) bt_wr_q <= bt_wr_q + 1'b1;
      if (bt_pop) bt_rd_q <= bt_rd_q + 1'b1;
      done_o <= bt_pop && bt_head[0];

      // line reads
      if (f_read) f_idx_q <= f_idx_q + 1'b1;
      rd_valid_q <= f_read;
      if (rd_valid_q) lf_wr_q <= lf_wr_q + 1'b1;
      if (lf_pop) lf_rd_q <= lf_rd_q + 1'b1;

      // W
      if (m_axi_wready) m_axi_wvalid <= 1'b0;
      if (w_load) begin
        m_axi_wvalid <= 1'b1;
        m_axi_wdata  <= w_data;
        m_axi_wstrb  <= w_strb;
        m_axi_wlast  <= w_in_burst_q + 9'd1 == wl_head;
        w_prev_q     <= w_cur;
        w_k_q        <= w_k_q + 1'b1;
        if (w_in_burst_q + 9'd1 == wl_head) begin
          w_in_burst_q <= '0;
          wl_rd_q      <= wl_rd_q + 1'b1;
        end else begin
          w_in_burst_q <= w_in_burst_q + 9'd1;
        end
      end
    end
  end

endmodule

`resetall
