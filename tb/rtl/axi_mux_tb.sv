`resetall
`timescale 1ns / 1ps
`default_nettype none

// Test-only harness for rtl/axi_mux.sv: the mux's upstream rows are packed arrays, but cocotbext-axi's
// AxiBus.from_prefix needs one signal per AXI4 signal, so every row gets its own ports s0_axi_*,
// s1_axi_*, s2_axi_* (up to N = 3); the downstream port m_axi_* is the mux's own. With N = 2 the s2
// outputs are tied to 0 and its inputs are unused. Not product RTL: it lives under tb/rtl/.

// one upstream row's ports, prefix p (p_axi_*), as cocotbext-axi's AxiBus.from_prefix finds them
`define AXI_MUX_TB_PORTS(p) \
  input  wire logic [ID_W-1:0]       p``_axi_awid, \
  input  wire logic [63:0]           p``_axi_awaddr, \
  input  wire logic [7:0]            p``_axi_awlen, \
  input  wire logic [2:0]            p``_axi_awsize, \
  input  wire logic [1:0]            p``_axi_awburst, \
  input  wire logic                  p``_axi_awlock, \
  input  wire logic [3:0]            p``_axi_awcache, \
  input  wire logic [2:0]            p``_axi_awprot, \
  input  wire logic [3:0]            p``_axi_awqos, \
  input  wire logic                  p``_axi_awvalid, \
  output      logic                  p``_axi_awready, \
  input  wire logic [DATA_W-1:0]     p``_axi_wdata, \
  input  wire logic [DATA_W/8-1:0]   p``_axi_wstrb, \
  input  wire logic                  p``_axi_wlast, \
  input  wire logic                  p``_axi_wvalid, \
  output      logic                  p``_axi_wready, \
  output      logic [ID_W-1:0]       p``_axi_bid, \
  output      logic [1:0]            p``_axi_bresp, \
  output      logic                  p``_axi_bvalid, \
  input  wire logic                  p``_axi_bready, \
  input  wire logic [ID_W-1:0]       p``_axi_arid, \
  input  wire logic [63:0]           p``_axi_araddr, \
  input  wire logic [7:0]            p``_axi_arlen, \
  input  wire logic [2:0]            p``_axi_arsize, \
  input  wire logic [1:0]            p``_axi_arburst, \
  input  wire logic                  p``_axi_arlock, \
  input  wire logic [3:0]            p``_axi_arcache, \
  input  wire logic [2:0]            p``_axi_arprot, \
  input  wire logic [3:0]            p``_axi_arqos, \
  input  wire logic                  p``_axi_arvalid, \
  output      logic                  p``_axi_arready, \
  output      logic [ID_W-1:0]       p``_axi_rid, \
  output      logic [DATA_W-1:0]     p``_axi_rdata, \
  output      logic [1:0]            p``_axi_rresp, \
  output      logic                  p``_axi_rlast, \
  output      logic                  p``_axi_rvalid, \
  input  wire logic                  p``_axi_rready

