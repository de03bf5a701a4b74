`resetall
`timescale 1ns / 1ps
`default_nettype none

// Test-only harness for tb/axi_mem.py: an AXI4 master port (s_axi_*, driven by the testbench's master)
// wired straight through to an AXI4 slave port (m_axi_*, answered by the AxiMemory agent), so a
// cocotbext-axi master can exercise the slave agent through a real Verilator model. Every AXI4
// signal the agent uses is present, including AxLOCK (exclusive accesses) and xRESP (EXOKAY, errors).
// Not product RTL: it lives under tb/rtl/.
module axi_loop #(
  parameter int unsigned DATA_W = 64,
  parameter int unsigned ADDR_W = 64,
  parameter int unsigned ID_W   = 4
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,

  // from the testbench master
  input  wire logic [ID_W-1:0]     s_axi_awid,
  input  wire logic [ADDR_W-1:0]   s_axi_awaddr,
  input  wire logic [7:0]          s_axi_awlen,
  input  wire logic [2:0]          s_axi_awsize,
  input  wire logic [1:0]          s_axi_awburst,
  input  wire logic                s_axi_awlock,
  input  wire logic [3:0]          s_axi_awcache,
  input  wire logic [2:0]          s_axi_awprot,
  input  wire logic                s_axi_awvalid,
  output      logic                s_axi_awready,
  input  wire logic [DATA_W-1:0]   s_axi_wdata,
  input  wire logic [DATA_W/8-1:0] s_axi_wstrb,
  input  wire logic                s_axi_wlast,
  input  wire logic                s_axi_wvalid,
  output      logic                s_axi_wready,
  output      logic [ID_W-1:0]     s_axi_bid,
  output      logic [1:0]          s_axi_bresp,
  output      logic                s_axi_bvalid,
  input  wire logic                s_axi_bready,
  input  wire logic [ID_W-1:0]     s_axi_arid,
  input  wire logic [ADDR_W-1:0]   s_axi_araddr,
  input  wire logic [7:0]          s_axi_arlen,
  input  wire logic [2:0]          s_axi_arsize,
  input  wire logic [1:0]          s_axi_arburst,
  input  wire logic                s_axi_arlock,
  input  wire logic [3:0]          s_axi_arcache,
  input  wire logic [2:0]          s_axi_arprot,
  input  wire logic                s_axi_arvalid,
  output      logic                s_axi_arready,
  output      logic [ID_W-1:0]     s_axi_rid,
  output      logic [DATA_W-1:0]   s_axi_rdata,
  output      logic [1:0]          s_axi_rresp,
  output      logic                s_axi_rlast,
  output      logic                s_axi_rvalid,
  input  wire logic                s_axi_rready,

  // to the AxiMemory agent
  output      logic [ID_W-1:0]     m_axi_awid,
  output      logic [ADDR_W-1:0]   m_axi_awaddr,
  output      logic [7:0]          m_axi_awlen,
  output      logic [2:0]          m_axi_awsize,
  output      logic [1:0]          m_axi_awburst,
  output      logic                m_axi_awlock,
  output      logic [3:0]          m_axi_awcache,
  output      logic [2:0]          m_axi_awprot,
  output      logic                m_axi_awvalid,
  input  wire logic                m_axi_awready,
  output      logic [DATA_W-1:0]   m_axi_wdata,
  output      logic [DATA_W/8-1:0] m_axi_wstrb,
  output      logic                m_axi_wlast,
  output      logic                m_axi_wvalid,
  input  wire logic                m_axi_wready,
  input  wire logic [ID_W-1:0]     m_axi_bid,
  input  wire logic [1:0]          m_axi_bresp,
  input  wire logic                m_axi_bvalid,
  output      logic                m_axi_bready,
  output      logic [ID_W-1:0]     m_axi_arid,
  output      logic [ADDR_W-1:0]   m_axi_araddr,
  output      logic [7:0]          m_axi_arlen,
  output      logic [2:0]          m_axi_arsize,
  output      logic [1:0]          m_axi_arburst,
  output      logic                m_axi_arlock,
  output      logic [3:0]          m_axi_arcache,
  output      logic [2:0]          m_axi_arprot,
  output      logic                m_axi_arvalid,
  input  wire logic                m_axi_arready,
  input  wire logic [ID_W-1:0]     m_axi_rid,
  input  wire logic [DATA_W-1:0]   m_axi_rdata,
  input  wire logic [1:0]          m_axi_rresp,
  input  wire logic                m_axi_rlast,
  input  wire logic                m_axi_rvalid,
  output      logic                m_axi_rready
);

  // write address
  assign m_axi_awid    = s_axi_awid;
  assign m_axi_awaddr  = s_axi_awaddr;
  assign m_axi_awlen   = s_axi_awlen;
  assign m_axi_awsize  = s_axi_awsize;
  assign m_axi_awburst = s_axi_awburst;
  assign m_axi_awlock  = s_axi_awlock;
  assign m_axi_awcache = s_axi_awcache;
  assign m_axi_awprot  = s_axi_awprot;
  assign m_axi_awvalid = s_axi_awvalid;
  assign s_axi_awready = m_axi_awready;
  // write data
  assign m_axi_wdata   = s_axi_wdata;
  assign m_axi_wstrb   = s_axi_wstrb;
  assign m_axi_wlast   = s_axi_wlast;
  assign m_axi_wvalid  = s_axi_wvalid;
  assign s_axi_wready  = m_axi_wready;
  // write response
  assign s_axi_bid     = m_axi_bid;
  assign s_axi_bresp   = m_axi_bresp;
  assign s_axi_bvalid  = m_axi_bvalid;
  assign m_axi_bready  = s_axi_bready;
  // read address
  assign m_axi_arid    = s_axi_arid;
  assign m_axi_araddr  = s_axi_araddr;
  assign m_axi_arlen   = s_axi_arlen;
  assign m_axi_arsize  = s_axi_arsize;
  assign m_axi_arburst = s_axi_arburst;
  assign m_axi_arlock  = s_axi_arlock;
  assign m_axi_arcache = s_axi_arcache;
  assign m_axi_arprot  = s_axi_arprot;
  assign m_axi_arvalid = s_axi_arvalid;
  assign s_axi_arready = m_axi_arready;
  // read data
  assign s_axi_rid     = m_axi_rid;
  assign s_axi_rdata   = m_axi_rdata;
  assign s_axi_rresp   = m_axi_rresp;
  assign s_axi_rlast   = m_axi_rlast;
  assign s_axi_rvalid  = m_axi_rvalid;
  assign m_axi_rready  = s_axi_rready;

endmodule

`resetall
