`resetall
`timescale 1ns / 1ps
`default_nettype none

// The register page (iommu_regs, generated) with the control block (iommu_ctrl) behind it: what the
// top will instantiate, wrapped on its own for testing (tb/cocotb_ctrl.py). reg2hw / hw2reg stay
// inside. The control block's AXI4 master has write channels only; this wrapper gives it idle read
// channels (ARVALID = 0, RREADY = 1) so that the port is a complete AXI4 master for the testbench's
// memory agent.
module iommu_regs_ctrl
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
#(
  parameter int unsigned AXI_DATA_W = 256,
  parameter int unsigned AXI_ID_W   = 4,
  parameter int unsigned HAW        = 48
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

  input  fault_rec_t              fault_i,
  input  logic                    fault_valid_i,
  output logic                    fault_ready_o,
  input  iq_status_e              iq_set_i,
  input  logic                    iq_set_valid_i,
  output logic                    iq_set_ready_o,
  input  prq_status_e             prq_set_i,
  input  logic                    prq_set_valid_i,
  output logic                    prq_set_ready_o,
  input  iqh_hw2reg_t             iq_iqh_i,
  input  iqercd_hw2reg_t          iq_iqercd_i,
  input  pqt_hw2reg_t             prq_pqt_i,

  output logic [51:0]             root_rta_o,
  output logic [1:0]              root_ttm_o,
  output logic                    inv_all_o,

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
  output logic [3:0]              m_axi_arqos,
  output logic                    m_axi_arvalid,
  input  logic                    m_axi_arready,
  input  logic [AXI_ID_W-1:0]     m_axi_rid,
  input  logic [AXI_DATA_W-1:0]   m_axi_rdata,
  input  logic [1:0]              m_axi_rresp,
  input  logic                    m_axi_rlast,
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready
);

  reg2hw_t reg2hw;
  hw2reg_t hw2reg;

  logic msg_pending;   // iommu_ctrl has an interrupt message out: reads wait (vtd §1.12 step 6)

  iommu_regs u_regs (
    .clk_i,
    .rst_ni,
    .s_axil_awaddr,
    .s_axil_awvalid,
    .s_axil_awready,
    .s_axil_wdata,
    .s_axil_wstrb,
    .s_axil_wvalid,
    .s_axil_wready,
    .s_axil_bresp,
    .s_axil_bvalid,
    .s_axil_bready,
    .s_axil_araddr,
    .s_axil_arvalid,
    .s_axil_arready,
    .s_axil_rdata,
    .s_axil_rresp,
    .s_axil_rvalid,
    .s_axil_rready,
    .rd_hold_i (msg_pending),
    .reg2hw_o (reg2hw),
    .hw2reg_i (hw2reg)
  );

  iommu_ctrl #(
    .AXI_DATA_W (AXI_DATA_W),
    .AXI_ID_W   (AXI_ID_W),
    .HAW        (HAW)
  ) u_ctrl (
    .clk_i,
    .rst_ni,
    .reg2hw_i (reg2hw),
    .hw2reg_o (hw2reg),
    .fault_i,
    .fault_valid_i,
    .fault_ready_o,
    .iq_set_i,
    .iq_set_valid_i,
    .iq_set_ready_o,
    .prq_set_i,
    .prq_set_valid_i,
    .prq_set_ready_o,
    .iq_iqh_i,
    .iq_iqercd_i,
    .prq_pqt_i,
    .root_rta_o,
    .root_ttm_o,
    .inv_all_o,
    .msg_pending_o   (msg_pending),
    .m_axi_awid,
    .m_axi_awaddr,
    .m_axi_awlen,
    .m_axi_awsize,
    .m_axi_awburst,
    .m_axi_awlock,
    .m_axi_awcache,
    .m_axi_awprot,
    .m_axi_awqos,
    .m_axi_awvalid,
    .m_axi_awready,
    .m_axi_wdata,
    .m_axi_wstrb,
    .m_axi_wlast,
    .m_axi_wvalid,
    .m_axi_wready,
    .m_axi_bid,
    .m_axi_bresp,
    .m_axi_bvalid,
    .m_axi_bready
  );

  assign m_axi_arid    = '0;
  assign m_axi_araddr  = '0;
  assign m_axi_arlen   = '0;
  assign m_axi_arsize  = '0;
  assign m_axi_arburst = '0;
  assign m_axi_arlock  = 1'b0;
  assign m_axi_arcache = '0;
  assign m_axi_arprot  = '0;
  assign m_axi_arqos   = '0;
  assign m_axi_arvalid = 1'b0;
  assign m_axi_rready  = 1'b1;

endmodule

`resetall