// row k of the mux's packed arrays <-> the ports with prefix p
`define AXI_MUX_TB_ROW(p, k) \
  assign s_axi_awid[k] = p``_axi_awid; \
  assign s_axi_awaddr[k] = p``_axi_awaddr; \
  assign s_axi_awlen[k] = p``_axi_awlen; \
  assign s_axi_awsize[k] = p``_axi_awsize; \
  assign s_axi_awburst[k] = p``_axi_awburst; \
  assign s_axi_awlock[k] = p``_axi_awlock; \
  assign s_axi_awcache[k] = p``_axi_awcache; \
  assign s_axi_awprot[k] = p``_axi_awprot; \
  assign s_axi_awqos[k] = p``_axi_awqos; \
  assign s_axi_awvalid[k] = p``_axi_awvalid; \
  assign p``_axi_awready = s_axi_awready[k]; \
  assign s_axi_wdata[k] = p``_axi_wdata; \
  assign s_axi_wstrb[k] = p``_axi_wstrb; \
  assign s_axi_wlast[k] = p``_axi_wlast; \
  assign s_axi_wvalid[k] = p``_axi_wvalid; \
  assign p``_axi_wready = s_axi_wready[k]; \
  assign p``_axi_bid = s_axi_bid[k]; \
  assign p``_axi_bresp = s_axi_bresp[k]; \
  assign p``_axi_bvalid = s_axi_bvalid[k]; \
  assign s_axi_bready[k] = p``_axi_bready; \
  assign s_axi_arid[k] = p``_axi_arid; \
  assign s_axi_araddr[k] = p``_axi_araddr; \
  assign s_axi_arlen[k] = p``_axi_arlen; \
  assign s_axi_arsize[k] = p``_axi_arsize; \
  assign s_axi_arburst[k] = p``_axi_arburst; \
  assign s_axi_arlock[k] = p``_axi_arlock; \
  assign s_axi_arcache[k] = p``_axi_arcache; \
  assign s_axi_arprot[k] = p``_axi_arprot; \
  assign s_axi_arqos[k] = p``_axi_arqos; \
  assign s_axi_arvalid[k] = p``_axi_arvalid; \
  assign p``_axi_arready = s_axi_arready[k]; \
  assign p``_axi_rid = s_axi_rid[k]; \
  assign p``_axi_rdata = s_axi_rdata[k]; \
  assign p``_axi_rresp = s_axi_rresp[k]; \
  assign p``_axi_rlast = s_axi_rlast[k]; \
  assign p``_axi_rvalid = s_axi_rvalid[k]; \
  assign s_axi_rready[k] = p``_axi_rready;

// the outputs of a row the mux does not have
`define AXI_MUX_TB_TIE(p) \
  assign p``_axi_awready = '0; \
  assign p``_axi_wready = '0; \
  assign p``_axi_bid = '0; \
  assign p``_axi_bresp = '0; \
  assign p``_axi_bvalid = '0; \
  assign p``_axi_arready = '0; \
  assign p``_axi_rid = '0; \
  assign p``_axi_rdata = '0; \
  assign p``_axi_rresp = '0; \
  assign p``_axi_rlast = '0; \
  assign p``_axi_rvalid = '0;

