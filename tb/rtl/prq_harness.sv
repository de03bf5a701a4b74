`resetall
`timescale 1ns / 1ps
`default_nettype none

// Test harness for tb/cocotb_prq.py: the page request queue writer (rtl/prq.sv) with the blocks it
// talks to, wired as the top will wire them.
// * iommu_regs + iommu_ctrl: software programs PQA/PQH/PRS/PECTL/... over s_axil exactly as a driver
//   does; the queue reads PQH/PQT/PQA/PRS.PRO from reg2hw and writes PQT / sets PPR and PRO / logs
//   faults through iommu_ctrl, which also sends the page request and fault event MSIs.
// * axi_mux (2 rows: 0 = iommu_ctrl's MSIs, 1 = the queue's descriptor writes) onto m_axi, the host
//   memory port (downstream ID = {row, ID}); neither row reads, so the read channels are tied off.
// * tlp_tx with one source (the automatic PRG responses) onto m_axis_tlp.
// * The request input (req_*: the parsed header + the lookup result) and the implicit invalidation
//   port (inv_*) are the testbench's: it computes the lookup from the golden model and answers the
//   invalidations with a checker instead of an IOTLB. outcome_* is the queue's per-request report.
// Not product RTL: it lives under tb/rtl/.
module prq_harness
  import iommu_pkg::*;
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
  import iotlb_pkg::*;
  import dma_pkg::*;
  import prq_pkg::*;
#(
  parameter int unsigned AXI_DATA_W = 256,
  parameter int unsigned AXI_ID_W   = 4,
  parameter int unsigned HAW        = 48,
  localparam int unsigned M_ID_W    = AXI_ID_W + 1
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

  input  tlp_hdr_t                req_hdr_i,
  input  prq_lookup_t             req_lkup_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  output iotlb_inv_t              inv_o,
  output logic                    inv_valid_o,
  input  logic                    inv_ready_i,
  input  logic                    inv_done_valid_i,
  output logic                    inv_done_ready_o,

  output prq_outcome_t            outcome_o,
  output logic                    outcome_valid_o,

  output logic [AXI_DATA_W-1:0]   m_axis_tlp_tdata,
  output logic [AXI_DATA_W/8-1:0] m_axis_tlp_tkeep,
  output logic                    m_axis_tlp_tvalid,
  output logic                    m_axis_tlp_tlast,
  input  logic                    m_axis_tlp_tready,

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

  reg2hw_t     reg2hw;
  hw2reg_t     hw2reg;
  fault_rec_t  fault;
  logic        fault_valid, fault_ready;
  prq_status_e prq_set;
  logic        prq_set_valid, prq_set_ready;
  pqt_hw2reg_t pqt;
  tx_hdr_t     tx_hdr;
  logic        tx_hdr_valid, tx_hdr_ready;

  // the mux rows: [0] iommu_ctrl, [1] prq (write channels only)
  logic [1:0][AXI_ID_W-1:0]     awid;
  logic [1:0][63:0]             awaddr;
  logic [1:0][7:0]              awlen;
  logic [1:0][2:0]              awsize;
  logic [1:0][1:0]              awburst;
  logic [1:0]                   awlock;
  logic [1:0][3:0]              awcache;
  logic [1:0][2:0]              awprot;
  logic [1:0][3:0]              awqos;
  logic [1:0]                   awvalid, awready;
  logic [1:0][AXI_DATA_W-1:0]   wdata;
  logic [1:0][AXI_DATA_W/8-1:0] wstrb;
  logic [1:0]                   wlast, wvalid, wready;
  logic [1:0][AXI_ID_W-1:0]     bid;
  logic [1:0][1:0]              bresp;
  logic [1:0]                   bvalid, bready;

  /* verilator lint_off PINCONNECTEMPTY */  // outputs of the blocks this harness has no user for:
                                           // iq_set_ready_o, root table, inv_all_o, the mux's read
                                           // side, tlp_tx's payload ready
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

  iommu_ctrl #(
    .AXI_DATA_W (AXI_DATA_W),
    .AXI_ID_W   (AXI_ID_W),
    .HAW        (HAW)
  ) u_ctrl (
    .clk_i, .rst_ni,
    .reg2hw_i        (reg2hw),
    .hw2reg_o        (hw2reg),
    .fault_i         (fault),
    .fault_valid_i   (fault_valid),
    .fault_ready_o   (fault_ready),
    .iq_set_i        (IQ_SET_IQE),   // no invalidation queue here
    .iq_set_valid_i  (1'b0),
    .iq_set_ready_o  (),
    .prq_set_i       (prq_set),
    .prq_set_valid_i (prq_set_valid),
    .prq_set_ready_o (prq_set_ready),
    .iq_iqh_i        ('0),
    .iq_iqercd_i     ('0),
    .prq_pqt_i       (pqt),
    .root_rta_o      (),
    .root_ttm_o      (),
    .inv_all_o       (),
    .msg_pending_o   (msg_pending),
    .m_axi_awid    (awid[0]),    .m_axi_awaddr (awaddr[0]),  .m_axi_awlen  (awlen[0]),
    .m_axi_awsize  (awsize[0]),  .m_axi_awburst(awburst[0]), .m_axi_awlock (awlock[0]),
    .m_axi_awcache (awcache[0]), .m_axi_awprot (awprot[0]),  .m_axi_awqos  (awqos[0]),
    .m_axi_awvalid (awvalid[0]), .m_axi_awready(awready[0]),
    .m_axi_wdata   (wdata[0]),   .m_axi_wstrb  (wstrb[0]),   .m_axi_wlast  (wlast[0]),
    .m_axi_wvalid  (wvalid[0]),  .m_axi_wready (wready[0]),
    .m_axi_bid     (bid[0]),     .m_axi_bresp  (bresp[0]),   .m_axi_bvalid (bvalid[0]),
    .m_axi_bready  (bready[0])
  );

  prq #(
    .AXI_DATA_W (AXI_DATA_W),
    .AXI_ID_W   (AXI_ID_W),
    .IOMMU_RID  (IOMMU_CFG_DEFAULT.iommu_rid)
  ) u_prq (
    .clk_i, .rst_ni,
    .req_hdr_i, .req_lkup_i, .req_valid_i, .req_ready_o,
    .pqh_i           (reg2hw.pqh.pqh),
    .pqt_i           (reg2hw.pqt.pqt),
    .pqa_i           (reg2hw.pqa.pqa),
    .pqs_i           (reg2hw.pqa.pqs),
    .pro_i           (reg2hw.prs.pro),
    .pqt_o           (pqt),
    .prq_set_o       (prq_set),
    .prq_set_valid_o (prq_set_valid),
    .prq_set_ready_i (prq_set_ready),
    .fault_o         (fault),
    .fault_valid_o   (fault_valid),
    .fault_ready_i   (fault_ready),
    .inv_o, .inv_valid_o, .inv_ready_i, .inv_done_valid_i, .inv_done_ready_o,
    .tx_hdr_o        (tx_hdr),
    .tx_hdr_valid_o  (tx_hdr_valid),
    .tx_hdr_ready_i  (tx_hdr_ready),
    .outcome_o, .outcome_valid_o,
    .m_axi_awid    (awid[1]),    .m_axi_awaddr (awaddr[1]),  .m_axi_awlen  (awlen[1]),
    .m_axi_awsize  (awsize[1]),  .m_axi_awburst(awburst[1]), .m_axi_awlock (awlock[1]),
    .m_axi_awcache (awcache[1]), .m_axi_awprot (awprot[1]),  .m_axi_awqos  (awqos[1]),
    .m_axi_awvalid (awvalid[1]), .m_axi_awready(awready[1]),
    .m_axi_wdata   (wdata[1]),   .m_axi_wstrb  (wstrb[1]),   .m_axi_wlast  (wlast[1]),
    .m_axi_wvalid  (wvalid[1]),  .m_axi_wready (wready[1]),
    .m_axi_bid     (bid[1]),     .m_axi_bresp  (bresp[1]),   .m_axi_bvalid (bvalid[1]),
    .m_axi_bready  (bready[1])
  );

  axi_mux #(
    .N      (2),
    .ID_W   (AXI_ID_W),
    .DATA_W (AXI_DATA_W)
  ) u_mux (
    .clk_i, .rst_ni,
    .s_axi_awid (awid),  .s_axi_awaddr (awaddr), .s_axi_awlen (awlen), .s_axi_awsize (awsize),
    .s_axi_awburst (awburst), .s_axi_awlock (awlock), .s_axi_awcache (awcache), .s_axi_awprot (awprot),
    .s_axi_awqos (awqos), .s_axi_awvalid (awvalid), .s_axi_awready (awready),
    .s_axi_wdata (wdata), .s_axi_wstrb (wstrb), .s_axi_wlast (wlast), .s_axi_wvalid (wvalid),
    .s_axi_wready (wready),
    .s_axi_bid (bid), .s_axi_bresp (bresp), .s_axi_bvalid (bvalid), .s_axi_bready (bready),
    .s_axi_arid ('0), .s_axi_araddr ('0), .s_axi_arlen ('0), .s_axi_arsize ('0), .s_axi_arburst ('0),
    .s_axi_arlock ('0), .s_axi_arcache ('0), .s_axi_arprot ('0), .s_axi_arqos ('0),
    .s_axi_arvalid ('0), .s_axi_arready (),
    .s_axi_rid (), .s_axi_rdata (), .s_axi_rresp (), .s_axi_rlast (), .s_axi_rvalid (),
    .s_axi_rready ('1),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock,
    .m_axi_awcache, .m_axi_awprot, .m_axi_awqos, .m_axi_awvalid, .m_axi_awready,
    .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
    .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready,
    .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock,
    .m_axi_arcache, .m_axi_arprot, .m_axi_arqos, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
  );

  tlp_tx #(
    .DATA_W  (AXI_DATA_W),
    .NUM_SRC (1)
  ) u_tx (
    .clk_i, .rst_ni,
    .hdr_i         (tx_hdr),
    .hdr_valid_i   (tx_hdr_valid),
    .hdr_ready_o   (tx_hdr_ready),
    .s_axis_tdata  ('0),
    .s_axis_tkeep  ('0),
    .s_axis_tvalid (1'b0),
    .s_axis_tlast  (1'b0),
    .s_axis_tready (),
    .m_axis_tdata  (m_axis_tlp_tdata),
    .m_axis_tkeep  (m_axis_tlp_tkeep),
    .m_axis_tvalid (m_axis_tlp_tvalid),
    .m_axis_tlast  (m_axis_tlp_tlast),
    .m_axis_tready (m_axis_tlp_tready)
  );
  /* verilator lint_on PINCONNECTEMPTY */

endmodule

`resetall
