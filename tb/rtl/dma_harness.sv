`resetall
`timescale 1ns / 1ps
`default_nettype none

// Test harness for tb/cocotb_dma.py: dma_rd + dma_wr + tlp_tx as the top will wire them.
// * One AXI4 master port (m_axi_*): dma_rd drives the read channels, dma_wr the write channels (they
//   share nothing, so no arbiter is needed).
// * tlp_tx with two sources: 0 = dma_rd's completions, 1 = a TLP source driven by the testbench
//   (s_tx_hdr_* + s_axis_tx_*), so arbitration and the general header path are exercised too.
// * wr_done_cnt_o counts dma_wr's done_o pulses, so the testbench can read how many writes are
//   finished without sampling every cycle.
// Not product RTL: it lives under tb/rtl/.
module dma_harness
  import dma_pkg::*;
#(
  parameter int AXI_DATA_W  = 256,
  parameter int AXI_ID_W    = 4,
  parameter int MAX_PAYLOAD = 256,
  parameter int RCB         = 64,
  parameter int NREQ        = 32,    // dma_rd's request table
  parameter int NBURST      = 32,    // dma_rd's read bursts in flight
  parameter bit AR_BYPASS   = 1'b1   // dma_rd's AR bypass
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,
  input  logic [15:0]             completer_id_i,

  input  rd_req_t                 rd_req_i,
  input  logic                    rd_req_valid_i,
  output logic                    rd_req_ready_o,
  output logic                    rd_idle_o,       // dma_rd idle_o (no memory read outstanding)

  input  wr_req_t                 wr_req_i,
  input  logic                    wr_req_valid_i,
  output logic                    wr_req_ready_o,
  input  logic [AXI_DATA_W-1:0]   s_axis_wr_tdata,
  input  logic [AXI_DATA_W/8-1:0] s_axis_wr_tkeep,
  input  logic                    s_axis_wr_tvalid,
  input  logic                    s_axis_wr_tlast,
  input  logic                    s_axis_wr_tuser,
  output logic                    s_axis_wr_tready,
  output logic [31:0]             wr_done_cnt_o,

  input  tx_hdr_t                 tx_hdr_i,
  input  logic                    tx_hdr_valid_i,
  output logic                    tx_hdr_ready_o,
  input  logic [AXI_DATA_W-1:0]   s_axis_tx_tdata,
  input  logic [AXI_DATA_W/8-1:0] s_axis_tx_tkeep,
  input  logic                    s_axis_tx_tvalid,
  input  logic                    s_axis_tx_tlast,
  output logic                    s_axis_tx_tready,

  output logic [AXI_DATA_W-1:0]   m_axis_tlp_tdata,
  output logic [AXI_DATA_W/8-1:0] m_axis_tlp_tkeep,
  output logic                    m_axis_tlp_tvalid,
  output logic                    m_axis_tlp_tlast,
  input  logic                    m_axis_tlp_tready,

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
  input  logic [AXI_ID_W-1:0]     m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  input  logic                    m_axi_bvalid,
  output logic                    m_axi_bready,
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
  input  logic [1:0]              m_axi_rresp,
  input  logic                    m_axi_rlast,
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready
);

  tx_hdr_t                  cpl_h;
  logic                     cpl_h_valid, cpl_h_ready;
  logic [AXI_DATA_W-1:0]    cpl_tdata;
  logic [AXI_DATA_W/8-1:0]  cpl_tkeep;
  logic                     cpl_tvalid, cpl_tlast, cpl_tready;
  logic                     wr_done;

  dma_rd #(
    .AXI_DATA_W (AXI_DATA_W),
    .AXI_ID_W   (AXI_ID_W),
    .MAX_PAYLOAD(MAX_PAYLOAD),
    .RCB        (RCB),
    .NREQ       (NREQ),
    .NBURST     (NBURST),
    .AR_BYPASS  (AR_BYPASS)
  ) u_rd (
    .clk_i, .rst_ni, .completer_id_i,
    .req_i(rd_req_i), .req_valid_i(rd_req_valid_i), .req_ready_o(rd_req_ready_o),
    .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock,
    .m_axi_arcache, .m_axi_arprot, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready,
    .cpl_hdr_o(cpl_h), .cpl_hdr_valid_o(cpl_h_valid), .cpl_hdr_ready_i(cpl_h_ready),
    .m_axis_cpl_tdata(cpl_tdata), .m_axis_cpl_tkeep(cpl_tkeep), .m_axis_cpl_tvalid(cpl_tvalid),
    .m_axis_cpl_tlast(cpl_tlast), .m_axis_cpl_tready(cpl_tready),
    .idle_o(rd_idle_o)
  );

  dma_wr #(
    .AXI_DATA_W(AXI_DATA_W),
    .AXI_ID_W  (AXI_ID_W)
  ) u_wr (
    .clk_i, .rst_ni,
    .req_i(wr_req_i), .req_valid_i(wr_req_valid_i), .req_ready_o(wr_req_ready_o),
    .s_axis_tdata(s_axis_wr_tdata), .s_axis_tkeep(s_axis_wr_tkeep), .s_axis_tvalid(s_axis_wr_tvalid),
    .s_axis_tlast(s_axis_wr_tlast), .s_axis_tuser(s_axis_wr_tuser), .s_axis_tready(s_axis_wr_tready),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock,
    .m_axi_awcache, .m_axi_awprot, .m_axi_awvalid, .m_axi_awready,
    .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
    .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready,
    .done_o(wr_done)
  );

  tlp_tx #(
    .DATA_W (AXI_DATA_W),
    .NUM_SRC(2)
  ) u_tx (
    .clk_i, .rst_ni,
    .hdr_i        ({tx_hdr_i, cpl_h}),
    .hdr_valid_i  ({tx_hdr_valid_i, cpl_h_valid}),
    .hdr_ready_o  ({tx_hdr_ready_o, cpl_h_ready}),
    .s_axis_tdata ({s_axis_tx_tdata, cpl_tdata}),
    .s_axis_tkeep ({s_axis_tx_tkeep, cpl_tkeep}),
    .s_axis_tvalid({s_axis_tx_tvalid, cpl_tvalid}),
    .s_axis_tlast ({s_axis_tx_tlast, cpl_tlast}),
    .s_axis_tready({s_axis_tx_tready, cpl_tready}),
    .m_axis_tdata (m_axis_tlp_tdata),
    .m_axis_tkeep (m_axis_tlp_tkeep),
    .m_axis_tvalid(m_axis_tlp_tvalid),
    .m_axis_tlast (m_axis_tlp_tlast),
    .m_axis_tready(m_axis_tlp_tready)
  );

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) wr_done_cnt_o <= '0;
    else if (wr_done) wr_done_cnt_o <= wr_done_cnt_o + 1'b1;
  end

endmodule

`resetall