module axi_mux_tb #(
  parameter  int unsigned N      = 2,    // 2 or 3
  parameter  int unsigned ID_W   = 4,
  parameter  int unsigned DATA_W = 256,
  parameter  int unsigned W_FIFO = 4,
  localparam int unsigned M_ID_W = ID_W + $clog2(N)
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  `AXI_MUX_TB_PORTS(s0),
  `AXI_MUX_TB_PORTS(s1),
  `AXI_MUX_TB_PORTS(s2),
  output      logic [M_ID_W-1:0]     m_axi_awid,
  output      logic [63:0]           m_axi_awaddr,
  output      logic [7:0]            m_axi_awlen,
  output      logic [2:0]            m_axi_awsize,
  output      logic [1:0]            m_axi_awburst,
  output      logic                  m_axi_awlock,
  output      logic [3:0]            m_axi_awcache,
  output      logic [2:0]            m_axi_awprot,
  output      logic [3:0]            m_axi_awqos,
  output      logic                  m_axi_awvalid,
  input  wire logic                  m_axi_awready,
  output      logic [DATA_W-1:0]     m_axi_wdata,
  output      logic [DATA_W/8-1:0]   m_axi_wstrb,
  output      logic                  m_axi_wlast,
  output      logic                  m_axi_wvalid,
  input  wire logic                  m_axi_wready,
  input  wire logic [M_ID_W-1:0]     m_axi_bid,
  input  wire logic [1:0]            m_axi_bresp,
  input  wire logic                  m_axi_bvalid,
  output      logic                  m_axi_bready,
  output      logic [M_ID_W-1:0]     m_axi_arid,
  output      logic [63:0]           m_axi_araddr,
  output      logic [7:0]            m_axi_arlen,
  output      logic [2:0]            m_axi_arsize,
  output      logic [1:0]            m_axi_arburst,
  output      logic                  m_axi_arlock,
  output      logic [3:0]            m_axi_arcache,
  output      logic [2:0]            m_axi_arprot,
  output      logic [3:0]            m_axi_arqos,
  output      logic                  m_axi_arvalid,
  input  wire logic                  m_axi_arready,
  input  wire logic [M_ID_W-1:0]     m_axi_rid,
  input  wire logic [DATA_W-1:0]     m_axi_rdata,
  input  wire logic [1:0]            m_axi_rresp,
  input  wire logic                  m_axi_rlast,
  input  wire logic                  m_axi_rvalid,
  output      logic                  m_axi_rready
);

  // the mux's packed arrays, named as its ports (connected by .*)
  logic [N-1:0][ID_W-1:0]       s_axi_awid;
  logic [N-1:0][63:0]           s_axi_awaddr;
  logic [N-1:0][7:0]            s_axi_awlen;
  logic [N-1:0][2:0]            s_axi_awsize;
  logic [N-1:0][1:0]            s_axi_awburst;
  logic [N-1:0]                 s_axi_awlock;
  logic [N-1:0][3:0]            s_axi_awcache;
  logic [N-1:0][2:0]            s_axi_awprot;
  logic [N-1:0][3:0]            s_axi_awqos;
  logic [N-1:0]                 s_axi_awvalid;
  logic [N-1:0]                 s_axi_awready;
  logic [N-1:0][DATA_W-1:0]     s_axi_wdata;
  logic [N-1:0][DATA_W/8-1:0]   s_axi_wstrb;
  logic [N-1:0]                 s_axi_wlast;
  logic [N-1:0]                 s_axi_wvalid;
  logic [N-1:0]                 s_axi_wready;
  logic [N-1:0][ID_W-1:0]       s_axi_bid;
  logic [N-1:0][1:0]            s_axi_bresp;
  logic [N-1:0]                 s_axi_bvalid;
  logic [N-1:0]                 s_axi_bready;
  logic [N-1:0][ID_W-1:0]       s_axi_arid;
  logic [N-1:0][63:0]           s_axi_araddr;
  logic [N-1:0][7:0]            s_axi_arlen;
  logic [N-1:0][2:0]            s_axi_arsize;
  logic [N-1:0][1:0]            s_axi_arburst;
  logic [N-1:0]                 s_axi_arlock;
  logic [N-1:0][3:0]            s_axi_arcache;
  logic [N-1:0][2:0]            s_axi_arprot;
  logic [N-1:0][3:0]            s_axi_arqos;
  logic [N-1:0]                 s_axi_arvalid;
  logic [N-1:0]                 s_axi_arready;
  logic [N-1:0][ID_W-1:0]       s_axi_rid;
  logic [N-1:0][DATA_W-1:0]     s_axi_rdata;
  logic [N-1:0][1:0]            s_axi_rresp;
  logic [N-1:0]                 s_axi_rlast;
  logic [N-1:0]                 s_axi_rvalid;
  logic [N-1:0]                 s_axi_rready;

  `AXI_MUX_TB_ROW(s0, 0)
  `AXI_MUX_TB_ROW(s1, 1)
  if (N > 2) begin : g_row2
    `AXI_MUX_TB_ROW(s2, 2)
  end else begin : g_tie2
    `AXI_MUX_TB_TIE(s2)
  end

  axi_mux #(.N(N), .ID_W(ID_W), .DATA_W(DATA_W), .W_FIFO(W_FIFO)) u_mux (.*);

endmodule

`undef AXI_MUX_TB_PORTS
`undef AXI_MUX_TB_ROW
`undef AXI_MUX_TB_TIE

`resetall
