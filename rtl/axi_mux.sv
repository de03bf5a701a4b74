`resetall
`timescale 1ns / 1ps
`default_nettype none

// N-to-1 AXI4 mux: the IOMMU's internal masters (PASID lookup, page walker, control block, queues)
// share one AXI4 master port. Upstream row i of every s_axi_* packed array is master i.
//
// IDs (AMBA AXI4, ARM IHI 0022E §A5): the downstream ID is {i, upstream ID}, so transactions of
// different masters never share an ID downstream; B and R are routed back by the top SEL_W bits of
// BID/RID, which are stripped. Each master keeps its own per-ID ordering; the slave may reorder across
// masters as across any two IDs. Exclusive accesses (AxLOCK, §A7.2) pass through unchanged: the
// slave's monitor sees distinct IDs per master, so two masters' reservations never replace each other.
//
// AR and AW, each on its own (§A3.2.1 handshake): a registered grant selects one upstream row, whose
// VALID and payload go straight downstream and whose READY is the downstream READY. The grant moves
// only in a cycle where its holder has no request or its request is accepted downstream, so once the
// downstream VALID is up, payload and grant stay until the handshake (the holder must hold them too,
// §A3.2.1). It moves round-robin: to the first requester after the holder, the holder itself last.
// Throughput: one address per cycle while requests keep coming; a master that starts requesting while
// the grant is elsewhere and idle waits one cycle for the grant to move.
//
// W (AXI4 has no WID: write data follows the order of the write addresses, §A5.3): every AW accepted
// downstream pushes its source index into a FIFO of W_FIFO entries; W beats are taken only from the
// master at the head of it and the head pops on the WLAST beat. A full FIFO holds AW back (AWVALID
// low downstream). A master's W beats offered before its AW is through just wait. Downstream, W of a
// burst never starts before its AW handshake.
//
// No VALID output depends combinationally on a READY input (§A3.3.1): downstream AWVALID, ARVALID
// and WVALID come from upstream VALIDs, the grants and the W FIFO state; upstream BVALID and RVALID
// from the downstream BVALID/RVALID and the ID. READYs pass through combinationally (READY may
// depend on VALID). A B or R whose ID names no upstream row (N not a power of two; only a faulty
// slave sends one) is taken and dropped rather than left blocking the channel.
module axi_mux #(
  parameter  int unsigned N      = 2,    // upstream masters (>= 2)
  parameter  int unsigned ID_W   = 4,    // upstream ID width
  parameter  int unsigned DATA_W = 256,  // data width, a multiple of 8
  parameter  int unsigned W_FIFO = 4,    // writes whose AW is through and whose W beats are not all (>= 1)
  localparam int unsigned SEL_W  = $clog2(N),
  localparam int unsigned M_ID_W = ID_W + SEL_W  // downstream ID = {source index, upstream ID}
) (
  input  wire logic                           clk_i,
  input  wire logic                           rst_ni,

  // upstream: one row per master
  input  wire logic [N-1:0][ID_W-1:0]         s_axi_awid,
  input  wire logic [N-1:0][63:0]             s_axi_awaddr,
  input  wire logic [N-1:0][7:0]              s_axi_awlen,
  input  wire logic [N-1:0][2:0]              s_axi_awsize,
  input  wire logic [N-1:0][1:0]              s_axi_awburst,
  input  wire logic [N-1:0]                   s_axi_awlock,
  input  wire logic [N-1:0][3:0]              s_axi_awcache,
  input  wire logic [N-1:0][2:0]              s_axi_awprot,
  input  wire logic [N-1:0][3:0]              s_axi_awqos,
  input  wire logic [N-1:0]                   s_axi_awvalid,
  output      logic [N-1:0]                   s_axi_awready,
  input  wire logic [N-1:0][DATA_W-1:0]       s_axi_wdata,
  input  wire logic [N-1:0][DATA_W/8-1:0]     s_axi_wstrb,
  input  wire logic [N-1:0]                   s_axi_wlast,
  input  wire logic [N-1:0]                   s_axi_wvalid,
  output      logic [N-1:0]                   s_axi_wready,
  output      logic [N-1:0][ID_W-1:0]         s_axi_bid,
  output      logic [N-1:0][1:0]              s_axi_bresp,
  output      logic [N-1:0]                   s_axi_bvalid,
  input  wire logic [N-1:0]                   s_axi_bready,
  input  wire logic [N-1:0][ID_W-1:0]         s_axi_arid,
  input  wire logic [N-1:0][63:0]             s_axi_araddr,
  input  wire logic [N-1:0][7:0]              s_axi_arlen,
  input  wire logic [N-1:0][2:0]              s_axi_arsize,
  input  wire logic [N-1:0][1:0]              s_axi_arburst,
  input  wire logic [N-1:0]                   s_axi_arlock,
  input  wire logic [N-1:0][3:0]              s_axi_arcache,
  input  wire logic [N-1:0][2:0]              s_axi_arprot,
  input  wire logic [N-1:0][3:0]              s_axi_arqos,
  input  wire logic [N-1:0]                   s_axi_arvalid,
  output      logic [N-1:0]                   s_axi_arready,
  output      logic [N-1:0][ID_W-1:0]         s_axi_rid,
  output      logic [N-1:0][DATA_W-1:0]       s_axi_rdata,
  output      logic [N-1:0][1:0]              s_axi_rresp,
  output      logic [N-1:0]                   s_axi_rlast,
  output      logic [N-1:0]                   s_axi_rvalid,
  input  wire logic [N-1:0]                   s_axi_rready,

  // downstream
  output      logic [M_ID_W-1:0]              m_axi_awid,
  output      logic [63:0]                    m_axi_awaddr,
  output      logic [7:0]                     m_axi_awlen,
  output      logic [2:0]                     m_axi_awsize,
  output      logic [1:0]                     m_axi_awburst,
  output      logic                           m_axi_awlock,
  output      logic [3:0]                     m_axi_awcache,
  output      logic [2:0]                     m_axi_awprot,
  output      logic [3:0]                     m_axi_awqos,
  output      logic                           m_axi_awvalid,
  input  wire logic                           m_axi_awready,
  output      logic [DATA_W-1:0]              m_axi_wdata,
  output      logic [DATA_W/8-1:0]            m_axi_wstrb,
  output      logic                           m_axi_wlast,
  output      logic                           m_axi_wvalid,
  input  wire logic                           m_axi_wready,
  input  wire logic [M_ID_W-1:0]              m_axi_bid,
  input  wire logic [1:0]                     m_axi_bresp,
  input  wire logic                           m_axi_bvalid,
  output      logic                           m_axi_bready,
  output      logic [M_ID_W-1:0]              m_axi_arid,
  output      logic [63:0]                    m_axi_araddr,
  output      logic [7:0]                     m_axi_arlen,
  output      logic [2:0]                     m_axi_arsize,
  output      logic [1:0]                     m_axi_arburst,
  output      logic                           m_axi_arlock,
  output      logic [3:0]                     m_axi_arcache,
  output      logic [2:0]                     m_axi_arprot,
  output      logic [3:0]                     m_axi_arqos,
  output      logic                           m_axi_arvalid,
  input  wire logic                           m_axi_arready,
  input  wire logic [M_ID_W-1:0]              m_axi_rid,
  input  wire logic [DATA_W-1:0]              m_axi_rdata,
  input  wire logic [1:0]                     m_axi_rresp,
  input  wire logic                           m_axi_rlast,
  input  wire logic                           m_axi_rvalid,
  output      logic                           m_axi_rready
);

  localparam int unsigned WQ_PTR_W = W_FIFO > 1 ? $clog2(W_FIFO) : 1;
  localparam int unsigned WQ_CNT_W = $clog2(W_FIFO + 1);

  if (N < 2) begin : g_bad_n
    $error("axi_mux: N must be >= 2 (the ID prefix is $clog2(N) bits)");
  end
  if (W_FIFO < 1 || DATA_W % 8 != 0 || DATA_W == 0) begin : g_bad_params
    $error("axi_mux: W_FIFO must be >= 1 and DATA_W a non-zero multiple of 8");
  end

  // Round-robin choice: the first requester after `last` in cyclic order, `last` itself at the end;
  // `last` when nobody requests.
  function automatic logic [SEL_W-1:0] rr_next(input logic [N-1:0] req, input logic [SEL_W-1:0] last);
    logic [SEL_W-1:0] pick;
    pick = last;
    for (int unsigned k = N; k >= 1; k--) begin  // the nearest requester is assigned last and wins
      if (req[(int'(last) + k) % N]) pick = SEL_W'((int'(last) + k) % N);
    end
    return pick;
  endfunction

  // --- read address ----------------------------------------------------------------------------
  logic [SEL_W-1:0] ar_grant_q;

  assign m_axi_arvalid = s_axi_arvalid[ar_grant_q];
  assign m_axi_arid    = {ar_grant_q, s_axi_arid[ar_grant_q]};
  assign m_axi_araddr  = s_axi_araddr[ar_grant_q];
  assign m_axi_arlen   = s_axi_arlen[ar_grant_q];
  assign m_axi_arsize  = s_axi_arsize[ar_grant_q];
  assign m_axi_arburst = s_axi_arburst[ar_grant_q];
  assign m_axi_arlock  = s_axi_arlock[ar_grant_q];
  assign m_axi_arcache = s_axi_arcache[ar_grant_q];
  assign m_axi_arprot  = s_axi_arprot[ar_grant_q];
  assign m_axi_arqos   = s_axi_arqos[ar_grant_q];

  always_comb begin
    for (int unsigned i = 0; i < N; i++) s_axi_arready[i] = ar_grant_q == SEL_W'(i) && m_axi_arready;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) ar_grant_q <= '0;
    else if (!m_axi_arvalid || m_axi_arready) ar_grant_q <= rr_next(s_axi_arvalid, ar_grant_q);
  end

  // --- write address and the W order FIFO ------------------------------------------------------
  logic [SEL_W-1:0]              aw_grant_q;
  logic [W_FIFO-1:0][SEL_W-1:0]  wq_q;        // source index per write whose W beats are not all through
  logic [WQ_PTR_W-1:0]           wq_wr_q, wq_rd_q;
  logic [WQ_CNT_W-1:0]           wq_cnt_q;
  logic                          wq_full, wq_empty, wq_push, wq_pop, aw_req;
  logic [SEL_W-1:0]              w_head;

  assign wq_full  = wq_cnt_q == WQ_CNT_W'(W_FIFO);
  assign wq_empty = wq_cnt_q == '0;
  assign w_head   = wq_q[wq_rd_q];

  assign aw_req        = s_axi_awvalid[aw_grant_q];
  assign m_axi_awvalid = aw_req && !wq_full;
  assign m_axi_awid    = {aw_grant_q, s_axi_awid[aw_grant_q]};
  assign m_axi_awaddr  = s_axi_awaddr[aw_grant_q];
  assign m_axi_awlen   = s_axi_awlen[aw_grant_q];
  assign m_axi_awsize  = s_axi_awsize[aw_grant_q];
  assign m_axi_awburst = s_axi_awburst[aw_grant_q];
  assign m_axi_awlock  = s_axi_awlock[aw_grant_q];
  assign m_axi_awcache = s_axi_awcache[aw_grant_q];
  assign m_axi_awprot  = s_axi_awprot[aw_grant_q];
  assign m_axi_awqos   = s_axi_awqos[aw_grant_q];

  assign m_axi_wvalid = !wq_empty && s_axi_wvalid[w_head];
  assign m_axi_wdata  = s_axi_wdata[w_head];
  assign m_axi_wstrb  = s_axi_wstrb[w_head];
  assign m_axi_wlast  = s_axi_wlast[w_head];

  always_comb begin
    for (int unsigned i = 0; i < N; i++) begin
      s_axi_awready[i] = aw_grant_q == SEL_W'(i) && m_axi_awready && !wq_full;
      s_axi_wready[i]  = w_head == SEL_W'(i) && m_axi_wready && !wq_empty;
    end
  end

  assign wq_push = m_axi_awvalid && m_axi_awready;
  assign wq_pop  = m_axi_wvalid && m_axi_wready && m_axi_wlast;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      aw_grant_q <= '0;
      wq_q       <= '0;
      wq_wr_q    <= '0;
      wq_rd_q    <= '0;
      wq_cnt_q   <= '0;
    end else begin
      // a request held back by a full FIFO keeps the grant (aw_req stays up)
      if (!aw_req || wq_push) aw_grant_q <= rr_next(s_axi_awvalid, aw_grant_q);
      if (wq_push) begin
        wq_q[wq_wr_q] <= aw_grant_q;
        wq_wr_q       <= wq_wr_q == WQ_PTR_W'(W_FIFO - 1) ? '0 : wq_wr_q + 1'b1;
      end
      if (wq_pop) wq_rd_q <= wq_rd_q == WQ_PTR_W'(W_FIFO - 1) ? '0 : wq_rd_q + 1'b1;
      if (wq_push != wq_pop) wq_cnt_q <= wq_push ? wq_cnt_q + 1'b1 : wq_cnt_q - 1'b1;
    end
  end

  // --- responses: routed by the ID's top SEL_W bits --------------------------------------------
  logic [SEL_W-1:0] b_sel, r_sel;

  assign b_sel = m_axi_bid[M_ID_W-1:ID_W];
  assign r_sel = m_axi_rid[M_ID_W-1:ID_W];

  always_comb begin
    m_axi_bready = 1'b1;  // no row of that index: dropped (see the header)
    m_axi_rready = 1'b1;
    for (int unsigned i = 0; i < N; i++) begin
      s_axi_bid[i]    = m_axi_bid[ID_W-1:0];
      s_axi_bresp[i]  = m_axi_bresp;
      s_axi_bvalid[i] = m_axi_bvalid && b_sel == SEL_W'(i);
      s_axi_rid[i]    = m_axi_rid[ID_W-1:0];
      s_axi_rdata[i]  = m_axi_rdata;
      s_axi_rresp[i]  = m_axi_rresp;
      s_axi_rlast[i]  = m_axi_rlast;
      s_axi_rvalid[i] = m_axi_rvalid && r_sel == SEL_W'(i);
      if (b_sel == SEL_W'(i)) m_axi_bready = s_axi_bready[i];
      if (r_sel == SEL_W'(i)) m_axi_rready = s_axi_rready[i];
    end
  end

endmodule

`resetall
