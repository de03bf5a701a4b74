`resetall
`timescale 1ns / 1ps
`default_nettype none

// The IOMMU: PCIe TLPs from devices in, translated DMA to host memory, completions back to the devices,
// the VT-d register page, fault recording and the fault-event MSI (outside contract:
// ../../shared/docs/architecture.md; the blocks and the rules kept here: docs/rtl-architecture.md).
//
//   s_axis_rx ─► tlp_rx_parser ─hdr─► dispatch ─┬► pasid_lookup ─┬► resolve ─hit──────────► execute
//                      │ payload (in TLP order)  └► iotlb ───────┘  (join) │miss              │ ▲
//                      │                                                              ▼             │ │
//                      │                                                          fs_walker ────────┘ │ (any order)
//                      ▼                                                                              │
//                    dma_wr ◄── write requests, in TLP order ─────────────────────────────── execute ─┘
//                    dma_rd ◄── read requests (UR/CA too), each after every earlier write ─┘ │ │
//                    ATS translation completions ◄────────────────────────────────────────────┘ │
//                    iommu_ctrl fault records ◄─────────────────────────────────────────────────┘
//
// * dispatch: one TLP header per cycle. Decides what the golden model's receive_tlp decides before
//   translating (malformed -> drop; completion -> drop; page request -> PRQ after the lookup; ATS
//   Invalidate Completion -> the invalidation queue; other messages, and known ones with the wrong
//   routing, -> drop; unsupported type -> UR when non-posted; other prefixes -> UR / drop; MRdLk -> UR CplLk; translation
//   request of a bad length -> UR; AT=01 or poisoned write -> drop). Everything else is looked up.
// * pasid_lookup and the IOTLB are looked up in the same cycle: the IOTLB matches the request's source
//   tag {RID, PV, PASID}, known before the PASID entry gives the DID. Every TLP passes the IOTLB (its
//   record rides in the user field; those that need no first-stage translation ignore the answer), so
//   the front end is one ordered pipe; resolve joins the IOTLB answer with the lookup answer. resolve
//   decides: translation disabled (identity / unsupported), interrupt window, lookup fault, translated
//   request (output checks), IOTLB hit (output and access checks, fs_walker_pkg::fs_access, the walker's
//   own function), or a walk (miss, or a non-canonical address, which the walker faults).
// * Walks run N_WALKS at a time and answer in any order: hits and later misses go on while a walk is
//   out (hit-under-miss). A write (any TLP with a payload) that needs a walk stops resolve until its
//   walk has answered, so payloads reach dma_wr in TLP order without a reorder buffer (reads could not
//   pass that write at the memory anyway).
// * Ordering (PCIe): posted writes in order (one AXI ID in dma_wr); a read's AR waits until every write
//   that came before it is complete (dma_wr done_o count vs the count taken at dispatch); reads may pass
//   reads, completions of different requests may interleave.
// * Faults are recorded (iommu_ctrl) in the order execute handles them: a hit that overtakes a miss is
//   recorded first.
// * Invalidation: global (iommu_ctrl inv_all_o: TE 1->0, SRTP with ESRTPS), the PRQ's implicit ones
//   (vtd §4.7) and the invalidation queue's commands (rtl/inv_queue.sv, vtd §4). A generation count
//   taken at dispatch drops the IOTLB fill of any request dispatched before an invalidation. A wait
//   descriptor completes only after the drain: new TLPs are held at s_axis_rx (between TLPs) until
//   everything received before has finished with memory (and page requests are in the PRQ).
// * TES / root table address / TTM reach pasid_lookup only when the front end is empty (drain).
module iommu_top
  import iommu_pkg::*;
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
  import pasid_lookup_pkg::*;
  import iotlb_pkg::*;
  import fs_walker_pkg::*;
  import dma_pkg::*;
  import fault_info_pkg::*;
  import prq_pkg::*;
  import inv_queue_pkg::*;
#(
  parameter iommu_cfg_t CFG = IOMMU_CFG_DEFAULT,
  localparam int unsigned DW      = CFG.data_w,
  localparam int unsigned DMA_ID_W = 4,
  localparam int unsigned TBL_ID_W = 7     // 4 bits per block + 3 bits of the block's index (axi_mux)
) (
  input  logic                  clk_i,
  input  logic                  rst_ni,

  // TLPs from devices
  input  logic [DW-1:0]         s_axis_rx_tdata,
  input  logic [DW/8-1:0]       s_axis_rx_tkeep,
  input  logic                  s_axis_rx_tvalid,
  input  logic                  s_axis_rx_tlast,
  output logic                  s_axis_rx_tready,

  // TLPs to devices
  output logic [DW-1:0]         m_axis_tx_tdata,
  output logic [DW/8-1:0]       m_axis_tx_tkeep,
  output logic                  m_axis_tx_tvalid,
  output logic                  m_axis_tx_tlast,
  input  logic                  m_axis_tx_tready,

  // register page
  input  logic [REG_ADDR_W-1:0] s_axil_awaddr,
  input  logic                  s_axil_awvalid,
  output logic                  s_axil_awready,
  input  logic [31:0]           s_axil_wdata,
  input  logic [3:0]            s_axil_wstrb,
  input  logic                  s_axil_wvalid,
  output logic                  s_axil_wready,
  output logic [1:0]            s_axil_bresp,
  output logic                  s_axil_bvalid,
  input  logic                  s_axil_bready,
  input  logic [REG_ADDR_W-1:0] s_axil_araddr,
  input  logic                  s_axil_arvalid,
  output logic                  s_axil_arready,
  output logic [31:0]           s_axil_rdata,
  output logic [1:0]            s_axil_rresp,
  output logic                  s_axil_rvalid,
  input  logic                  s_axil_rready,

  // host memory: translated DMA
  output logic [DMA_ID_W-1:0]   m_axi_dma_awid,
  output logic [63:0]           m_axi_dma_awaddr,
  output logic [7:0]            m_axi_dma_awlen,
  output logic [2:0]            m_axi_dma_awsize,
  output logic [1:0]            m_axi_dma_awburst,
  output logic                  m_axi_dma_awlock,
  output logic [3:0]            m_axi_dma_awcache,
  output logic [2:0]            m_axi_dma_awprot,
  output logic                  m_axi_dma_awvalid,
  input  logic                  m_axi_dma_awready,
  output logic [DW-1:0]         m_axi_dma_wdata,
  output logic [DW/8-1:0]       m_axi_dma_wstrb,
  output logic                  m_axi_dma_wlast,
  output logic                  m_axi_dma_wvalid,
  input  logic                  m_axi_dma_wready,
  input  logic [DMA_ID_W-1:0]   m_axi_dma_bid,
  input  logic [1:0]            m_axi_dma_bresp,
  input  logic                  m_axi_dma_bvalid,
  output logic                  m_axi_dma_bready,
  output logic [DMA_ID_W-1:0]   m_axi_dma_arid,
  output logic [63:0]           m_axi_dma_araddr,
  output logic [7:0]            m_axi_dma_arlen,
  output logic [2:0]            m_axi_dma_arsize,
  output logic [1:0]            m_axi_dma_arburst,
  output logic                  m_axi_dma_arlock,
  output logic [3:0]            m_axi_dma_arcache,
  output logic [2:0]            m_axi_dma_arprot,
  output logic                  m_axi_dma_arvalid,
  input  logic                  m_axi_dma_arready,
  input  logic [DMA_ID_W-1:0]   m_axi_dma_rid,
  input  logic [DW-1:0]         m_axi_dma_rdata,
  input  logic [1:0]            m_axi_dma_rresp,
  input  logic                  m_axi_dma_rlast,
  input  logic                  m_axi_dma_rvalid,
  output logic                  m_axi_dma_rready,

  // host memory: the IOMMU's own accesses (tables, A/D updates, interrupt messages)
  output logic [TBL_ID_W-1:0]   m_axi_tbl_awid,
  output logic [63:0]           m_axi_tbl_awaddr,
  output logic [7:0]            m_axi_tbl_awlen,
  output logic [2:0]            m_axi_tbl_awsize,
  output logic [1:0]            m_axi_tbl_awburst,
  output logic                  m_axi_tbl_awlock,
  output logic [3:0]            m_axi_tbl_awcache,
  output logic [2:0]            m_axi_tbl_awprot,
  output logic [3:0]            m_axi_tbl_awqos,
  output logic                  m_axi_tbl_awvalid,
  input  logic                  m_axi_tbl_awready,
  output logic [DW-1:0]         m_axi_tbl_wdata,
  output logic [DW/8-1:0]       m_axi_tbl_wstrb,
  output logic                  m_axi_tbl_wlast,
  output logic                  m_axi_tbl_wvalid,
  input  logic                  m_axi_tbl_wready,
  input  logic [TBL_ID_W-1:0]   m_axi_tbl_bid,
  input  logic [1:0]            m_axi_tbl_bresp,
  input  logic                  m_axi_tbl_bvalid,
  output logic                  m_axi_tbl_bready,
  output logic [TBL_ID_W-1:0]   m_axi_tbl_arid,
  output logic [63:0]           m_axi_tbl_araddr,
  output logic [7:0]            m_axi_tbl_arlen,
  output logic [2:0]            m_axi_tbl_arsize,
  output logic [1:0]            m_axi_tbl_arburst,
  output logic                  m_axi_tbl_arlock,
  output logic [3:0]            m_axi_tbl_arcache,
  output logic [2:0]            m_axi_tbl_arprot,
  output logic [3:0]            m_axi_tbl_arqos,
  output logic                  m_axi_tbl_arvalid,
  input  logic                  m_axi_tbl_arready,
  input  logic [TBL_ID_W-1:0]   m_axi_tbl_rid,
  input  logic [DW-1:0]         m_axi_tbl_rdata,
  input  logic [1:0]            m_axi_tbl_rresp,
  input  logic                  m_axi_tbl_rlast,
  input  logic                  m_axi_tbl_rvalid,
  output logic                  m_axi_tbl_rready
);

  // capability profile (models.vtd.PROFILE; the blocks' defaults are that profile)
  localparam int unsigned HAW  = 48;
  localparam bit          NWFS = 1'b1;
  localparam bit          SMPWCS = 1'b1;

  localparam int unsigned N_WALKS = CFG.n_walks;
  localparam int unsigned WT_W    = N_WALKS > 1 ? $clog2(N_WALKS) : 1;
  localparam int unsigned BLK_ID_W = 4;

  // ---------------------------------------------------------------------------------------------
  // Per-request record, from dispatch to execute
  // ---------------------------------------------------------------------------------------------
  typedef enum logic [1:0] {
    ACT_XLATE = 2'd0,  // look it up and translate
    ACT_UR    = 2'd1,  // answer one Cpl (CplLk) with status UR, nothing else
    ACT_DROP  = 2'd2,  // nothing to answer (its payload, if any, is consumed)
    ACT_PRQ   = 2'd3   // a page request: looked up, then handed to the page request queue
  } act_e;

  typedef struct packed {
    act_e        act;
    logic        is_wr;         // MWr: the payload is the data to write
    logic        has_payload;   // the parser streams a payload for this TLP (dma_wr takes one request per payload)
    logic [1:0]  at;
    logic        locked;        // MRdLk: completions are CplLk
    logic        nw;            // No-Write of a translation request
    logic        pasid_valid;
    logic [19:0] pasid;
    logic        pmr;
    logic        er;
    logic [15:0] rid;
    logic [9:0]  tag;
    logic [2:0]  tc;
    logic [2:0]  attr;
    logic [9:0]  length;
    logic [3:0]  first_be;
    logic [3:0]  last_be;
    logic [63:0] addr;
    logic [15:0] wr_before;     // payload TLPs dispatched before this one
    logic [7:0]  gen;           // invalidation generation at dispatch
  } xreq_t;

  // What the context/PASID lookup found that the later stages need.
  typedef struct packed {
    logic        disabled;      // GSTS.TES = 0
    logic [7:0]  reason;        // 0: no fault
    logic        fpd;
    logic [19:0] pasid;         // the PASID processed with (own or RID_PASID)
    logic        priv;          // supervisor request (PMR, or RID_PRIV)
    logic [15:0] did;
    logic [2:0]  pgtt;
    logic        level5;        // FSPM = 01
    logic [51:0] fsptptr;
    logic        wpe;
    logic        eafe;
    logic        pwsnp;
  } lk_t;

  typedef enum logic [2:0] {
    OC_DMA  = 3'd0,   // read / write host memory at pa
    OC_UR   = 3'd1,   // Cpl UR (reads, translation requests; writes are dropped)
    OC_CA   = 3'd2,   // Cpl CA
    OC_DROP = 3'd3,   // nothing
    OC_ATS  = 3'd4,   // a translation completion with the entry below
    OC_PRQ  = 3'd5    // hand the page request to the PRQ with prq_lk
  } oc_resp_e;

  typedef struct packed {
    xreq_t       x;
    oc_resp_e    resp;
    logic [63:0] pa;
    logic [63:0] ats_entry;     // the 8-byte entry (pcie §3.2), bit 0 = R
    logic        log;           // a fault record is due
    logic [7:0]  fr;
    logic        fill;          // fill the IOTLB with fill_e
    iotlb_entry_t fill_e;
    prq_lookup_t prq_lk;        // OC_PRQ: the lookup's answer for the page request
  } oc_t;

  // walk table entry: what the answer of walk i needs
  typedef struct packed {
    xreq_t       x;
    lk_t         lk;
  } wt_t;

  // ---------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------
  function automatic logic wants_write(input logic is_wr, input logic [1:0] at, input logic nw);
    // vtd.md §3.5: writes, and translation requests unless NW=1 with ECAP.NWFS=1
    return is_wr || (at == AT_TRANSLATION && !(nw && NWFS));
  endfunction

  // The 8-byte ATS translation completion entry for a page (pcie §3.2, models.tlp.TranslationEntry):
  // with S=1 the address bits from 12 up to the first 0 encode the size (2 MiB: 19:12 = 1s; 1 GiB: 28:12).
  function automatic logic [63:0] ats_entry(input logic [39:0] page, input fs_page_e size, input logic r,
                                            input logic w, input logic u, input logic priv);
    logic [63:0] e;
    e = {12'h0, page, 12'h0};
    unique case (size)
      FS_PAGE_2M: begin e[19:12] = 8'hFF; e[11] = 1'b1; end
      FS_PAGE_1G: begin e[28:12] = 17'h1_FFFF; e[11] = 1'b1; end
      default: ;
    endcase
    e[4] = priv;
    e[2] = u;
    e[1] = w;
    e[0] = r;
    return e;
  endfunction

  // The outcome of a translation that reached a fault or a page (lookup faults: leaf = 0). What the
  // golden model's respond() does with it: a fault is logged unless FPD / the translation-request
  // column say otherwise; reads get UR, writes are dropped, translation requests get the §6.1 column
  // (S0: an entry with R=W=0; Seff: the page with what it grants; UR; CA).
  function automatic oc_t outcome(input xreq_t x, input logic fpd, input logic [7:0] fr, input logic leaf,
                                  input logic [39:0] page, input fs_page_e size, input logic r,
                                  input logic w, input logic [51:0] pa);
    oc_t        o;
    logic       tr, priv;
    fault_rsp_e rsp;
    o       = '0;
    o.x     = x;
    o.fr    = fr;
    o.pa    = {12'h0, pa};
    tr      = x.at == AT_TRANSLATION;
    priv    = x.pasid_valid && x.pmr;
    o.resp  = tr ? OC_ATS : OC_DMA;
    o.ats_entry = ats_entry(page, size, r, w, 1'b0, priv);
    if (fr != 8'h00) begin
      o.log = fault_logged(fr, tr, fpd);
      if (!tr) begin
        o.resp = x.is_wr ? OC_DROP : OC_UR;
      end else begin
        rsp = fault_rsp_translation(fr);
        unique case (rsp)
          RSP_CA:   o.resp = OC_CA;
          RSP_S0:   o.ats_entry = ats_entry('0, FS_PAGE_4K, 1'b0, 1'b0, 1'b0, priv);
          RSP_SEFF: if (!leaf) o.ats_entry = ats_entry('0, FS_PAGE_4K, 1'b0, 1'b0, 1'b0, priv);
          default:  o.resp = OC_UR;
        endcase
      end
    end
    return o;
  endfunction

  // a count of finished writes is behind a count taken earlier (free-running: done - earlier < 0)
  function automatic logic behind(input logic [15:0] done, input logic [15:0] earlier);
    return 16'(done - earlier) >= 16'h8000;
  endfunction

  // ---------------------------------------------------------------------------------------------
  // Register page and control
  // ---------------------------------------------------------------------------------------------
  reg2hw_t      reg2hw;
  hw2reg_t      hw2reg;
  fault_rec_t   flt;
  logic         flt_valid, flt_ready;
  logic [51:0]  root_rta;
  logic [1:0]   root_ttm;
  logic         inv_all;
  prq_status_e  prq_set;
  logic         prq_set_valid, prq_set_ready;
  pqt_hw2reg_t  prq_pqt;
  iq_status_e     iq_set;
  logic           iq_set_valid, iq_set_ready;
  iqh_hw2reg_t    iq_iqh;
  iqercd_hw2reg_t iq_iqercd;

  logic [BLK_ID_W-1:0] ctrl_awid;
  logic [63:0]  ctrl_awaddr;
  logic [7:0]   ctrl_awlen;
  logic [2:0]   ctrl_awsize;
  logic [1:0]   ctrl_awburst;
  logic         ctrl_awlock;
  logic [3:0]   ctrl_awcache;
  logic [2:0]   ctrl_awprot;
  logic [3:0]   ctrl_awqos;
  logic         ctrl_awvalid, ctrl_awready;
  logic [DW-1:0] ctrl_wdata;
  logic [DW/8-1:0] ctrl_wstrb;
  logic         ctrl_wlast, ctrl_wvalid, ctrl_wready;
  logic [BLK_ID_W-1:0] ctrl_bid;
  logic [1:0]   ctrl_bresp;
  logic         ctrl_bvalid, ctrl_bready;

  logic msg_pending;   // iommu_ctrl has an interrupt message out: reads wait (vtd §1.12 step 6)

  iommu_regs u_regs (
    .clk_i, .rst_ni,
    .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready,
    .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid, .s_axil_wready,
    .s_axil_bresp, .s_axil_bvalid, .s_axil_bready,
    .s_axil_araddr, .s_axil_arvalid, .s_axil_arready,
    .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
    .rd_hold_i (msg_pending),
    .reg2hw_o (reg2hw),
    .hw2reg_i (hw2reg)
  );

  iommu_ctrl #(
    .AXI_DATA_W (DW),
    .AXI_ID_W   (BLK_ID_W),
    .HAW        (HAW)
  ) u_ctrl (
    .clk_i, .rst_ni,
    .reg2hw_i        (reg2hw),
    .hw2reg_o        (hw2reg),
    .fault_i         (flt),
    .fault_valid_i   (flt_valid),
    .fault_ready_o   (flt_ready),
    .iq_set_i        (iq_set),
    .iq_set_valid_i  (iq_set_valid),
    .iq_set_ready_o  (iq_set_ready),
    .prq_set_i       (prq_set),
    .prq_set_valid_i (prq_set_valid),
    .prq_set_ready_o (prq_set_ready),
    .iq_iqh_i        (iq_iqh),
    .iq_iqercd_i     (iq_iqercd),
    .prq_pqt_i       (prq_pqt),
    .root_rta_o      (root_rta),
    .root_ttm_o      (root_ttm),
    .inv_all_o       (inv_all),
    .msg_pending_o   (msg_pending),
    .m_axi_awid      (ctrl_awid),
    .m_axi_awaddr    (ctrl_awaddr),
    .m_axi_awlen     (ctrl_awlen),
    .m_axi_awsize    (ctrl_awsize),
    .m_axi_awburst   (ctrl_awburst),
    .m_axi_awlock    (ctrl_awlock),
    .m_axi_awcache   (ctrl_awcache),
    .m_axi_awprot    (ctrl_awprot),
    .m_axi_awqos     (ctrl_awqos),
    .m_axi_awvalid   (ctrl_awvalid),
    .m_axi_awready   (ctrl_awready),
    .m_axi_wdata     (ctrl_wdata),
    .m_axi_wstrb     (ctrl_wstrb),
    .m_axi_wlast     (ctrl_wlast),
    .m_axi_wvalid    (ctrl_wvalid),
    .m_axi_wready    (ctrl_wready),
    .m_axi_bid       (ctrl_bid),
    .m_axi_bresp     (ctrl_bresp),
    .m_axi_bvalid    (ctrl_bvalid),
    .m_axi_bready    (ctrl_bready)
  );

  // ---------------------------------------------------------------------------------------------
  // Parser
  // ---------------------------------------------------------------------------------------------
  /* verilator lint_off UNUSEDSIGNAL */  // the raw DWs, message fields and the LN/TD bits are for other consumers
  tlp_hdr_t        hdr;
  /* verilator lint_on UNUSEDSIGNAL */
  logic            hdr_valid, hdr_ready;
  logic [DW-1:0]   pl_tdata;
  logic [DW/8-1:0] pl_tkeep;
  logic            pl_tvalid, pl_tlast, pl_tuser, pl_tready;
  logic            rx_gate, rx_ready, rx_mid_q, parser_idle;

  // While an invalidation wait drains (below), no new TLP is taken: the gate closes between TLPs only
  assign s_axis_rx_tready = rx_ready && !rx_gate;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)                                  rx_mid_q <= 1'b0;
    else if (s_axis_rx_tvalid && s_axis_rx_tready) rx_mid_q <= !s_axis_rx_tlast;
  end

  tlp_rx_parser #(.DATA_W(DW)) u_parser (
    .clk_i, .rst_ni,
    .s_axis_tdata  (s_axis_rx_tdata),
    .s_axis_tkeep  (s_axis_rx_tkeep),
    .s_axis_tvalid (s_axis_rx_tvalid && !rx_gate),
    .s_axis_tlast  (s_axis_rx_tlast),
    .s_axis_tready (rx_ready),
    .hdr_o         (hdr),
    .hdr_valid_o   (hdr_valid),
    .hdr_ready_i   (hdr_ready),
    .m_axis_tdata  (pl_tdata),
    .m_axis_tkeep  (pl_tkeep),
    .m_axis_tvalid (pl_tvalid),
    .m_axis_tlast  (pl_tlast),
    .m_axis_tuser  (pl_tuser),
    .m_axis_tready (pl_tready),
    .idle_o        (parser_idle)
  );

  // signals used before the stage that drives them
  localparam int unsigned SKID   = 8;                // TLPs between dispatch and resolve (see the IOTLB)
  localparam int unsigned CRED_W = $clog2(SKID + 1);
  xreq_t             dx;                             // dispatch: the record of the TLP at the parser
  logic              d_fire;
  logic              prq_inv_valid, prq_inv_ready;   // the PRQ's implicit invalidation is taken
  logic [CRED_W-1:0] tlb_credit_q;
  logic              tlb_lkup_ready;                 // the IOTLB takes a lookup (at dispatch)
  logic              inv_taken;                      // a cache accepts an invalidation (any source)
  logic              iq_cpl_ready;                   // the invalidation queue's completion FIFO has room
  logic              rdq_valid, rd_req_ready;        // the read queue holds a read; dma_rd takes one
  logic              x_valid_q;                      // execute holds an outcome
  logic [15:0]       wr_done_q;                      // writes dma_wr has finished (count)

  // ---------------------------------------------------------------------------------------------
  // Payload verdicts, in TLP order: the parser knows whether a payload matched its Length only at its
  // last beat. dma_wr stores payloads whole anyway, so a TLP with a payload is dispatched only once its
  // verdict is in (a malformed write must not be translated: no walk, no A/D update, no fault record).
  // ---------------------------------------------------------------------------------------------
  logic vq_bad, vq_valid, vq_in_ready, wr_tready;
  assign pl_tready = wr_tready && (vq_in_ready || !pl_tlast);

  sync_fifo #(.WIDTH(1), .DEPTH(4)) u_verdict (
    .clk_i, .rst_ni,
    .data_i  (pl_tuser),
    .valid_i (pl_tvalid && pl_tready && pl_tlast),
    .ready_o (vq_in_ready),
    .data_o  (vq_bad),
    .valid_o (vq_valid),
    .ready_i (d_fire && dx.has_payload),
    /* verilator lint_off PINCONNECTEMPTY */  // valid_o says it
    .empty_o ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  // ---------------------------------------------------------------------------------------------
  // Configuration seen by the lookup, changed only while the front end is empty
  // ---------------------------------------------------------------------------------------------
  logic        tes_q;
  logic [51:0] rta_q;
  logic [1:0]  ttm_q;
  logic        cfg_change, front_empty, pl_busy;
  logic [7:0]  gen_q;

  assign cfg_change  = reg2hw.gsts.tes != tes_q || root_rta != rta_q || root_ttm != ttm_q;
  assign front_empty = tlb_credit_q == CRED_W'(SKID) && !pl_busy;  // nothing between dispatch and resolve

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      tes_q <= 1'b0;
      rta_q <= '0;
      ttm_q <= '0;
      gen_q <= '0;
    end else begin
      if (cfg_change && front_empty) begin
        tes_q <= reg2hw.gsts.tes;
        rta_q <= root_rta;
        ttm_q <= root_ttm;
      end
      if (inv_taken) gen_q <= gen_q + 8'd1;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Dispatch
  // ---------------------------------------------------------------------------------------------
  pl_req_t     dpl;
  logic        d_lookup;
  logic [15:0] wr_disp_q;
  logic        pl_req_ready;

  always_comb begin
    logic other_pfx, is_rd, bad_tr_len;
    dx          = '0;
    dx.rid      = hdr.requester_id;
    dx.tag      = hdr.tag;
    dx.tc       = hdr.tc;
    dx.attr     = hdr.attr;
    dx.at       = hdr.at;
    dx.nw       = hdr.ph[0];
    dx.length   = hdr.length;
    dx.first_be = hdr.first_be;
    dx.last_be  = hdr.last_be;
    dx.addr     = hdr.addr;
    dx.pasid_valid = hdr.pasid_valid;
    dx.pasid    = hdr.pasid;
    dx.pmr      = hdr.pasid_valid && hdr.pmr;
    dx.er       = hdr.pasid_valid && hdr.er;
    dx.wr_before = wr_disp_q;
    dx.gen      = gen_q;
    dx.has_payload = hdr.err == TLP_OK && hdr.payload_bytes != '0;
    is_rd       = hdr.kind == TLP_MEM_RD;
    dx.is_wr    = hdr.kind == TLP_MEM_WR;
    dx.locked   = is_rd && hdr.tlp_type == TYPE_MEM_LK;
    other_pfx   = {2'b00, hdr.pasid_valid} != hdr.pfx_cnt;   // any prefix but the PASID one
    // TH=1 on a read: the byte-enable byte carries the steering tag; the enables are implied
    // (pcie TL §2.2.5.1): all bytes, Last DW BE 0000b for a 1-DW read
    if (is_rd && hdr.th) begin
      dx.first_be = 4'hF;
      dx.last_be  = hdr.length == 10'd1 ? 4'h0 : 4'hF;
    end
    bad_tr_len = hdr.length != 10'd0 && (hdr.length < 10'd2 || hdr.length[0]);
    dx.act = ACT_DROP;
    if (hdr.err == TLP_OK) begin
      unique case (hdr.kind)
        TLP_MEM_RD: begin
          if (other_pfx || dx.locked || (hdr.at == AT_TRANSLATION && bad_tr_len)) dx.act = ACT_UR;
          else dx.act = ACT_XLATE;
        end
        TLP_MEM_WR: begin
          if (!other_pfx && hdr.at != AT_TRANSLATION && !hdr.ep) dx.act = ACT_XLATE;
        end
        TLP_OTHER: begin
          // non-posted types (IO, Cfg, AtomicOp) get UR with Byte Count 4, Lower Address 0;
          // DMWr (Type 11011b with data) is posted
          if (!(hdr.tlp_type == 5'b11011 && hdr.fmt[1])) begin
            dx.act      = ACT_UR;
            dx.length   = 10'd1;
            dx.first_be = 4'hF;
            dx.last_be  = 4'h0;
            dx.addr     = '0;
          end
        end
        TLP_MSG: begin
          // page requests go to the PRQ (vtd §5.2) after the lookup; ATS Invalidate Completions to
          // the invalidation queue at once (d_iq; the record itself is dropped); every other message
          // is dropped, and so is a known code with a routing other than its own (models.tlp.decode:
          // MessageCodeError, malformed)
          if (hdr.msg_code == MSG_PAGE_REQ && {hdr.fmt, hdr.tlp_type} == 8'h30 && !other_pfx)
            dx.act = ACT_PRQ;
        end
        default: ;  // completions: dropped
      endcase
    end
    // a payload that ended malformed (parser tuser: its length did not match) makes the TLP malformed:
    // dropped before anything is looked up, walked or recorded (models.tlp.decode rejects it whole)
    if (dx.has_payload && vq_bad) dx.act = ACT_DROP;
    d_lookup = dx.act == ACT_XLATE || dx.act == ACT_PRQ;

    dpl             = '0;
    dpl.rid         = hdr.requester_id;
    dpl.pasid_valid = hdr.pasid_valid;
    dpl.pasid       = hdr.pasid;
    dpl.pmr         = dx.pmr;
    dpl.er          = dx.er;
    unique case (hdr.at)
      AT_TRANSLATION: dpl.kind = PL_TRANSLATION;
      AT_TRANSLATED:  dpl.kind = PL_TRANSLATED;
      default:        dpl.kind = dx.is_wr ? PL_WRITE : PL_READ;
    endcase
    if (dx.act == ACT_PRQ) dpl.kind = PL_PAGE_REQ;
  end

  logic d_prq, d_iq, prq_hdr_ready;
  assign d_prq     = dx.act == ACT_PRQ;
  assign d_iq      = hdr.err == TLP_OK && hdr.kind == TLP_MSG && hdr.msg_code == MSG_ATS_INV_CPL
                     && {hdr.fmt, hdr.tlp_type} == 8'h32 && hdr.pfx_cnt == '0;
  // d_go: everything but the lookup's and the IOTLB's readiness; a payload TLP waits for its verdict
  logic d_go;
  assign d_go      = (!d_prq || prq_hdr_ready) && (!d_iq || iq_cpl_ready) && (!dx.has_payload || vq_valid)
                     && !cfg_change && tlb_credit_q != '0;
  assign hdr_ready = tlb_lkup_ready && (!d_lookup || pl_req_ready) && d_go;
  assign d_fire    = hdr_valid && hdr_ready;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) wr_disp_q <= '0;
    else if (d_fire && dx.has_payload) wr_disp_q <= wr_disp_q + 16'd1;
  end

  // ---------------------------------------------------------------------------------------------
  // Context / PASID lookup
  // ---------------------------------------------------------------------------------------------
  /* verilator lint_off UNUSEDSIGNAL */  // the context fields and PASID-entry fields first-stage translation does not use
  pl_rsp_t pl_rsp;
  /* verilator lint_on UNUSEDSIGNAL */
  logic    pl_rsp_valid, pl_rsp_ready;
  logic    pl_cc_inv_valid, pl_cc_inv_ready, pl_pc_inv_valid, pl_pc_inv_ready;
  pl_cc_inv_t pl_cc_inv;
  pl_pc_inv_t pl_pc_inv;

  logic [BLK_ID_W-1:0] pl_awid, pl_arid, pl_bid, pl_rid;
  logic [63:0]  pl_awaddr, pl_araddr;
  logic [7:0]   pl_awlen, pl_arlen;
  logic [2:0]   pl_awsize, pl_arsize, pl_awprot, pl_arprot;
  logic [1:0]   pl_awburst, pl_arburst, pl_bresp, pl_rresp;
  logic         pl_awlock, pl_arlock;
  logic [3:0]   pl_awcache, pl_arcache, pl_awqos, pl_arqos;
  logic         pl_awvalid, pl_awready, pl_wlast, pl_wvalid, pl_wready, pl_bvalid, pl_bready;
  logic         pl_arvalid, pl_arready, pl_rlast, pl_rvalid, pl_rready;
  logic [DW-1:0] pl_wdata, pl_rdata;
  logic [DW/8-1:0] pl_wstrb;

  pasid_lookup #(
    .AXI_DATA_W  (DW),
    .AXI_ID_W    (BLK_ID_W),
    .TAG_W       (1),
    .SLOTS       (CFG.lookup_slots),
    .CTX_ENTRIES (CFG.ctx_entries),
    .PE_ENTRIES  (CFG.pe_entries),
    .HAW         (HAW)
  ) u_lookup (
    .clk_i, .rst_ni,
    .tes_i          (tes_q),
    .rta_i          (rta_q),
    .ttm_i          (ttm_q),
    .busy_o         (pl_busy),
    .req_i          (dpl),
    .req_tag_i      (1'b0),
    .req_valid_i    (hdr_valid && d_lookup && tlb_lkup_ready && d_go),
    .req_ready_o    (pl_req_ready),
    .rsp_o          (pl_rsp),
    /* verilator lint_off PINCONNECTEMPTY */  // answers come in request order: resolve pairs them with the IOTLB's
    .rsp_tag_o      (),
    /* verilator lint_on PINCONNECTEMPTY */
    .rsp_valid_o    (pl_rsp_valid),
    .rsp_ready_i    (pl_rsp_ready),
    .cc_inv_i       (pl_cc_inv),
    .cc_inv_valid_i (pl_cc_inv_valid),
    .cc_inv_ready_o (pl_cc_inv_ready),
    .pc_inv_i       (pl_pc_inv),
    .pc_inv_valid_i (pl_pc_inv_valid),
    .pc_inv_ready_o (pl_pc_inv_ready),
    .m_axi_awid (pl_awid), .m_axi_awaddr (pl_awaddr), .m_axi_awlen (pl_awlen), .m_axi_awsize (pl_awsize),
    .m_axi_awburst (pl_awburst), .m_axi_awlock (pl_awlock), .m_axi_awcache (pl_awcache),
    .m_axi_awprot (pl_awprot), .m_axi_awqos (pl_awqos), .m_axi_awvalid (pl_awvalid),
    .m_axi_awready (pl_awready), .m_axi_wdata (pl_wdata), .m_axi_wstrb (pl_wstrb), .m_axi_wlast (pl_wlast),
    .m_axi_wvalid (pl_wvalid), .m_axi_wready (pl_wready), .m_axi_bid (pl_bid), .m_axi_bresp (pl_bresp),
    .m_axi_bvalid (pl_bvalid), .m_axi_bready (pl_bready),
    .m_axi_arid (pl_arid), .m_axi_araddr (pl_araddr), .m_axi_arlen (pl_arlen), .m_axi_arsize (pl_arsize),
    .m_axi_arburst (pl_arburst), .m_axi_arlock (pl_arlock), .m_axi_arcache (pl_arcache),
    .m_axi_arprot (pl_arprot), .m_axi_arqos (pl_arqos), .m_axi_arvalid (pl_arvalid),
    .m_axi_arready (pl_arready), .m_axi_rid (pl_rid), .m_axi_rdata (pl_rdata), .m_axi_rresp (pl_rresp),
    .m_axi_rlast (pl_rlast), .m_axi_rvalid (pl_rvalid), .m_axi_rready (pl_rready)
  );

  // ---------------------------------------------------------------------------------------------
  // Invalidation of the three caches, from three sources:
  // * global (iommu_ctrl inv_all_o: TE 1->0, SRTP with ESRTPS): context cache, PASID cache and IOTLB,
  //   each as soon as that cache takes it; it goes before the others;
  // * the PRQ's implicit IOTLB invalidations (vtd §4.7);
  // * the invalidation queue's commands (cc, pc, IOTLB; vtd §4.3), one at a time in queue order.
  // The IOTLB takes one invalidation at a time: global, then PRQ, then IQ; its done goes back to the
  // source that issued it (inv_src_q). Every invalidation taken by any cache advances the generation
  // count, so no walk that started before it fills the IOTLB (the context/PASID caches guard their
  // own fetches).
  // ---------------------------------------------------------------------------------------------
  typedef enum logic [1:0] {INV_SRC_CTRL, INV_SRC_PRQ, INV_SRC_IQ} inv_src_e;

  logic cc_pend_q, pc_pend_q, tlb_pend_q;
  logic tlb_inv_ready, tlb_inv_done_valid, tlb_inv_done_ready;
  iotlb_inv_t prq_inv, iq_tlb_inv, tlb_inv;
  logic       prq_inv_done_ready, iq_tlb_inv_valid, iq_tlb_inv_ready, iq_tlb_done_ready;
  pl_cc_inv_t iq_cc_inv;
  pl_pc_inv_t iq_pc_inv;
  logic       iq_cc_valid, iq_cc_ready, iq_pc_valid, iq_pc_ready;
  inv_src_e   inv_src_q;

  assign prq_inv_ready    = tlb_inv_ready && !tlb_pend_q;
  assign iq_tlb_inv_ready = tlb_inv_ready && !tlb_pend_q && !prq_inv_valid;
  always_comb begin
    tlb_inv = prq_inv_valid ? prq_inv : iq_tlb_inv;
    if (tlb_pend_q) begin
      tlb_inv      = '0;
      tlb_inv.kind = INV_GLOBAL;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)                                    inv_src_q <= INV_SRC_CTRL;
    else if (tlb_inv_ready && tlb_pend_q)           inv_src_q <= INV_SRC_CTRL;
    else if (prq_inv_valid && prq_inv_ready)        inv_src_q <= INV_SRC_PRQ;
    else if (iq_tlb_inv_valid && iq_tlb_inv_ready)  inv_src_q <= INV_SRC_IQ;
  end

  always_comb begin
    unique case (inv_src_q)
      INV_SRC_PRQ: tlb_inv_done_ready = prq_inv_done_ready;
      INV_SRC_IQ:  tlb_inv_done_ready = iq_tlb_done_ready;
      default:     tlb_inv_done_ready = 1'b1;   // nobody waits for the global one
    endcase
  end

  assign pl_cc_inv_valid = cc_pend_q || iq_cc_valid;
  assign pl_cc_inv       = cc_pend_q ? '{g: 2'b01, sid: '0, fm: '0} : iq_cc_inv;    // 01: global
  assign iq_cc_ready     = pl_cc_inv_ready && !cc_pend_q;
  assign pl_pc_inv_valid = pc_pend_q || iq_pc_valid;
  assign pl_pc_inv       = pc_pend_q ? '{g: 2'b11, did: '0, pasid: '0} : iq_pc_inv;  // 11: global
  assign iq_pc_ready     = pl_pc_inv_ready && !pc_pend_q;

  assign inv_taken = inv_all || (pl_cc_inv_valid && pl_cc_inv_ready) || (pl_pc_inv_valid && pl_pc_inv_ready)
                     || ((tlb_pend_q || prq_inv_valid || iq_tlb_inv_valid) && tlb_inv_ready);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cc_pend_q  <= 1'b0;
      pc_pend_q  <= 1'b0;
      tlb_pend_q <= 1'b0;
    end else begin
      if (inv_all) begin
        cc_pend_q  <= 1'b1;
        pc_pend_q  <= 1'b1;
        tlb_pend_q <= 1'b1;
      end else begin
        if (pl_cc_inv_ready) cc_pend_q <= 1'b0;
        if (pl_pc_inv_ready) pc_pend_q <= 1'b0;
        if (tlb_inv_ready)   tlb_pend_q <= 1'b0;
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // The IOTLB lookup, issued at dispatch beside the context/PASID lookup (every TLP takes one, the
  // TLP's record rides in its user field): matched by the request's source tag {RID, PV, PASID}
  // (MATCH_SRC), since the DID is not known before the PASID entry is
  // ---------------------------------------------------------------------------------------------
  iotlb_lkup_t  dt;

  always_comb begin
    dt          = '0;
    dt.src      = {hdr.requester_id, hdr.pasid_valid, hdr.pasid_valid ? hdr.pasid : 20'h0};
    dt.va       = hdr.addr[56:12];
    dt.is_write = wants_write(dx.is_wr, dx.at, dx.nw);
  end

  // ---------------------------------------------------------------------------------------------
  // IOTLB
  // ---------------------------------------------------------------------------------------------
  localparam int unsigned USER_W = $bits(xreq_t);

  // The IOTLB's answers never wait: they go straight to resolve or into a skid FIFO, and a lookup is
  // issued only with a credit (a place in that FIFO). An invalidation's completion waits for the
  // lookups in flight to be answered; without the credits that would wait for resolve and execute,
  // which may be waiting for the PRQ, which waits for that invalidation (a deadlock).

  /* verilator lint_off UNUSEDSIGNAL */  // D: the IOTLB itself misses a write on a D=0 entry
  iotlb_rsp_t          tlb_out, tlb_rsp;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [USER_W-1:0]   tlb_out_user, tlb_user;
  logic                tlb_out_valid, tlb_rsp_valid, tlb_rsp_ready;
  logic                skid_valid;
  /* verilator lint_off UNUSEDSIGNAL */  // always 1 when pushed: the credits count the FIFO's places
  logic                skid_ready;
  /* verilator lint_on UNUSEDSIGNAL */
  logic                fill_valid, fill_ready;
  iotlb_entry_t        fill_e;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) tlb_credit_q <= CRED_W'(SKID);
    else         tlb_credit_q <= tlb_credit_q - CRED_W'(d_fire) + CRED_W'(tlb_rsp_valid && tlb_rsp_ready);
  end

  // resolve sees the FIFO's head, or the IOTLB's answer directly when the FIFO is empty
  assign tlb_rsp_valid = skid_valid || tlb_out_valid;
  logic [$bits(iotlb_rsp_t) + USER_W - 1:0] skid_head;
  assign {tlb_rsp, tlb_user} = skid_valid ? skid_head : {tlb_out, tlb_out_user};

  sync_fifo #(.WIDTH($bits(iotlb_rsp_t) + USER_W), .DEPTH(SKID)) u_skid (
    .clk_i, .rst_ni,
    .data_i  ({tlb_out, tlb_out_user}),
    .valid_i (tlb_out_valid && !(tlb_rsp_ready && !skid_valid)),
    .ready_o (skid_ready),
    .data_o  (skid_head),
    .valid_o (skid_valid),
    .ready_i (tlb_rsp_ready && skid_valid),
    /* verilator lint_off PINCONNECTEMPTY */  // valid_o says it
    .empty_o ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  iotlb #(
    .ENTRIES (CFG.iotlb_entries),
    .WAYS    (CFG.iotlb_ways),
    .USER_W  (USER_W),
    .MATCH_SRC (1'b1)
  ) u_iotlb (
    .clk_i, .rst_ni,
    .lkup_valid_i     (hdr_valid && (!d_lookup || pl_req_ready) && d_go),
    .lkup_ready_o     (tlb_lkup_ready),
    .lkup_i           (dt),
    .lkup_user_i      (dx),
    .rsp_valid_o      (tlb_out_valid),
    .rsp_ready_i      (1'b1),          // credits guarantee room (skid_ready)
    .rsp_o            (tlb_out),
    .rsp_user_o       (tlb_out_user),
    .fill_valid_i     (fill_valid),
    .fill_ready_o     (fill_ready),
    .fill_i           (fill_e),
    .inv_valid_i      (tlb_pend_q || prq_inv_valid || iq_tlb_inv_valid),
    .inv_ready_o      (tlb_inv_ready),
    .inv_i            (tlb_inv),
    .inv_done_valid_o (tlb_inv_done_valid),
    .inv_done_ready_i (tlb_inv_done_ready)
  );

  // ---------------------------------------------------------------------------------------------
  // Resolve: decide from the lookup and the IOTLB, or start a walk
  // ---------------------------------------------------------------------------------------------
  xreq_t  rx;
  lk_t    rl;
  oc_t    r_oc;
  logic   r_walk;           // needs a walk
  fs_req_t r_wreq;
  logic   r_valid;
  logic   wr_walk_q;        // a write's walk is out: payload TLPs wait behind it
  logic   walk_req_ready, wt_free_any;
  logic [WT_W-1:0] wt_free_idx;
  logic   x_take_r;         // execute takes resolve's outcome this cycle
  logic   r_fast, r_fast_go;  // resolve's outcome is a read that goes straight to dma_rd (below)

  // join: the IOTLB's answer (in TLP order, with the TLP's record) and, for the TLPs that were looked
  // up, the context/PASID answer (also in TLP order)
  logic r_lookup, r_in;
  assign rx       = tlb_user;
  assign r_lookup = rx.act == ACT_XLATE || rx.act == ACT_PRQ;
  assign r_in     = tlb_rsp_valid && (!r_lookup || pl_rsp_valid);
  assign pl_rsp_ready = r_lookup && tlb_rsp_valid && tlb_rsp_ready;

  always_comb begin
    rl          = '0;
    if (r_lookup) begin
      rl.disabled = pl_rsp.disabled;
      rl.reason   = 8'(pl_rsp.reason);
      rl.fpd      = pl_rsp.fpd;
      rl.pasid    = pl_rsp.pasid;
      rl.priv     = pl_rsp.priv;
      rl.did      = pl_rsp.pe.did;
      rl.pgtt     = pl_rsp.pe.pgtt;
      rl.level5   = pl_rsp.pe.fspm == 2'b01;
      rl.fsptptr  = pl_rsp.pe.fsptptr;
      rl.wpe      = pl_rsp.pe.wpe;
      rl.eafe     = pl_rsp.pe.eafe;
      rl.pwsnp    = pl_rsp.pe.pwsnp;
    end
  end

  always_comb begin
    logic        tr, intr, canonical;
    logic [51:0] pa;
    fs_access_t  acc;
    logic [7:0]  fr;
    tr        = rx.at == AT_TRANSLATION;
    // requests without PASID to 0xFEEx_xxxx are interrupt requests (models.iommu, vtd.md §3.6)
    intr      = !rx.pasid_valid && rx.at != AT_TRANSLATED && rx.addr[63:20] == 44'h0000_0000_FEE;
    canonical = rl.level5 ? (&rx.addr[63:56] || ~|rx.addr[63:56])
                          : (&rx.addr[63:47] || ~|rx.addr[63:47]);
    r_walk    = 1'b0;
    fr        = 8'h00;
    r_oc      = '0;
    r_oc.x    = rx;
    pa        = rx.addr[51:0];
    acc       = fs_access(HAW, rx.addr[51:12], FS_PAGE_4K, rx.addr[29:0], tr, 1'b1, 1'b0, 1'b1, 1'b1);

    r_wreq            = '0;
    r_wreq.fsptptr    = rl.fsptptr;
    r_wreq.level5     = rl.level5;
    r_wreq.addr       = rx.addr;
    r_wreq.kind       = tr ? FS_TRANSLATION : (rx.is_wr ? FS_WRITE : FS_READ);
    r_wreq.nw         = rx.nw;
    r_wreq.supervisor = rl.priv;
    r_wreq.wpe        = rl.wpe;
    r_wreq.eafe       = rl.eafe;
    r_wreq.snooped    = SMPWCS && rl.pwsnp;

    if (rx.act == ACT_DROP) begin
      r_oc.resp = OC_DROP;
    end else if (rx.act == ACT_UR) begin
      r_oc.resp = OC_UR;
    end else if (rx.act == ACT_PRQ) begin
      r_oc.resp   = OC_PRQ;
      r_oc.prq_lk = '{disabled: rl.disabled, reason: rl.reason, fpd: rl.fpd, did: rl.did, pgtt: rl.pgtt,
                      pasid: rl.pasid};
    end else if (rl.disabled) begin
      // vtd §2.6 step 1: untranslated requests pass through; AT != 00 is unsupported (no record)
      if (rx.at == AT_UNTRANSLATED) r_oc.resp = OC_DMA;
      else                          r_oc.resp = rx.is_wr ? OC_DROP : OC_UR;
      r_oc.pa = rx.addr;
    end else if (intr) begin
      // interrupt requests: writes go through as they are, reads are unsupported, a translation
      // request gets an untranslated-only (U=1) entry for the 4 KiB page, W unless NW
      r_oc.pa = rx.addr;
      if (tr) begin
        r_oc.resp      = OC_ATS;
        r_oc.ats_entry = ats_entry(rx.addr[51:12], FS_PAGE_4K, 1'b0, !rx.nw, 1'b1, 1'b0);
      end else begin
        r_oc.resp = rx.is_wr ? OC_DMA : OC_UR;
      end
    end else if (rl.reason != 8'h00) begin
      r_oc = outcome(rx, rl.fpd, rl.reason, 1'b0, '0, FS_PAGE_4K, 1'b0, 1'b0, '0);
    end else if (rx.at == AT_TRANSLATED) begin
      // a translated request uses its address as it is: only the output checks (FAULT_PRIORITY "output")
      fr = 8'h00;
      if (acc.above_haw)   fr = 8'h83;
      else if (acc.in_irq) fr = 8'h87;
      r_oc = outcome(rx, rl.fpd, fr, 1'b1, rx.addr[51:12], FS_PAGE_4K, 1'b1, 1'b1, pa);
    end else if (tlb_rsp.hit && canonical) begin
      // IOTLB hit: the rows the walker applies at a leaf that do not need memory
      acc = fs_access(HAW, tlb_rsp.frame, fs_page_e'(tlb_rsp.size), rx.addr[29:0], tr, rl.priv, rl.wpe,
                      tlb_rsp.rw, tlb_rsp.us);
      pa  = fs_output(tlb_rsp.frame, fs_page_e'(tlb_rsp.size), rx.addr[29:0]);
      fr  = 8'h00;
      if (acc.above_haw)                          fr = 8'h83;
      else if (acc.in_irq)                        fr = 8'h87;
      else if (!acc.read_ok)                      fr = 8'h81;
      else if (wants_write(rx.is_wr, rx.at, rx.nw) && !acc.write_ok)  fr = 8'h85;
      r_oc = outcome(rx, rl.fpd, fr, 1'b1, tlb_rsp.frame, fs_page_e'(tlb_rsp.size), acc.read_ok,
                     acc.write_ok && (!tr || wants_write(rx.is_wr, rx.at, rx.nw)), pa);
    end else begin
      r_walk = 1'b1;
    end
  end

  // Nothing passes a write whose walk is out (its payload must reach dma_wr first, and reads behind it
  // would only wait for it in the read queue, where they could fill the queue and block the walk's
  // answer); a walk needs a free walker slot.
  assign r_valid = r_in && !wr_walk_q;
  assign tlb_rsp_ready = r_valid && (r_walk ? (walk_req_ready && wt_free_any) : (x_take_r || r_fast_go));

  // Fast path: an outcome whose only action is a read request (a hit, or a UR / CA completion with
  // nothing to record or fill) goes from resolve straight to dma_rd, without the execute register,
  // when nothing older is in execute or in the read queue and every earlier write is done (PCIe: a
  // read does not pass a posted write). Saves a cycle on the hit latency.
  assign r_fast    = r_valid && !r_walk && !x_valid_q && !rdq_valid && !rx.has_payload && !r_oc.log
                     && !r_oc.fill && (r_oc.resp == OC_UR || r_oc.resp == OC_CA
                                       || (r_oc.resp == OC_DMA && !rx.is_wr))
                     && !behind(wr_done_q, rx.wr_before);
  assign r_fast_go = r_fast && rd_req_ready;

  // ---------------------------------------------------------------------------------------------
  // Walk table + first-stage walker
  // ---------------------------------------------------------------------------------------------
  wt_t [N_WALKS-1:0]  wt_q;
  logic [N_WALKS-1:0] wt_busy_q;
  logic               walk_start;
  fs_rsp_t            w_rsp;
  logic [WT_W-1:0]    w_rsp_tag;
  logic               w_rsp_valid, w_rsp_ready;

  always_comb begin
    wt_free_any = 1'b0;
    wt_free_idx = '0;
    for (int i = N_WALKS - 1; i >= 0; i--) begin
      if (!wt_busy_q[i]) begin
        wt_free_any = 1'b1;
        wt_free_idx = WT_W'(i);
      end
    end
  end

  assign walk_start = tlb_rsp_valid && tlb_rsp_ready && r_walk;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wt_busy_q <= '0;
      wr_walk_q <= 1'b0;
    end else begin
      if (w_rsp_valid && w_rsp_ready) begin
        wt_busy_q[w_rsp_tag] <= 1'b0;
        if (wt_q[w_rsp_tag].x.has_payload) wr_walk_q <= 1'b0;
      end
      if (walk_start) begin
        wt_busy_q[wt_free_idx] <= 1'b1;
        if (rx.has_payload) wr_walk_q <= 1'b1;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (walk_start) wt_q[wt_free_idx] <= '{x: rx, lk: rl};
  end

  logic [BLK_ID_W-1:0] fw_awid, fw_arid, fw_bid, fw_rid;
  logic [63:0]  fw_awaddr, fw_araddr;
  logic [7:0]   fw_awlen, fw_arlen;
  logic [2:0]   fw_awsize, fw_arsize, fw_awprot, fw_arprot;
  logic [1:0]   fw_awburst, fw_arburst, fw_bresp, fw_rresp;
  logic         fw_awlock, fw_arlock;
  logic [3:0]   fw_awcache, fw_arcache, fw_awqos, fw_arqos;
  logic         fw_awvalid, fw_awready, fw_wlast, fw_wvalid, fw_wready, fw_bvalid, fw_bready;
  logic         fw_arvalid, fw_arready, fw_rlast, fw_rvalid, fw_rready;
  logic [DW-1:0] fw_wdata, fw_rdata;
  logic [DW/8-1:0] fw_wstrb;

  fs_walker #(
    .HAW        (HAW),
    .NWFS       (NWFS),
    .N_WALKS    (N_WALKS),
    .TAG_W      (WT_W),
    .AXI_DATA_W (DW),
    .AXI_ID_W   (BLK_ID_W)
  ) u_walker (
    .clk_i, .rst_ni,
    .req_i       (r_wreq),
    .req_tag_i   (wt_free_idx),
    .req_valid_i (r_valid && r_walk && wt_free_any),
    .req_ready_o (walk_req_ready),
    .rsp_o       (w_rsp),
    .rsp_tag_o   (w_rsp_tag),
    .rsp_valid_o (w_rsp_valid),
    .rsp_ready_i (w_rsp_ready),
    .m_axi_awid (fw_awid), .m_axi_awaddr (fw_awaddr), .m_axi_awlen (fw_awlen), .m_axi_awsize (fw_awsize),
    .m_axi_awburst (fw_awburst), .m_axi_awlock (fw_awlock), .m_axi_awcache (fw_awcache),
    .m_axi_awprot (fw_awprot), .m_axi_awqos (fw_awqos), .m_axi_awvalid (fw_awvalid),
    .m_axi_awready (fw_awready), .m_axi_wdata (fw_wdata), .m_axi_wstrb (fw_wstrb), .m_axi_wlast (fw_wlast),
    .m_axi_wvalid (fw_wvalid), .m_axi_wready (fw_wready), .m_axi_bid (fw_bid), .m_axi_bresp (fw_bresp),
    .m_axi_bvalid (fw_bvalid), .m_axi_bready (fw_bready),
    .m_axi_arid (fw_arid), .m_axi_araddr (fw_araddr), .m_axi_arlen (fw_arlen), .m_axi_arsize (fw_arsize),
    .m_axi_arburst (fw_arburst), .m_axi_arlock (fw_arlock), .m_axi_arcache (fw_arcache),
    .m_axi_arprot (fw_arprot), .m_axi_arqos (fw_arqos), .m_axi_arvalid (fw_arvalid),
    .m_axi_arready (fw_arready), .m_axi_rid (fw_rid), .m_axi_rdata (fw_rdata), .m_axi_rresp (fw_rresp),
    .m_axi_rlast (fw_rlast), .m_axi_rvalid (fw_rvalid), .m_axi_rready (fw_rready)
  );

  // the walk's outcome
  oc_t w_oc;
  always_comb begin
    wt_t e;
    e    = wt_q[w_rsp_tag];
    w_oc = outcome(e.x, e.lk.fpd, 8'(w_rsp.fault), w_rsp.leaf, w_rsp.page, w_rsp.size, w_rsp.r, w_rsp.w,
                   fs_output(w_rsp.page, w_rsp.size, e.x.addr[29:0]));
    // cache the leaf of a walk that succeeded, unless an invalidation came after the request
    w_oc.fill = w_rsp.fault == FS_OK && w_rsp.leaf && e.x.gen == gen_q;
    w_oc.fill_e = '{did: e.lk.did, pasid: e.lk.pasid,
                    src: {e.x.rid, e.x.pasid_valid, e.x.pasid_valid ? e.x.pasid : 20'h0},
                    va: e.x.addr[56:12], size: iotlb_size_e'(w_rsp.size), frame: w_rsp.page, rw: w_rsp.rw,
                    us: w_rsp.us, d: w_rsp.d};
  end

  // ---------------------------------------------------------------------------------------------
  // Execute: one outcome at a time (walker answers first), its actions each with their own handshake
  // ---------------------------------------------------------------------------------------------
  oc_t   x_q;
  logic  need_wr, need_rd, need_ats, need_flt, need_fill, need_prq;
  logic  done_wr_q, done_rd_q, done_ats_q, done_flt_q, done_fill_q, done_prq_q;
  logic  go_wr, go_rd, go_ats, go_flt, go_fill, go_prq;
  logic  fin_wr, fin_rd, fin_ats, fin_flt, fin_fill, fin_prq, x_done, x_load;
  logic  wrq_ready, rdq_ready, ats_ready, prq_ready, x_flt_ready;

  assign need_wr   = x_q.x.has_payload;
  assign need_rd   = x_q.resp == OC_UR || x_q.resp == OC_CA || (x_q.resp == OC_DMA && !x_q.x.is_wr);
  assign need_ats  = x_q.resp == OC_ATS;
  assign need_flt  = x_q.log;
  assign need_fill = x_q.fill;
  assign need_prq  = x_q.resp == OC_PRQ;

  assign go_wr   = x_valid_q && need_wr   && !done_wr_q;
  assign go_rd   = x_valid_q && need_rd   && !done_rd_q;
  assign go_ats  = x_valid_q && need_ats  && !done_ats_q;
  assign go_flt  = x_valid_q && need_flt  && !done_flt_q;
  assign go_fill = x_valid_q && need_fill && !done_fill_q;
  assign go_prq  = x_valid_q && need_prq  && !done_prq_q;

  assign fin_wr   = !need_wr   || done_wr_q   || wrq_ready;
  assign fin_rd   = !need_rd   || done_rd_q   || rdq_ready;
  assign fin_ats  = !need_ats  || done_ats_q  || ats_ready;
  assign fin_flt  = !need_flt  || done_flt_q  || x_flt_ready;
  assign fin_fill = !need_fill || done_fill_q || fill_ready;
  assign fin_prq  = !need_prq  || done_prq_q  || prq_ready;
  assign x_done   = x_valid_q && fin_wr && fin_rd && fin_ats && fin_flt && fin_fill && fin_prq;
  assign x_load   = !x_valid_q || x_done;

  assign w_rsp_ready = x_load;
  assign x_take_r    = x_load && !w_rsp_valid && !r_walk && !r_fast;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      x_valid_q   <= 1'b0;
      done_wr_q   <= 1'b0;
      done_rd_q   <= 1'b0;
      done_ats_q  <= 1'b0;
      done_flt_q  <= 1'b0;
      done_fill_q <= 1'b0;
      done_prq_q  <= 1'b0;
    end else if (x_load) begin
      x_valid_q   <= w_rsp_valid || (r_valid && !r_walk && !r_fast);
      done_wr_q   <= 1'b0;
      done_rd_q   <= 1'b0;
      done_ats_q  <= 1'b0;
      done_flt_q  <= 1'b0;
      done_fill_q <= 1'b0;
      done_prq_q  <= 1'b0;
    end else begin
      if (go_wr   && wrq_ready)  done_wr_q   <= 1'b1;
      if (go_rd   && rdq_ready)  done_rd_q   <= 1'b1;
      if (go_ats  && ats_ready)  done_ats_q  <= 1'b1;
      if (go_flt  && x_flt_ready) done_flt_q <= 1'b1;
      if (go_fill && fill_ready) done_fill_q <= 1'b1;
      if (go_prq  && prq_ready)  done_prq_q  <= 1'b1;
    end
  end

  always_ff @(posedge clk_i) begin
    if (x_load) x_q <= w_rsp_valid ? w_oc : r_oc;
  end

  // fault record (vtd §1.9 fields; models.iommu.record_fault)
  fault_rec_t x_flt, prq_flt;
  logic       prq_flt_valid, prq_flt_ready;
  always_comb begin
    x_flt     = '0;
    x_flt.fr  = x_q.fr;
    x_flt.sid = x_q.x.rid;
    x_flt.pp  = x_q.x.pasid_valid;
    x_flt.pv  = x_q.x.pasid;
    x_flt.priv = x_q.x.pmr;
    x_flt.exe = x_q.x.er;
    x_flt.t1  = !x_q.x.is_wr;    // {T1, T2}: 00 write, 10 read (translation requests are reads)
    x_flt.t2  = 1'b0;
    x_flt.at  = x_q.x.at;
    x_flt.fi  = x_q.x.addr[63:12];
  end
  // the PRQ's fault records (page requests) share the control block's port; the pipeline goes first
  assign flt           = go_flt ? x_flt : prq_flt;
  assign flt_valid     = go_flt || prq_flt_valid;
  assign x_flt_ready   = flt_ready;
  assign prq_flt_ready = flt_ready && !go_flt;

  assign fill_valid = go_fill;
  assign fill_e     = x_q.fill_e;

  // ---------------------------------------------------------------------------------------------
  // Writes: to dma_wr in TLP order
  // ---------------------------------------------------------------------------------------------
  wr_req_t wr_req;
  logic    wr_done;

  always_comb begin
    wr_req          = '0;
    wr_req.addr     = x_q.pa;
    wr_req.length   = x_q.x.length;
    wr_req.first_be = x_q.x.first_be;
    wr_req.last_be  = x_q.x.last_be;
    wr_req.drop     = !(x_q.resp == OC_DMA && x_q.x.is_wr);
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)      wr_done_q <= '0;
    else if (wr_done) wr_done_q <= wr_done_q + 16'd1;
  end

  dma_wr #(
    .AXI_DATA_W (DW),
    .AXI_ID_W   (DMA_ID_W),
    .AXI_ID     (0)
  ) u_dma_wr (
    .clk_i, .rst_ni,
    .req_i         (wr_req),
    .req_valid_i   (go_wr),
    .req_ready_o   (wrq_ready),
    .s_axis_tdata  (pl_tdata),
    .s_axis_tkeep  (pl_tkeep),
    .s_axis_tvalid (pl_tvalid && (vq_in_ready || !pl_tlast)),
    .s_axis_tlast  (pl_tlast),
    .s_axis_tuser  (pl_tuser),
    .s_axis_tready (wr_tready),
    .m_axi_awid    (m_axi_dma_awid),
    .m_axi_awaddr  (m_axi_dma_awaddr),
    .m_axi_awlen   (m_axi_dma_awlen),
    .m_axi_awsize  (m_axi_dma_awsize),
    .m_axi_awburst (m_axi_dma_awburst),
    .m_axi_awlock  (m_axi_dma_awlock),
    .m_axi_awcache (m_axi_dma_awcache),
    .m_axi_awprot  (m_axi_dma_awprot),
    .m_axi_awvalid (m_axi_dma_awvalid),
    .m_axi_awready (m_axi_dma_awready),
    .m_axi_wdata   (m_axi_dma_wdata),
    .m_axi_wstrb   (m_axi_dma_wstrb),
    .m_axi_wlast   (m_axi_dma_wlast),
    .m_axi_wvalid  (m_axi_dma_wvalid),
    .m_axi_wready  (m_axi_dma_wready),
    .m_axi_bid     (m_axi_dma_bid),
    .m_axi_bresp   (m_axi_dma_bresp),
    .m_axi_bvalid  (m_axi_dma_bvalid),
    .m_axi_bready  (m_axi_dma_bready),
    .done_o        (wr_done)
  );

  // ---------------------------------------------------------------------------------------------
  // Reads (and every Cpl with an error status): a queue; the head goes when every earlier write is done
  // ---------------------------------------------------------------------------------------------
  typedef struct packed {
    rd_req_t     rd;
    logic [15:0] wr_before;
  } rdq_t;

  rdq_t    rdq_in, rdq_head;
  logic    rdq_go, rdq_fifo_ready, rd_direct, rd_valid;
  rd_req_t rd_req;
  logic    rd_idle;
  logic        wr_behind;

  // the dma_rd request of an outcome that reads (or answers UR / CA)
  /* verilator lint_off UNUSEDSIGNAL */  // a read uses few of the outcome's fields
  function automatic rd_req_t rd_of(input oc_t o);
    rd_req_t r;
    r              = '0;
    r.addr         = o.pa;
    r.ua_lo        = o.x.addr[6:2];
    r.requester_id = o.x.rid;
    r.tag          = o.x.tag;
    r.tc           = o.x.tc;
    r.attr         = o.x.attr;
    r.length       = o.x.length;
    r.first_be     = o.x.first_be;
    r.last_be      = o.x.last_be;
    r.locked       = o.x.locked;
    unique case (o.resp)
      OC_UR:   r.status = CPL_UR;
      OC_CA:   r.status = CPL_CA;
      default: r.status = CPL_SC;
    endcase
    return r;
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  assign rdq_in = '{rd: rd_of(x_q), wr_before: x_q.x.wr_before};

  // an empty queue is passed by (no cycle lost when nothing waits)

  assign rd_direct = !rdq_valid && go_rd && !behind(wr_done_q, x_q.x.wr_before);
  assign rd_valid  = rdq_valid ? rdq_go : (rd_direct || r_fast);
  assign rd_req    = rdq_valid ? rdq_head.rd : x_valid_q ? rdq_in.rd : rd_of(r_oc);
  assign rdq_ready = (rd_direct && rd_req_ready) || rdq_fifo_ready;

  sync_fifo #(.WIDTH($bits(rdq_t)), .DEPTH(4)) u_rdq (
    .clk_i, .rst_ni,
    .data_i  (rdq_in),
    .valid_i (go_rd && !(rd_direct && rd_req_ready)),
    .ready_o (rdq_fifo_ready),
    .data_o  (rdq_head),
    .valid_o (rdq_valid),
    .ready_i (rdq_go && rd_req_ready),
    /* verilator lint_off PINCONNECTEMPTY */  // valid_o says it
    .empty_o ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  assign wr_behind = behind(wr_done_q, rdq_head.wr_before);
  assign rdq_go    = rdq_valid && !wr_behind;

  // transmit sources: 0 dma_rd completions, 1 ATS translation completions, 2 PRQ automatic responses,
  // 3 invalidation queue (ATS Invalidate Requests, PRG responses)
  localparam int unsigned NTX = 4;
  tx_hdr_t [NTX-1:0]          tx_hdr;
  logic [NTX-1:0]             tx_hdr_valid, tx_hdr_ready;
  logic [NTX-1:0][DW-1:0]     tx_tdata;
  logic [NTX-1:0][DW/8-1:0]   tx_tkeep;
  logic [NTX-1:0]             tx_tvalid, tx_tlast;
  /* verilator lint_off UNUSEDSIGNAL */  // source 2 (PRQ responses) has no payload stream
  logic [NTX-1:0]             tx_tready;
  /* verilator lint_on UNUSEDSIGNAL */

  dma_rd #(
    .AXI_DATA_W  (DW),
    .AXI_ID_W    (DMA_ID_W),
    .MAX_PAYLOAD (CFG.max_payload),
    .RCB         (CFG.rcb),
    .AR_BYPASS   (1'b0)    // registered AR outputs: the fast path already feeds dma_rd from resolve
  ) u_dma_rd (
    .clk_i, .rst_ni,
    .completer_id_i    (CFG.iommu_rid),
    .req_i             (rd_req),
    .req_valid_i       (rd_valid),
    .req_ready_o       (rd_req_ready),
    .m_axi_arid        (m_axi_dma_arid),
    .m_axi_araddr      (m_axi_dma_araddr),
    .m_axi_arlen       (m_axi_dma_arlen),
    .m_axi_arsize      (m_axi_dma_arsize),
    .m_axi_arburst     (m_axi_dma_arburst),
    .m_axi_arlock      (m_axi_dma_arlock),
    .m_axi_arcache     (m_axi_dma_arcache),
    .m_axi_arprot      (m_axi_dma_arprot),
    .m_axi_arvalid     (m_axi_dma_arvalid),
    .m_axi_arready     (m_axi_dma_arready),
    .m_axi_rid         (m_axi_dma_rid),
    .m_axi_rdata       (m_axi_dma_rdata),
    .m_axi_rresp       (m_axi_dma_rresp),
    .m_axi_rlast       (m_axi_dma_rlast),
    .m_axi_rvalid      (m_axi_dma_rvalid),
    .m_axi_rready      (m_axi_dma_rready),
    .cpl_hdr_o         (tx_hdr[0]),
    .cpl_hdr_valid_o   (tx_hdr_valid[0]),
    .cpl_hdr_ready_i   (tx_hdr_ready[0]),
    .m_axis_cpl_tdata  (tx_tdata[0]),
    .m_axis_cpl_tkeep  (tx_tkeep[0]),
    .m_axis_cpl_tvalid (tx_tvalid[0]),
    .m_axis_cpl_tlast  (tx_tlast[0]),
    .m_axis_cpl_tready (tx_tready[0]),
    .idle_o            (rd_idle)
  );

  // ---------------------------------------------------------------------------------------------
  // ATS translation completions: one CplD with one 8-byte entry, Byte Count 8 (models.tlp.translation_completion)
  // ---------------------------------------------------------------------------------------------
  logic        ats_hdr_q, ats_data_q;
  tx_hdr_t     ats_hdr_d;
  logic [63:0] ats_data_d;
  tx_hdr_t     ats_hdr_r;
  logic [63:0] ats_data_r;

  // a new completion is taken in the cycle the previous one leaves (one per cycle)
  assign ats_ready = (!ats_hdr_q || tx_hdr_ready[1]) && (!ats_data_q || tx_tready[1]);

  always_comb begin
    ats_hdr_d = cpl_hdr(CFG.iommu_rid, x_q.x.rid, x_q.x.tag, x_q.x.tc, x_q.x.attr, CPL_SC, 12'd8,
                        lower_address(x_q.x.addr[6:2], x_q.x.first_be), 11'd2, 1'b0);
    ats_data_d = '0;
    for (int b = 0; b < 8; b++) ats_data_d[8 * b +: 8] = x_q.ats_entry[63 - 8 * b -: 8];  // big-endian
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ats_hdr_q  <= 1'b0;
      ats_data_q <= 1'b0;
    end else begin
      if (go_ats && ats_ready) begin
        ats_hdr_q  <= 1'b1;
        ats_data_q <= 1'b1;
      end else begin
        if (tx_hdr_ready[1]) ats_hdr_q  <= 1'b0;
        if (tx_tready[1])    ats_data_q <= 1'b0;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (go_ats && ats_ready) begin
      ats_hdr_r  <= ats_hdr_d;
      ats_data_r <= ats_data_d;
    end
  end

  assign tx_hdr[1]       = ats_hdr_r;
  assign tx_hdr_valid[1] = ats_hdr_q;
  assign tx_tdata[1]     = DW'(ats_data_r);
  assign tx_tkeep[1]     = (DW/8)'(8'hFF);
  assign tx_tvalid[1]    = ats_data_q;
  assign tx_tlast[1]     = 1'b1;

  tlp_tx #(
    .DATA_W  (DW),
    .NUM_SRC (NTX)
  ) u_tx (
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

  // ---------------------------------------------------------------------------------------------
  // Page request queue (vtd §5.2): the page request's header waits in a FIFO from dispatch until
  // execute hands it over with its lookup answer (page requests stay in TLP order on both paths)
  // ---------------------------------------------------------------------------------------------
  tlp_hdr_t prq_hdr;
  logic     prq_hdr_valid;

  sync_fifo #(.WIDTH($bits(tlp_hdr_t)), .DEPTH(4)) u_prq_hdr (
    .clk_i, .rst_ni,
    .data_i  (hdr),
    .valid_i (d_fire && d_prq),
    .ready_o (prq_hdr_ready),
    .data_o  (prq_hdr),
    .valid_o (prq_hdr_valid),
    .ready_i (go_prq && prq_ready),
    /* verilator lint_off PINCONNECTEMPTY */  // valid_o says it
    .empty_o ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  logic [BLK_ID_W-1:0] prq_awid, prq_bid;
  logic [63:0]  prq_awaddr;
  logic [7:0]   prq_awlen;
  logic [2:0]   prq_awsize, prq_awprot;
  logic [1:0]   prq_awburst, prq_bresp;
  logic         prq_awlock, prq_awvalid, prq_awready, prq_wlast, prq_wvalid, prq_wready, prq_bvalid, prq_bready;
  logic [3:0]   prq_awcache, prq_awqos;
  logic [DW-1:0] prq_wdata;
  logic [DW/8-1:0] prq_wstrb;
  // the PRQ only writes: its row's read channels are idle
  logic                prq_arready_unused, prq_rlast_unused, prq_rvalid_unused;
  logic [BLK_ID_W-1:0] prq_rid_unused;
  logic [DW-1:0]       prq_rdata_unused;
  logic [1:0]          prq_rresp_unused;

  prq #(
    .AXI_DATA_W (DW),
    .AXI_ID_W   (BLK_ID_W),
    .IOMMU_RID  (CFG.iommu_rid)
  ) u_prq (
    .clk_i, .rst_ni,
    .req_hdr_i        (prq_hdr),
    .req_lkup_i       (x_q.prq_lk),
    .req_valid_i      (go_prq && prq_hdr_valid),
    .req_ready_o      (prq_ready),
    .pqh_i            (reg2hw.pqh.pqh),
    .pqt_i            (reg2hw.pqt.pqt),
    .pqa_i            (reg2hw.pqa.pqa),
    .pqs_i            (reg2hw.pqa.pqs),
    .pro_i            (reg2hw.prs.pro),
    .pqt_o            (prq_pqt),
    .prq_set_o        (prq_set),
    .prq_set_valid_o  (prq_set_valid),
    .prq_set_ready_i  (prq_set_ready),
    .fault_o          (prq_flt),
    .fault_valid_o    (prq_flt_valid),
    .fault_ready_i    (prq_flt_ready),
    .inv_o            (prq_inv),
    .inv_valid_o      (prq_inv_valid),
    .inv_ready_i      (prq_inv_ready),
    .inv_done_valid_i (tlb_inv_done_valid && inv_src_q == INV_SRC_PRQ),
    .inv_done_ready_o (prq_inv_done_ready),
    .tx_hdr_o         (tx_hdr[2]),
    .tx_hdr_valid_o   (tx_hdr_valid[2]),
    .tx_hdr_ready_i   (tx_hdr_ready[2]),
    /* verilator lint_off PINCONNECTEMPTY */  // per-request outcome pulses are for block-level tests
    .outcome_o        (),
    .outcome_valid_o  (),
    /* verilator lint_on PINCONNECTEMPTY */
    .m_axi_awid (prq_awid), .m_axi_awaddr (prq_awaddr), .m_axi_awlen (prq_awlen), .m_axi_awsize (prq_awsize),
    .m_axi_awburst (prq_awburst), .m_axi_awlock (prq_awlock), .m_axi_awcache (prq_awcache),
    .m_axi_awprot (prq_awprot), .m_axi_awqos (prq_awqos), .m_axi_awvalid (prq_awvalid),
    .m_axi_awready (prq_awready), .m_axi_wdata (prq_wdata), .m_axi_wstrb (prq_wstrb), .m_axi_wlast (prq_wlast),
    .m_axi_wvalid (prq_wvalid), .m_axi_wready (prq_wready), .m_axi_bid (prq_bid), .m_axi_bresp (prq_bresp),
    .m_axi_bvalid (prq_bvalid), .m_axi_bready (prq_bready)
  );

  // automatic PRG responses carry no payload
  assign tx_tdata[2]  = '0;
  assign tx_tkeep[2]  = '0;
  assign tx_tvalid[2] = 1'b0;
  assign tx_tlast[2]  = 1'b0;

  // ---------------------------------------------------------------------------------------------
  // Invalidation queue (vtd §1.10, §4): descriptors from IQA + IQH, cache commands to the mux above,
  // ATS Invalidate Requests and PRG responses to tlp_tx, ATS Invalidate Completions from dispatch (a
  // FIFO, in TLP order), status writes through the table port.
  //
  // Drain (vtd.md §4.3: after the next wait completes no request may use an invalidated translation;
  // §4.4 PD). A wait completes only after drain_ack: the rx input is closed between TLPs (rx_gate)
  // and everything taken before is worked off: parser empty, nothing between dispatch and resolve,
  // no walk, execute empty, no read waiting or reading memory (dma_rd idle), every write's B
  // response in (dma_wr done count), no ATS completion waiting, the PRQ idle (a page request's
  // descriptor is visible once the PRQ is back to idle) and no completion left for the IQ. So a PD
  // wait's prq_drained_i is the same condition. The gate opens again once the wait moves on; traffic
  // stops for the drain's duration (about the pipeline's latency, longer under walks).
  // ---------------------------------------------------------------------------------------------
  tlp_hdr_t iq_cpl;
  logic     iq_cpl_valid, iq_cpl_in_ready, iq_drain_req, pipe_idle, drain_ack;

  sync_fifo #(.WIDTH($bits(tlp_hdr_t)), .DEPTH(2)) u_iq_cpl (
    .clk_i, .rst_ni,
    .data_i  (hdr),
    .valid_i (d_fire && d_iq),
    .ready_o (iq_cpl_ready),
    .data_o  (iq_cpl),
    .valid_o (iq_cpl_valid),
    .ready_i (iq_cpl_in_ready),
    /* verilator lint_off PINCONNECTEMPTY */  // valid_o says it
    .empty_o ()
    /* verilator lint_on PINCONNECTEMPTY */
  );

  assign pipe_idle = parser_idle && !vq_valid && front_empty && wt_busy_q == '0 && !x_valid_q && !rdq_valid
                     && rd_idle && wr_done_q == wr_disp_q && !ats_hdr_q && prq_ready && !prq_hdr_valid
                     && !iq_cpl_valid;
  assign rx_gate   = iq_drain_req && !rx_mid_q;
  assign drain_ack = rx_gate && pipe_idle;

  logic [BLK_ID_W-1:0] iq_awid, iq_bid, iq_arid, iq_rid;
  logic [63:0]  iq_awaddr, iq_araddr;
  logic [7:0]   iq_awlen, iq_arlen;
  logic [2:0]   iq_awsize, iq_awprot, iq_arsize, iq_arprot;
  logic [1:0]   iq_awburst, iq_bresp, iq_arburst, iq_rresp;
  logic         iq_awlock, iq_awvalid, iq_awready, iq_wlast, iq_wvalid, iq_wready, iq_bvalid, iq_bready;
  logic         iq_arlock, iq_arvalid, iq_arready, iq_rlast, iq_rvalid, iq_rready;
  logic [3:0]   iq_awcache, iq_awqos, iq_arcache, iq_arqos;
  logic [DW-1:0] iq_wdata, iq_rdata;
  logic [DW/8-1:0] iq_wstrb;

  inv_queue #(
    .AXI_DATA_W     (DW),
    .AXI_ID_W       (BLK_ID_W),
    .TLP_DATA_W     (DW),
    .HAW            (HAW),
    .IOMMU_RID      (CFG.iommu_rid),
    .TIMEOUT_CYCLES (CFG.iq_timeout),
    .WAIT_SLOTS     (CFG.iq_wait_slots)
  ) u_iq (
    .clk_i, .rst_ni,
    .reg2hw_i               (reg2hw),
    .root_ttm_i             (root_ttm),
    .iq_set_o               (iq_set),
    .iq_set_valid_o         (iq_set_valid),
    .iq_set_ready_i         (iq_set_ready),
    .iq_iqh_o               (iq_iqh),
    .iq_iqercd_o            (iq_iqercd),
    .cc_inv_o               (iq_cc_inv),
    .cc_inv_valid_o         (iq_cc_valid),
    .cc_inv_ready_i         (iq_cc_ready),
    .pc_inv_o               (iq_pc_inv),
    .pc_inv_valid_o         (iq_pc_valid),
    .pc_inv_ready_i         (iq_pc_ready),
    .iotlb_inv_o            (iq_tlb_inv),
    .iotlb_inv_valid_o      (iq_tlb_inv_valid),
    .iotlb_inv_ready_i      (iq_tlb_inv_ready),
    .iotlb_inv_done_valid_i (tlb_inv_done_valid && inv_src_q == INV_SRC_IQ),
    .iotlb_inv_done_ready_o (iq_tlb_done_ready),
    .tx_hdr_o               (tx_hdr[3]),
    .tx_hdr_valid_o         (tx_hdr_valid[3]),
    .tx_hdr_ready_i         (tx_hdr_ready[3]),
    .m_axis_tx_tdata        (tx_tdata[3]),
    .m_axis_tx_tkeep        (tx_tkeep[3]),
    .m_axis_tx_tvalid       (tx_tvalid[3]),
    .m_axis_tx_tlast        (tx_tlast[3]),
    .m_axis_tx_tready       (tx_tready[3]),
    .cpl_i                  (iq_cpl),
    .cpl_valid_i            (iq_cpl_valid),
    .cpl_ready_o            (iq_cpl_in_ready),
    .prq_drained_i          (drain_ack),
    .drain_req_o            (iq_drain_req),
    .drain_ack_i            (drain_ack),
    /* verilator lint_off PINCONNECTEMPTY */  // for the block's own tests
    .idle_o                 (),
    /* verilator lint_on PINCONNECTEMPTY */
    .m_axi_awid (iq_awid), .m_axi_awaddr (iq_awaddr), .m_axi_awlen (iq_awlen), .m_axi_awsize (iq_awsize),
    .m_axi_awburst (iq_awburst), .m_axi_awlock (iq_awlock), .m_axi_awcache (iq_awcache),
    .m_axi_awprot (iq_awprot), .m_axi_awqos (iq_awqos), .m_axi_awvalid (iq_awvalid),
    .m_axi_awready (iq_awready), .m_axi_wdata (iq_wdata), .m_axi_wstrb (iq_wstrb), .m_axi_wlast (iq_wlast),
    .m_axi_wvalid (iq_wvalid), .m_axi_wready (iq_wready), .m_axi_bid (iq_bid), .m_axi_bresp (iq_bresp),
    .m_axi_bvalid (iq_bvalid), .m_axi_bready (iq_bready),
    .m_axi_arid (iq_arid), .m_axi_araddr (iq_araddr), .m_axi_arlen (iq_arlen), .m_axi_arsize (iq_arsize),
    .m_axi_arburst (iq_arburst), .m_axi_arlock (iq_arlock), .m_axi_arcache (iq_arcache),
    .m_axi_arprot (iq_arprot), .m_axi_arqos (iq_arqos), .m_axi_arvalid (iq_arvalid),
    .m_axi_arready (iq_arready), .m_axi_rid (iq_rid), .m_axi_rdata (iq_rdata), .m_axi_rresp (iq_rresp),
    .m_axi_rlast (iq_rlast), .m_axi_rvalid (iq_rvalid), .m_axi_rready (iq_rready)
  );

  // ---------------------------------------------------------------------------------------------
  // The IOMMU's own AXI accesses: lookup (reads), walker (reads, exclusive pairs), control (MSIs), PRQ
  // (descriptors), invalidation queue (descriptors, status writes)
  // ---------------------------------------------------------------------------------------------
  localparam int unsigned NM = 5;

  // the control block only writes: its row's read channels are idle
  logic                ctrl_arready_unused, ctrl_rlast_unused, ctrl_rvalid_unused;
  logic [BLK_ID_W-1:0] ctrl_rid_unused;
  logic [DW-1:0]       ctrl_rdata_unused;
  logic [1:0]          ctrl_rresp_unused;

  axi_mux #(
    .N      (NM),
    .ID_W   (BLK_ID_W),
    .DATA_W (DW)
  ) u_tbl_mux (
    .clk_i, .rst_ni,
    .s_axi_awid    ({iq_awid, prq_awid, ctrl_awid, fw_awid, pl_awid}),
    .s_axi_awaddr  ({iq_awaddr, prq_awaddr, ctrl_awaddr, fw_awaddr, pl_awaddr}),
    .s_axi_awlen   ({iq_awlen, prq_awlen, ctrl_awlen, fw_awlen, pl_awlen}),
    .s_axi_awsize  ({iq_awsize, prq_awsize, ctrl_awsize, fw_awsize, pl_awsize}),
    .s_axi_awburst ({iq_awburst, prq_awburst, ctrl_awburst, fw_awburst, pl_awburst}),
    .s_axi_awlock  ({iq_awlock, prq_awlock, ctrl_awlock, fw_awlock, pl_awlock}),
    .s_axi_awcache ({iq_awcache, prq_awcache, ctrl_awcache, fw_awcache, pl_awcache}),
    .s_axi_awprot  ({iq_awprot, prq_awprot, ctrl_awprot, fw_awprot, pl_awprot}),
    .s_axi_awqos   ({iq_awqos, prq_awqos, ctrl_awqos, fw_awqos, pl_awqos}),
    .s_axi_awvalid ({iq_awvalid, prq_awvalid, ctrl_awvalid, fw_awvalid, pl_awvalid}),
    .s_axi_awready ({iq_awready, prq_awready, ctrl_awready, fw_awready, pl_awready}),
    .s_axi_wdata   ({iq_wdata, prq_wdata, ctrl_wdata, fw_wdata, pl_wdata}),
    .s_axi_wstrb   ({iq_wstrb, prq_wstrb, ctrl_wstrb, fw_wstrb, pl_wstrb}),
    .s_axi_wlast   ({iq_wlast, prq_wlast, ctrl_wlast, fw_wlast, pl_wlast}),
    .s_axi_wvalid  ({iq_wvalid, prq_wvalid, ctrl_wvalid, fw_wvalid, pl_wvalid}),
    .s_axi_wready  ({iq_wready, prq_wready, ctrl_wready, fw_wready, pl_wready}),
    .s_axi_bid     ({iq_bid, prq_bid, ctrl_bid, fw_bid, pl_bid}),
    .s_axi_bresp   ({iq_bresp, prq_bresp, ctrl_bresp, fw_bresp, pl_bresp}),
    .s_axi_bvalid  ({iq_bvalid, prq_bvalid, ctrl_bvalid, fw_bvalid, pl_bvalid}),
    .s_axi_bready  ({iq_bready, prq_bready, ctrl_bready, fw_bready, pl_bready}),
    .s_axi_arid    ({iq_arid, BLK_ID_W'(0), BLK_ID_W'(0), fw_arid, pl_arid}),
    .s_axi_araddr  ({iq_araddr, 64'h0, 64'h0, fw_araddr, pl_araddr}),
    .s_axi_arlen   ({iq_arlen, 8'h0, 8'h0, fw_arlen, pl_arlen}),
    .s_axi_arsize  ({iq_arsize, 3'h0, 3'h0, fw_arsize, pl_arsize}),
    .s_axi_arburst ({iq_arburst, 2'h0, 2'h0, fw_arburst, pl_arburst}),
    .s_axi_arlock  ({iq_arlock, 1'b0, 1'b0, fw_arlock, pl_arlock}),
    .s_axi_arcache ({iq_arcache, 4'h0, 4'h0, fw_arcache, pl_arcache}),
    .s_axi_arprot  ({iq_arprot, 3'h0, 3'h0, fw_arprot, pl_arprot}),
    .s_axi_arqos   ({iq_arqos, 4'h0, 4'h0, fw_arqos, pl_arqos}),
    .s_axi_arvalid ({iq_arvalid, 1'b0, 1'b0, fw_arvalid, pl_arvalid}),
    .s_axi_arready ({iq_arready, prq_arready_unused, ctrl_arready_unused, fw_arready, pl_arready}),
    .s_axi_rid     ({iq_rid, prq_rid_unused, ctrl_rid_unused, fw_rid, pl_rid}),
    .s_axi_rdata   ({iq_rdata, prq_rdata_unused, ctrl_rdata_unused, fw_rdata, pl_rdata}),
    .s_axi_rresp   ({iq_rresp, prq_rresp_unused, ctrl_rresp_unused, fw_rresp, pl_rresp}),
    .s_axi_rlast   ({iq_rlast, prq_rlast_unused, ctrl_rlast_unused, fw_rlast, pl_rlast}),
    .s_axi_rvalid  ({iq_rvalid, prq_rvalid_unused, ctrl_rvalid_unused, fw_rvalid, pl_rvalid}),
    .s_axi_rready  ({iq_rready, 1'b1, 1'b1, fw_rready, pl_rready}),
    .m_axi_awid    (m_axi_tbl_awid),
    .m_axi_awaddr  (m_axi_tbl_awaddr),
    .m_axi_awlen   (m_axi_tbl_awlen),
    .m_axi_awsize  (m_axi_tbl_awsize),
    .m_axi_awburst (m_axi_tbl_awburst),
    .m_axi_awlock  (m_axi_tbl_awlock),
    .m_axi_awcache (m_axi_tbl_awcache),
    .m_axi_awprot  (m_axi_tbl_awprot),
    .m_axi_awqos   (m_axi_tbl_awqos),
    .m_axi_awvalid (m_axi_tbl_awvalid),
    .m_axi_awready (m_axi_tbl_awready),
    .m_axi_wdata   (m_axi_tbl_wdata),
    .m_axi_wstrb   (m_axi_tbl_wstrb),
    .m_axi_wlast   (m_axi_tbl_wlast),
    .m_axi_wvalid  (m_axi_tbl_wvalid),
    .m_axi_wready  (m_axi_tbl_wready),
    .m_axi_bid     (m_axi_tbl_bid),
    .m_axi_bresp   (m_axi_tbl_bresp),
    .m_axi_bvalid  (m_axi_tbl_bvalid),
    .m_axi_bready  (m_axi_tbl_bready),
    .m_axi_arid    (m_axi_tbl_arid),
    .m_axi_araddr  (m_axi_tbl_araddr),
    .m_axi_arlen   (m_axi_tbl_arlen),
    .m_axi_arsize  (m_axi_tbl_arsize),
    .m_axi_arburst (m_axi_tbl_arburst),
    .m_axi_arlock  (m_axi_tbl_arlock),
    .m_axi_arcache (m_axi_tbl_arcache),
    .m_axi_arprot  (m_axi_tbl_arprot),
    .m_axi_arqos   (m_axi_tbl_arqos),
    .m_axi_arvalid (m_axi_tbl_arvalid),
    .m_axi_arready (m_axi_tbl_arready),
    .m_axi_rid     (m_axi_tbl_rid),
    .m_axi_rdata   (m_axi_tbl_rdata),
    .m_axi_rresp   (m_axi_tbl_rresp),
    .m_axi_rlast   (m_axi_tbl_rlast),
    .m_axi_rvalid  (m_axi_tbl_rvalid),
    .m_axi_rready  (m_axi_tbl_rready)
  );

endmodule

`resetall
