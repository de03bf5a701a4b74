`resetall
`timescale 1ns / 1ps
`default_nettype none

// Test harness for tb/cocotb_inv_queue.py: the invalidation queue engine (rtl/inv_queue.sv) with
// what it talks to in the top, so that the test drives it like software and a device do.
// * iommu_regs + iommu_ctrl: the register page over AXI4-Lite (s_axil_*); the engine reads it through
//   reg2hw and writes IQH / IQERCD / status bits through iommu_ctrl (iq_iqh, iq_iqercd, iq_set).
// * axi_mux: iommu_ctrl's message writes (row 0) and the engine's descriptor reads and status writes
//   (row 1) on one AXI4 master (m_axi_*, ID = {row, 4-bit ID}). iommu_ctrl has no read channels: its
//   read row is idle.
// * tlp_rx_parser on the TLP input (s_axis_rx_*, raw TLP bytes): the parsed header of every message
//   with code 0x02 goes to the engine's completion input, any other TLP is consumed and dropped.
// * tlp_tx with the engine as its only source: TLPs to devices on m_axis_tx_*.
// * The cache invalidation commands (cc_inv, pc_inv, iotlb_inv + done) are ports, answered by the
//   testbench; prq_drained_i and drain_ack_i come from the testbench.
// * Observation outputs (not product signals): the engine's register-side handshakes, the TLP-input
//   handshake, the engine's TLP header handshake, idle, and ev_o = any of those handshakes in this
//   cycle, so the testbench sleeps through cycles in which nothing happens.
// Not product RTL: it lives under tb/rtl/.
module inv_queue_harness
  import iommu_pkg::*;
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
  import dma_pkg::*;
  import pasid_lookup_pkg::*;
  import iotlb_pkg::*;
#(
  parameter int unsigned AXI_DATA_W     = 256,
  parameter int unsigned HAW            = 48,
  parameter logic [15:0] IOMMU_RID      = 16'h00f8,
  parameter int unsigned TIMEOUT_CYCLES = 3000,
  parameter int unsigned WAIT_SLOTS     = 4,
  localparam int unsigned ID_W          = 4,
  localparam int unsigned M_ID_W        = ID_W + 1,
  localparam int unsigned TLP_W         = 256
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  input  logic [REG_ADDR_W-1:0]   s_axil_awaddr,
  input  logic                    s_axil_awvalid,
  output logic                    s_axil_awready,
  input  logic [31:0]             s_axil_wdata,
  input  logic [3:0]              s_axil_wstrb,
  input  logic                    s_axil_wvalid,
  output logic                    s_axil_wready,
  output logic [1:0]              s_axil_bresp,
  output logic                    s_axil_bvalid,
  input  logic                    s_axil_bready,
  input  logic [REG_ADDR_W-1:0]   s_axil_araddr,
  input  logic                    s_axil_arvalid,
  output logic                    s_axil_arready,
  output logic [31:0]             s_axil_rdata,
  output logic [1:0]              s_axil_rresp,
  output logic                    s_axil_rvalid,
  input  logic                    s_axil_rready,

  input  logic [TLP_W-1:0]        s_axis_rx_tdata,
  input  logic [TLP_W/8-1:0]      s_axis_rx_tkeep,
  input  logic                    s_axis_rx_tvalid,
  input  logic                    s_axis_rx_tlast,
  output logic                    s_axis_rx_tready,

  output logic [TLP_W-1:0]        m_axis_tx_tdata,
  output logic [TLP_W/8-1:0]      m_axis_tx_tkeep,
  output logic                    m_axis_tx_tvalid,
  output logic                    m_axis_tx_tlast,
  input  logic                    m_axis_tx_tready,

  output pl_cc_inv_t              cc_inv_o,
  output logic                    cc_inv_valid_o,
  input  logic                    cc_inv_ready_i,
  output pl_pc_inv_t              pc_inv_o,
  output logic                    pc_inv_valid_o,
  input  logic                    pc_inv_ready_i,
  output iotlb_inv_t              iotlb_inv_o,
  output logic                    iotlb_inv_valid_o,
  input  logic                    iotlb_inv_ready_i,
  input  logic                    iotlb_inv_done_valid_i,
  output logic                    iotlb_inv_done_ready_o,
  input  logic                    prq_drained_i,
  output logic                    drain_req_o,
  input  logic                    drain_ack_i,

  // observation
  output iqh_hw2reg_t             iq_iqh_o,
  output iqercd_hw2reg_t          iq_iqercd_o,
  output iq_status_e              iq_set_o,
  output logic                    iq_set_fire_o,
  output logic                    rx_fire_o,
  output logic                    tx_hdr_valid_o,
  output logic                    tx_hdr_ready_o,
  output logic                    iq_idle_o,
  output logic                    ev_o,

  output logic [M_ID_W-1:0]       m_axi_awid,
  output logic [63:0]             m_axi_awaddr,
  output logic [7:0]              m_axi_awlen,
  output logic [2:0]              m_axi_awsize,
  output logic [1:0]              m_axi_awburst,
  output logic                    m_axi_awlock,
  output logic [3:0]              m_axi_awcache,
  output logic [2:0]              m_axi_awprot,
  output logic [3:0]              m_axi_awqos,
  output logic                    m_axi_awvalid,
  input  logic                    m_axi_awready,
  output logic [AXI_DATA_W-1:0]   m_axi_wdata,
  output logic [AXI_DATA_W/8-1:0] m_axi_wstrb,
  output logic                    m_axi_wlast,
  output logic                    m_axi_wvalid,
  input  logic                    m_axi_wready,
  input  logic [M_ID_W-1:0]       m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  input  logic                    m_axi_bvalid,
  output logic                    m_axi_bready,
  output logic [M_ID_W-1:0]       m_axi_arid,
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
  input  logic [M_ID_W-1:0]       m_axi_rid,
  input  logic [AXI_DATA_W-1:0]   m_axi_rdata,
  input  logic [1:0]              m_axi_rresp,
  input  logic                    m_axi_rlast,
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready
);

  // -----------------------------------------------------------------------------------------------
  // Register page and control block
  // -----------------------------------------------------------------------------------------------
  reg2hw_t        reg2hw;
  hw2reg_t        hw2reg;
  iq_status_e     iq_set;
  logic           iq_set_valid, iq_set_ready;
  iqh_hw2reg_t    iq_iqh;
  iqercd_hw2reg_t iq_iqercd;
  logic [1:0]     root_ttm;

  logic msg_pending;  // reads wait for the control block's pending messages (vtd §1.12 step 6)

  iommu_regs u_regs (
    .clk_i, .rst_ni,
    .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid,
    .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr, .s_axil_arvalid,
    .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
    .reg2hw_o (reg2hw),
    .rd_hold_i (msg_pending),
    .hw2reg_i (hw2reg)
  );

  // AXI rows: [0] iommu_ctrl, [1] inv_queue
  logic [1:0][ID_W-1:0]         s_awid, s_bid, s_arid;
  logic [1:0][63:0]             s_awaddr, s_araddr;
  logic [1:0][7:0]              s_awlen, s_arlen;
  logic [1:0][2:0]              s_awsize, s_arsize, s_awprot, s_arprot;
  logic [1:0][1:0]              s_awburst, s_arburst, s_bresp;
  logic [1:0]                   s_awlock, s_arlock, s_awvalid, s_awready, s_wlast, s_wvalid, s_wready;
  logic [1:0]                   s_bvalid, s_bready, s_arvalid, s_rready;
  logic [1:0][3:0]              s_awcache, s_arcache, s_awqos, s_arqos;
  logic [1:0][AXI_DATA_W-1:0]   s_wdata;
  logic [1:0][AXI_DATA_W/8-1:0] s_wstrb;
  /* verilator lint_off UNUSEDSIGNAL */  // row 0 (iommu_ctrl) never reads: its read responses are unused
  logic [1:0][ID_W-1:0]         s_rid;
  logic [1:0][1:0]              s_rresp;
  logic [1:0]                   s_arready, s_rlast, s_rvalid;
  logic [1:0][AXI_DATA_W-1:0]   s_rdata;
  /* verilator lint_on UNUSEDSIGNAL */

  /* verilator lint_off PINCONNECTEMPTY */  // the harness does not use the root table address or inv_all
  iommu_ctrl #(
    .AXI_DATA_W (AXI_DATA_W),
    .AXI_ID_W   (ID_W),
    .HAW        (HAW)
  ) u_ctrl (
    .clk_i, .rst_ni,
    .reg2hw_i        (reg2hw),
    .hw2reg_o        (hw2reg),
    .fault_i         ('0),
    .fault_valid_i   (1'b0),
    .fault_ready_o   (),
    .iq_set_i        (iq_set),
    .iq_set_valid_i  (iq_set_valid),
    .iq_set_ready_o  (iq_set_ready),
    .prq_set_i       (PRQ_SET_PPR),
    .prq_set_valid_i (1'b0),
    .prq_set_ready_o (),
    .iq_iqh_i        (iq_iqh),
    .iq_iqercd_i     (iq_iqercd),
    .prq_pqt_i       ('0),
    .root_rta_o      (),
    .root_ttm_o      (root_ttm),
    .inv_all_o       (),
    .msg_pending_o   (msg_pending),
    .m_axi_awid      (s_awid[0]),
    .m_axi_awaddr    (s_awaddr[0]),
    .m_axi_awlen     (s_awlen[0]),
    .m_axi_awsize    (s_awsize[0]),
    .m_axi_awburst   (s_awburst[0]),
    .m_axi_awlock    (s_awlock[0]),
    .m_axi_awcache   (s_awcache[0]),
    .m_axi_awprot    (s_awprot[0]),
    .m_axi_awqos     (s_awqos[0]),
    .m_axi_awvalid   (s_awvalid[0]),
    .m_axi_awready   (s_awready[0]),
    .m_axi_wdata     (s_wdata[0]),
    .m_axi_wstrb     (s_wstrb[0]),
    .m_axi_wlast     (s_wlast[0]),
    .m_axi_wvalid    (s_wvalid[0]),
    .m_axi_wready    (s_wready[0]),
    .m_axi_bid       (s_bid[0]),
    .m_axi_bresp     (s_bresp[0]),
    .m_axi_bvalid    (s_bvalid[0]),
    .m_axi_bready    (s_bready[0])
  );
  /* verilator lint_on PINCONNECTEMPTY */

  assign s_arid[0]    = '0;
  assign s_araddr[0]  = '0;
  assign s_arlen[0]   = '0;
  assign s_arsize[0]  = '0;
  assign s_arburst[0] = '0;
  assign s_arlock[0]  = 1'b0;
  assign s_arcache[0] = '0;
  assign s_arprot[0]  = '0;
  assign s_arqos[0]   = '0;
  assign s_arvalid[0] = 1'b0;
  assign s_rready[0]  = 1'b1;

  // -----------------------------------------------------------------------------------------------
  // TLP input: parser, completions to the engine
  // -----------------------------------------------------------------------------------------------
  tlp_hdr_t rx_hdr;
  logic     rx_hdr_valid, rx_hdr_ready, rx_route, cpl_ready;

  /* verilator lint_off PINCONNECTEMPTY */  // messages carry no payload the harness needs
  tlp_rx_parser #(.DATA_W(TLP_W)) u_parser (
    .clk_i, .rst_ni,
    .s_axis_tdata  (s_axis_rx_tdata),
    .s_axis_tkeep  (s_axis_rx_tkeep),
    .s_axis_tvalid (s_axis_rx_tvalid),
    .s_axis_tlast  (s_axis_rx_tlast),
    .s_axis_tready (s_axis_rx_tready),
    .hdr_o         (rx_hdr),
    .hdr_valid_o   (rx_hdr_valid),
    .hdr_ready_i   (rx_hdr_ready),
    .m_axis_tdata  (),
    .m_axis_tkeep  (),
    .m_axis_tvalid (),
    .m_axis_tlast  (),
    .m_axis_tuser  (),
    .m_axis_tready (1'b1),
    .idle_o        ()
  );
  /* verilator lint_on PINCONNECTEMPTY */

  assign rx_route     = rx_hdr.kind == TLP_MSG && rx_hdr.msg_code == MSG_ATS_INV_CPL;
  assign rx_hdr_ready = rx_route ? cpl_ready : 1'b1;
  assign rx_fire_o    = rx_hdr_valid && rx_hdr_ready;

  // -----------------------------------------------------------------------------------------------
  // The engine and its TLP transmitter
  // -----------------------------------------------------------------------------------------------
  tx_hdr_t              tx_hdr;
  logic                 tx_hdr_valid, tx_hdr_ready;
  logic [TLP_W-1:0]     tx_tdata;
  logic [TLP_W/8-1:0]   tx_tkeep;
  logic                 tx_tvalid, tx_tlast, tx_tready;

  inv_queue #(
    .AXI_DATA_W     (AXI_DATA_W),
    .AXI_ID_W       (ID_W),
    .TLP_DATA_W     (TLP_W),
    .HAW            (HAW),
    .IOMMU_RID      (IOMMU_RID),
    .TIMEOUT_CYCLES (TIMEOUT_CYCLES),
    .WAIT_SLOTS     (WAIT_SLOTS)
  ) u_iq (
    .clk_i, .rst_ni,
    .reg2hw_i               (reg2hw),
    .root_ttm_i             (root_ttm),
    .iq_set_o               (iq_set),
    .iq_set_valid_o         (iq_set_valid),
    .iq_set_ready_i         (iq_set_ready),
    .iq_iqh_o               (iq_iqh),
    .iq_iqercd_o            (iq_iqercd),
    .cc_inv_o, .cc_inv_valid_o, .cc_inv_ready_i,
    .pc_inv_o, .pc_inv_valid_o, .pc_inv_ready_i,
    .iotlb_inv_o, .iotlb_inv_valid_o, .iotlb_inv_ready_i,
    .iotlb_inv_done_valid_i, .iotlb_inv_done_ready_o,
    .tx_hdr_o               (tx_hdr),
    .tx_hdr_valid_o         (tx_hdr_valid),
    .tx_hdr_ready_i         (tx_hdr_ready),
    .m_axis_tx_tdata        (tx_tdata),
    .m_axis_tx_tkeep        (tx_tkeep),
    .m_axis_tx_tvalid       (tx_tvalid),
    .m_axis_tx_tlast        (tx_tlast),
    .m_axis_tx_tready       (tx_tready),
    .cpl_i                  (rx_hdr),
    .cpl_valid_i            (rx_hdr_valid && rx_route),
    .cpl_ready_o            (cpl_ready),
    .prq_drained_i,
    .drain_req_o,
    .drain_ack_i,
    .idle_o                 (iq_idle_o),
    .m_axi_awid             (s_awid[1]),
    .m_axi_awaddr           (s_awaddr[1]),
    .m_axi_awlen            (s_awlen[1]),
    .m_axi_awsize           (s_awsize[1]),
    .m_axi_awburst          (s_awburst[1]),
    .m_axi_awlock           (s_awlock[1]),
    .m_axi_awcache          (s_awcache[1]),
    .m_axi_awprot           (s_awprot[1]),
    .m_axi_awqos            (s_awqos[1]),
    .m_axi_awvalid          (s_awvalid[1]),
    .m_axi_awready          (s_awready[1]),
    .m_axi_wdata            (s_wdata[1]),
    .m_axi_wstrb            (s_wstrb[1]),
    .m_axi_wlast            (s_wlast[1]),
    .m_axi_wvalid           (s_wvalid[1]),
    .m_axi_wready           (s_wready[1]),
    .m_axi_bid              (s_bid[1]),
    .m_axi_bresp            (s_bresp[1]),
    .m_axi_bvalid           (s_bvalid[1]),
    .m_axi_bready           (s_bready[1]),
    .m_axi_arid             (s_arid[1]),
    .m_axi_araddr           (s_araddr[1]),
    .m_axi_arlen            (s_arlen[1]),
    .m_axi_arsize           (s_arsize[1]),
    .m_axi_arburst          (s_arburst[1]),
    .m_axi_arlock           (s_arlock[1]),
    .m_axi_arcache          (s_arcache[1]),
    .m_axi_arprot           (s_arprot[1]),
    .m_axi_arqos            (s_arqos[1]),
    .m_axi_arvalid          (s_arvalid[1]),
    .m_axi_arready          (s_arready[1]),
    .m_axi_rid              (s_rid[1]),
    .m_axi_rdata            (s_rdata[1]),
    .m_axi_rresp            (s_rresp[1]),
    .m_axi_rlast            (s_rlast[1]),
    .m_axi_rvalid           (s_rvalid[1]),
    .m_axi_rready           (s_rready[1])
  );

  tlp_tx #(.DATA_W(TLP_W), .NUM_SRC(1)) u_tx (
    .clk_i, .rst_ni,
    .hdr_i         (tx_hdr),
    .hdr_valid_i   (tx_hdr_valid),
    .hdr_ready_o   (tx_hdr_ready),
    .s_axis_tdata  (tx_tdata),
    .s_axis_tkeep  (tx_tkeep),
    .s_axis_tvalid (tx_tvalid),
    .s_axis_tlast  (tx_tlast),
    .s_axis_tready (tx_tready),
    .m_axis_tdata  (m_axis_tx_tdata),
    .m_axis_tkeep  (m_axis_tx_tkeep),
    .m_axis_tvalid (m_axis_tx_tvalid),
    .m_axis_tlast  (m_axis_tx_tlast),
    .m_axis_tready (m_axis_tx_tready)
  );

  axi_mux #(.N(2), .ID_W(ID_W), .DATA_W(AXI_DATA_W)) u_mux (
    .clk_i, .rst_ni,
    .s_axi_awid (s_awid), .s_axi_awaddr (s_awaddr), .s_axi_awlen (s_awlen), .s_axi_awsize (s_awsize),
    .s_axi_awburst (s_awburst), .s_axi_awlock (s_awlock), .s_axi_awcache (s_awcache),
    .s_axi_awprot (s_awprot), .s_axi_awqos (s_awqos), .s_axi_awvalid (s_awvalid),
    .s_axi_awready (s_awready), .s_axi_wdata (s_wdata), .s_axi_wstrb (s_wstrb), .s_axi_wlast (s_wlast),
    .s_axi_wvalid (s_wvalid), .s_axi_wready (s_wready), .s_axi_bid (s_bid), .s_axi_bresp (s_bresp),
    .s_axi_bvalid (s_bvalid), .s_axi_bready (s_bready), .s_axi_arid (s_arid), .s_axi_araddr (s_araddr),
    .s_axi_arlen (s_arlen), .s_axi_arsize (s_arsize), .s_axi_arburst (s_arburst),
    .s_axi_arlock (s_arlock), .s_axi_arcache (s_arcache), .s_axi_arprot (s_arprot),
    .s_axi_arqos (s_arqos), .s_axi_arvalid (s_arvalid), .s_axi_arready (s_arready),
    .s_axi_rid (s_rid), .s_axi_rdata (s_rdata), .s_axi_rresp (s_rresp), .s_axi_rlast (s_rlast),
    .s_axi_rvalid (s_rvalid), .s_axi_rready (s_rready),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock,
    .m_axi_awcache, .m_axi_awprot, .m_axi_awqos, .m_axi_awvalid, .m_axi_awready, .m_axi_wdata,
    .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready, .m_axi_bid, .m_axi_bresp, .m_axi_bvalid,
    .m_axi_bready, .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst,
    .m_axi_arlock, .m_axi_arcache, .m_axi_arprot, .m_axi_arqos, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
  );

  // -----------------------------------------------------------------------------------------------
  // Observation
  // -----------------------------------------------------------------------------------------------
  assign iq_iqh_o       = iq_iqh;
  assign iq_iqercd_o    = iq_iqercd;
  assign iq_set_o       = iq_set;
  assign iq_set_fire_o  = iq_set_valid && iq_set_ready;
  assign tx_hdr_valid_o = tx_hdr_valid;
  assign tx_hdr_ready_o = tx_hdr_ready;
  assign ev_o = iq_iqh.qh_de || iq_set_fire_o || rx_fire_o || (cc_inv_valid_o && cc_inv_ready_i)
             || (pc_inv_valid_o && pc_inv_ready_i) || (iotlb_inv_valid_o && iotlb_inv_ready_i)
             || (iotlb_inv_done_valid_i && iotlb_inv_done_ready_o);

endmodule

`resetall
