`resetall
`timescale 1ns / 1ps
`default_nettype none

// The IOMMU control block: what happens on register accesses and on hardware status changes, next
// to the register page (rtl/iommu_regs.sv, generated). It reads the page through reg2hw and writes it
// through hw2reg, and does what the golden model (models/iommu.py: the register hooks of Iommu, the
// EventSource class, Iommu.record_fault) does:
//
// * GCMD -> GSTS (vtd.md §1.5). Each command of one write is acted on, in bit order (TE, SRTP, QIE),
//   as the model does; software gives one command at a time (WBF/IRE/SIRTP/CFI are not supported by
//   the profile and are ignored). TE: GSTS.TES follows; TE 1->0 requests a global invalidation of
//   every DMA-remapping cache (inv_all_o) and, with GSTS.IRES = 0, resets the fault index (§6.3).
//   SRTP: RTADDR.RTA (bits >= HAW dropped, §1.6) and RTADDR.TTM are latched into root_rta_o /
//   root_ttm_o, GSTS.RTPS is set, and with CAP.ESRTPS a global invalidation is requested. QIE:
//   GSTS.QIES follows; QIE 1->0 resets IQH to 0 (§1.10; this wins over the queue's own IQH write).
// * Register-based invalidation (CCMD.ICC, IOTLB_REG.IVT, §1.7): always an error in scalable mode; the
//   command completes at once (ICC/IVT cleared) with actual granularity CAIG/IAIG = 00.
// * FRCDn.F cleared by software: FSTS.PPF = OR of every FRCD.F (§1.8). FSTS / FRCD / ICS / PRS cleared
//   by software: the event group's IP drops when none of its status bits is left (§1.12 step 5).
// * Primary fault logging (§6.3), one record per accepted fault_i: PFO=1 drops it; FRCD[index].F=1
//   sets PFO; otherwise FRCD[index] gets the record with F=1 (all fields at one clock edge, so F is
//   never seen before them), FRI = index and PPF = 1 when PPF was 0, and the index advances (mod
//   NUM_FRCD). No compression of faults with the same source-id (the optional step 2), as the model.
// * The interrupt event logic of §1.12, written once and instantiated for the three groups (fault:
//   FSTS.PPF|PFO|IQE|ICE|ITE with FECTL/FEDATA/FEADDR/FEUADDR; invalidation: ICS.IWC with IE*; page
//   request: PRS.PPR|PRO with PE*). A status bit set while no status bit of its group was set raises
//   the event: IP = 1 with IM = 1, else the message is sent. IM 1->0 with IP = 1 sends and clears IP.
//   IP = 1 only ever exists with IM = 1 (it is set while IM = 1, and the write that clears IM clears
//   it), so a write of xxCTL that leaves IM = 0 while IP = 1 is that 1->0 transition.
//   The message (address xxUADDR:xxADDR, data xxDATA, captured when the event is decided) is a
//   32-bit write on the AXI4 master port; messages leave in the order they were decided, one at a
//   time (the next AW only after the previous B). msg_pending_o is high while one waits or is in
//   flight: the register page holds reads back meanwhile (step 6: a read pushes earlier interrupts).
//
// Status bits of the other blocks: the invalidation queue asks for IQE / ICE / ITE / IWC on
// iq_set_*, the page request queue for PPR / PRO on prq_set_* (ready/valid; the handshake edge is the
// edge the bit is set and its event decided). Their other register writes (IQH, IQERCD, PQT) pass
// through this block (iq_iqh_i, iq_iqercd_i, prq_pqt_i), so hw2reg_o is the register page's only
// hardware writer: IQERCD written in the cycle of an iq_set_* handshake lands at the same edge.
//
// Ordering (what makes the outcome the model's for any interleaving):
// * A software write takes effect in the page at the edge that raises bvalid (edge E); its side
//   effects (the qe pulses seen in the next cycle) take effect at E+1. Register writes commit at most
//   every second edge, so side effects never meet a software write.
// * Hardware events (fault_i, iq_set_*, prq_set_*) are accepted one per cycle (fault_i first, then
//   iq_set_*, then prq_set_*) and never in a cycle with a pending side effect; all their register
//   updates and the event decision happen at the handshake edge, from the page as it was before it.
//   One that meets a software write at the same edge is therefore ordered before it, and the page's
//   rule "hardware wins" keeps a status bit it sets even if the write clears it (the write cleared a
//   0); hardware drives a status bit (RW1CS) only to set it from 0 to 1.
// * Message slots: each group has at most one message waiting or in flight; a hardware event of a
//   group is not accepted while that group has one. A message for IM 1->0 needs IP = 1, and IP is only
//   set by an accepted event, after which nothing else queues a message for the group until IP is
//   cleared: so the unmask message always finds its group's slot free, and three slots never overflow.
//
// AXI4 master (write channels only): AWLEN=0, AWSIZE=2 (4 bytes), INCR, AWID=0, AWCACHE=0000 (device,
// non-bufferable: B means the message was delivered), AWPROT=010; the data word is repeated on every
// 32-bit lane and WSTRB selects the addressed one. BRESP is not looked at: a message the
// interconnect refuses is lost (nothing in VT-d reports it).
module iommu_ctrl
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
#(
  parameter int unsigned AXI_DATA_W = 256,  // >= 64, power of two
  parameter int unsigned AXI_ID_W   = 4,
  parameter int unsigned HAW        = 48    // host address width: RTA bits >= HAW are ignored
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  // register page
  input  reg2hw_t                 reg2hw_i,
  output hw2reg_t                 hw2reg_o,

  // primary fault logging (from the translation pipeline / page request path)
  input  fault_rec_t              fault_i,
  input  logic                    fault_valid_i,
  output logic                    fault_ready_o,

  // status bits set by the invalidation queue and the page request queue
  input  iq_status_e              iq_set_i,
  input  logic                    iq_set_valid_i,
  output logic                    iq_set_ready_o,
  input  prq_status_e             prq_set_i,
  input  logic                    prq_set_valid_i,
  output logic                    prq_set_ready_o,

  // their other register writes, passed to hw2reg_o
  input  iqh_hw2reg_t             iq_iqh_i,
  input  iqercd_hw2reg_t          iq_iqercd_i,
  input  pqt_hw2reg_t             prq_pqt_i,

  // to the translation path
  output logic [51:0]             root_rta_o,  // root table address bits 63:12, latched by SRTP
  output logic [1:0]              root_ttm_o,  // RTADDR.TTM latched by SRTP
  output logic                    inv_all_o,       // one-cycle pulse: invalidate every DMA-remapping cache
  output logic                    msg_pending_o,   // an interrupt message waits or is in flight

  // AXI4 master, write channels: interrupt messages
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
  output logic                    m_axi_bready
);

  localparam int unsigned BUS_BYTES = AXI_DATA_W / 8;
  localparam int unsigned LANE_W    = $clog2(BUS_BYTES);
  localparam int unsigned IDX_W     = NUM_FRCD > 1 ? $clog2(NUM_FRCD) : 1;
  localparam cap_t        CAP       = cap_t'(CAP_VALUE);
  localparam logic [51:0] RTA_MASK  = (52'd1 << (HAW - 12)) - 52'd1;

  if (AXI_DATA_W < 64 || (AXI_DATA_W & (AXI_DATA_W - 1)) != 0) begin : g_bad_data_w
    $error("iommu_ctrl: AXI_DATA_W must be a power of two >= 64");
  end
  if (HAW < 32 || HAW > 52) begin : g_bad_haw
    $error("iommu_ctrl: HAW must be 32..52");
  end
  if (NUM_FRCD != 32'(CAP.nfr) + 1) begin : g_bad_nfr
    $error("iommu_ctrl: NUM_FRCD must be CAP.NFR + 1");
  end

  // -----------------------------------------------------------------------------------------------
  // Software side effects: a register written at the previous edge (its qe pulse is up now)
  // -----------------------------------------------------------------------------------------------
  logic frcd_written, gcmd_written, side_effect;
  logic te_change, te_off, srtp_cmd, qie_change, qie_off;

  always_comb begin
    frcd_written = 1'b0;
    for (int unsigned i = 0; i < NUM_FRCD; i++) frcd_written |= reg2hw_i.frcd[i].qe;
  end

  assign gcmd_written = reg2hw_i.gcmd.te_qe | reg2hw_i.gcmd.srtp_qe | reg2hw_i.gcmd.wbf_qe
                      | reg2hw_i.gcmd.qie_qe | reg2hw_i.gcmd.ire_qe | reg2hw_i.gcmd.sirtp_qe
                      | reg2hw_i.gcmd.cfi_qe;
  assign side_effect  = gcmd_written | frcd_written | reg2hw_i.ccmd.qe | reg2hw_i.iotlb_reg.qe
                      | reg2hw_i.fsts.qe | reg2hw_i.ics.qe | reg2hw_i.prs.qe
                      | reg2hw_i.fectl.qe | reg2hw_i.iectl.qe | reg2hw_i.pectl.qe;

  // GCMD (vtd §1.5): a command acts when its bit was written and differs from the status (TE, QIE)
  // or is 1 (the one-shot SRTP)
  assign te_change  = reg2hw_i.gcmd.te_qe && reg2hw_i.gcmd.te != reg2hw_i.gsts.tes;
  assign te_off     = te_change && !reg2hw_i.gcmd.te;
  assign srtp_cmd   = reg2hw_i.gcmd.srtp_qe && reg2hw_i.gcmd.srtp;
  assign qie_change = reg2hw_i.gcmd.qie_qe && reg2hw_i.gcmd.qie != reg2hw_i.gsts.qies;
  assign qie_off    = qie_change && !reg2hw_i.gcmd.qie;

  // -----------------------------------------------------------------------------------------------
  // Hardware events: one per cycle, none while a side effect is applied, none for a group whose
  // message slot is taken
  // -----------------------------------------------------------------------------------------------
  logic [EV_N-1:0] busy_q;  // the group has a message waiting or in flight
  logic            iq_fault_bit, fault_acc, iq_acc, prq_acc;

  assign iq_fault_bit    = iq_set_i != IQ_SET_IWC;
  assign fault_ready_o   = !side_effect && !busy_q[EV_FAULT];
  assign fault_acc       = fault_valid_i && fault_ready_o;
  assign iq_set_ready_o  = !side_effect && !busy_q[iq_fault_bit ? EV_FAULT : EV_INV] && !fault_acc;
  assign iq_acc          = iq_set_valid_i && iq_set_ready_o;
  assign prq_set_ready_o = !side_effect && !busy_q[EV_PRQ] && !fault_acc && !iq_acc;
  assign prq_acc         = prq_set_valid_i && prq_set_ready_o;

  // Primary fault logging (vtd §6.3)
  logic [IDX_W-1:0] idx_q, idx_next;
  logic             slot_full, rec_write, set_pfo, set_ppf, any_f;

  assign slot_full = reg2hw_i.frcd[idx_q].f;
  assign rec_write = fault_acc && !reg2hw_i.fsts.pfo && !slot_full;
  assign set_pfo   = fault_acc && !reg2hw_i.fsts.pfo && slot_full;
  assign set_ppf   = rec_write && !reg2hw_i.fsts.ppf;
  assign idx_next  = idx_q == IDX_W'(NUM_FRCD - 1) ? '0 : idx_q + IDX_W'(1);

  always_comb begin
    any_f = 1'b0;
    for (int unsigned i = 0; i < NUM_FRCD; i++) any_f |= reg2hw_i.frcd[i].f;
  end

  // Status bits of the other blocks (set only from 0: a status bit already set needs no write)
  logic set_iqe, set_ice, set_ite, set_iwc, set_ppr, set_pro;

  assign set_iqe = iq_acc && iq_set_i == IQ_SET_IQE && !reg2hw_i.fsts.iqe;
  assign set_ice = iq_acc && iq_set_i == IQ_SET_ICE && !reg2hw_i.fsts.ice;
  assign set_ite = iq_acc && iq_set_i == IQ_SET_ITE && !reg2hw_i.fsts.ite;
  assign set_iwc = iq_acc && iq_set_i == IQ_SET_IWC && !reg2hw_i.ics.iwc;
  assign set_ppr = prq_acc && prq_set_i == PRQ_SET_PPR && !reg2hw_i.prs.ppr;
  assign set_pro = prq_acc && prq_set_i == PRQ_SET_PRO && !reg2hw_i.prs.pro;

  // -----------------------------------------------------------------------------------------------
  // Interrupt events (vtd §1.12), one instance per group
  // -----------------------------------------------------------------------------------------------
  logic [EV_N-1:0]       ev_set;       // an accepted event sets a status bit of the group (step 1)
  logic [EV_N-1:0]       ev_pending;   // a status bit of the group is set (before this edge)
  logic [EV_N-1:0]       ev_left;      // ... after this edge's side effect (PPF recomputed)
  logic [EV_N-1:0]       ev_status_qe; // software wrote a status register of the group
  logic [EV_N-1:0]       ev_ctl_qe, ev_im, ev_ip;
  logic [EV_N-1:0][61:0] ev_addr;      // message address bits 63:2
  logic [EV_N-1:0][15:0] ev_data;
  logic [EV_N-1:0]       ev_ip_de, ev_ip_d, ev_send;
  logic                  ppf_left;

  assign ppf_left = frcd_written ? any_f : reg2hw_i.fsts.ppf;

  assign ev_set[EV_FAULT]       = set_pfo || set_ppf || (iq_acc && iq_fault_bit);
  assign ev_pending[EV_FAULT]   = reg2hw_i.fsts.ppf | reg2hw_i.fsts.pfo | reg2hw_i.fsts.iqe
                                | reg2hw_i.fsts.ice | reg2hw_i.fsts.ite;
  assign ev_left[EV_FAULT]      = ppf_left | reg2hw_i.fsts.pfo | reg2hw_i.fsts.iqe
                                | reg2hw_i.fsts.ice | reg2hw_i.fsts.ite;
  assign ev_status_qe[EV_FAULT] = reg2hw_i.fsts.qe | frcd_written;
  assign ev_ctl_qe[EV_FAULT]    = reg2hw_i.fectl.qe;
  assign ev_im[EV_FAULT]        = reg2hw_i.fectl.im;
  assign ev_ip[EV_FAULT]        = reg2hw_i.fectl.ip;
  assign ev_addr[EV_FAULT]      = {reg2hw_i.feuaddr.mua, reg2hw_i.feaddr.ma};
  assign ev_data[EV_FAULT]      = reg2hw_i.fedata.imd;

  assign ev_set[EV_INV]         = iq_acc && !iq_fault_bit;
  assign ev_pending[EV_INV]     = reg2hw_i.ics.iwc;
  assign ev_left[EV_INV]        = reg2hw_i.ics.iwc;
  assign ev_status_qe[EV_INV]   = reg2hw_i.ics.qe;
  assign ev_ctl_qe[EV_INV]      = reg2hw_i.iectl.qe;
  assign ev_im[EV_INV]          = reg2hw_i.iectl.im;
  assign ev_ip[EV_INV]          = reg2hw_i.iectl.ip;
  assign ev_addr[EV_INV]        = {reg2hw_i.ieuaddr.mua, reg2hw_i.ieaddr.ma};
  assign ev_data[EV_INV]        = reg2hw_i.iedata.imd;

  assign ev_set[EV_PRQ]         = prq_acc;
  assign ev_pending[EV_PRQ]     = reg2hw_i.prs.ppr | reg2hw_i.prs.pro;
  assign ev_left[EV_PRQ]        = reg2hw_i.prs.ppr | reg2hw_i.prs.pro;
  assign ev_status_qe[EV_PRQ]   = reg2hw_i.prs.qe;
  assign ev_ctl_qe[EV_PRQ]      = reg2hw_i.pectl.qe;
  assign ev_im[EV_PRQ]          = reg2hw_i.pectl.im;
  assign ev_ip[EV_PRQ]          = reg2hw_i.pectl.ip;
  assign ev_addr[EV_PRQ]        = {reg2hw_i.peuaddr.mua, reg2hw_i.peaddr.ma};
  assign ev_data[EV_PRQ]        = reg2hw_i.pedata.imd;

  for (genvar g = 0; g < EV_N; g++) begin : g_event
    logic raise, unmask, drop;
    assign raise  = ev_set[g] && !ev_pending[g];                            // steps 1-3
    assign unmask = ev_ctl_qe[g] && !ev_im[g] && ev_ip[g];                  // step 4
    assign drop   = ev_status_qe[g] && ev_ip[g] && !ev_left[g];             // step 5
    assign ev_send[g]  = (raise && !ev_im[g]) || unmask;
    assign ev_ip_de[g] = (raise && ev_im[g]) || unmask || drop;
    assign ev_ip_d[g]  = raise;  // raised with IM = 1: pending; unmask and drop clear it
  end

  // -----------------------------------------------------------------------------------------------
  // hw2reg: the page's only hardware writer
  // -----------------------------------------------------------------------------------------------
  always_comb begin
    hw2reg_o = '0;

    hw2reg_o.gsts.tes_de  = te_change;
    hw2reg_o.gsts.tes     = reg2hw_i.gcmd.te;
    hw2reg_o.gsts.rtps_de = srtp_cmd;
    hw2reg_o.gsts.rtps    = 1'b1;
    hw2reg_o.gsts.qies_de = qie_change;
    hw2reg_o.gsts.qies    = reg2hw_i.gcmd.qie;

    hw2reg_o.ccmd.icc_de       = reg2hw_i.ccmd.qe && reg2hw_i.ccmd.icc;
    hw2reg_o.ccmd.caig_de      = reg2hw_i.ccmd.qe && reg2hw_i.ccmd.icc;
    hw2reg_o.iotlb_reg.ivt_de  = reg2hw_i.iotlb_reg.qe && reg2hw_i.iotlb_reg.ivt;
    hw2reg_o.iotlb_reg.iaig_de = reg2hw_i.iotlb_reg.qe && reg2hw_i.iotlb_reg.ivt;

    hw2reg_o.fsts.fri_de = set_ppf;
    hw2reg_o.fsts.fri    = 8'(idx_q);
    hw2reg_o.fsts.ppf_de = set_ppf || frcd_written;
    hw2reg_o.fsts.ppf    = set_ppf || any_f;
    hw2reg_o.fsts.pfo_de = set_pfo;
    hw2reg_o.fsts.pfo    = 1'b1;
    hw2reg_o.fsts.iqe_de = set_iqe;
    hw2reg_o.fsts.iqe    = 1'b1;
    hw2reg_o.fsts.ice_de = set_ice;
    hw2reg_o.fsts.ice    = 1'b1;
    hw2reg_o.fsts.ite_de = set_ite;
    hw2reg_o.fsts.ite    = 1'b1;
    hw2reg_o.ics.iwc_de  = set_iwc;
    hw2reg_o.ics.iwc     = 1'b1;
    hw2reg_o.prs.ppr_de  = set_ppr;
    hw2reg_o.prs.ppr     = 1'b1;
    hw2reg_o.prs.pro_de  = set_pro;
    hw2reg_o.prs.pro     = 1'b1;

    hw2reg_o.fectl.ip_de = ev_ip_de[EV_FAULT];
    hw2reg_o.fectl.ip    = ev_ip_d[EV_FAULT];
    hw2reg_o.iectl.ip_de = ev_ip_de[EV_INV];
    hw2reg_o.iectl.ip    = ev_ip_d[EV_INV];
    hw2reg_o.pectl.ip_de = ev_ip_de[EV_PRQ];
    hw2reg_o.pectl.ip    = ev_ip_d[EV_PRQ];

    for (int unsigned i = 0; i < NUM_FRCD; i++) begin
      if (rec_write && idx_q == IDX_W'(i)) begin
        hw2reg_o.frcd[i] = '{
          f_de: 1'b1,    f:    1'b1,
          t1_de: 1'b1,   t1:   fault_i.t1,
          at_de: 1'b1,   at:   fault_i.at,
          pv_de: 1'b1,   pv:   fault_i.pp ? fault_i.pv : 20'd0,
          fr_de: 1'b1,   fr:   fault_i.fr,
          pp_de: 1'b1,   pp:   fault_i.pp,
          exe_de: 1'b1,  exe:  fault_i.exe,
          priv_de: 1'b1, priv: fault_i.priv,
          t2_de: 1'b1,   t2:   fault_i.t2,
          sid_de: 1'b1,  sid:  fault_i.sid,
          fi_de: 1'b1,   fi:   fault_i.fi
        };
      end
    end

    hw2reg_o.iqh    = qie_off ? iqh_hw2reg_t'{qh_de: 1'b1, qh: '0} : iq_iqh_i;
    hw2reg_o.iqercd = iq_iqercd_i;
    hw2reg_o.pqt    = prq_pqt_i;
  end

  // -----------------------------------------------------------------------------------------------
  // State: fault index, root table, invalidation pulse
  // -----------------------------------------------------------------------------------------------
  logic [51:0] root_rta_q;
  logic [1:0]  root_ttm_q;
  logic        inv_all_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      idx_q      <= '0;
      root_rta_q <= '0;
      root_ttm_q <= '0;
      inv_all_q  <= 1'b0;
    end else begin
      if (rec_write) begin
        idx_q <= idx_next;
      end else if (te_off && !reg2hw_i.gsts.ires) begin
        idx_q <= '0;  // vtd §6.3: the index resets when TES and IRES are both 0
      end
      if (srtp_cmd) begin
        root_rta_q <= reg2hw_i.rtaddr.rta & RTA_MASK;
        root_ttm_q <= reg2hw_i.rtaddr.ttm;
      end
      inv_all_q <= te_off || (srtp_cmd && CAP.esrtps);
    end
  end

  assign root_rta_o = root_rta_q;
  assign root_ttm_o = root_ttm_q;
  assign inv_all_o  = inv_all_q;

  // -----------------------------------------------------------------------------------------------
  // Interrupt messages: FIFO of EV_N entries in decision order, one AXI write at a time
  // -----------------------------------------------------------------------------------------------
  localparam int unsigned PTR_W = $clog2(EV_N);

  logic [EV_N-1:0][61:0] msg_addr_q;
  logic [EV_N-1:0][15:0] msg_data_q;
  logic [EV_N-1:0][1:0]  msg_grp_q;
  logic [PTR_W-1:0]      wr_q, rd_q;
  logic [PTR_W:0]        count_q;
  logic                  aw_done_q, w_done_q;
  logic                  enq, pop;
  logic [1:0]            enq_grp;
  logic [EV_N-1:0]       enq_mask, pop_mask;

  // at most one group decides a message per cycle (one side effect or one event per cycle)
  always_comb begin
    enq_grp = '0;
    for (int unsigned g = 0; g < EV_N; g++) begin
      if (ev_send[g]) enq_grp = 2'(g);
    end
  end
  assign enq      = |ev_send;
  assign enq_mask = ev_send;
  assign pop      = m_axi_bvalid && m_axi_bready;
  assign pop_mask = pop ? EV_N'(1) << msg_grp_q[rd_q] : '0;

  function automatic logic [PTR_W-1:0] ptr_inc(input logic [PTR_W-1:0] p);
    return p == PTR_W'(EV_N - 1) ? '0 : p + PTR_W'(1);
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      msg_addr_q <= '0;
      msg_data_q <= '0;
      msg_grp_q  <= '0;
      wr_q       <= '0;
      rd_q       <= '0;
      count_q    <= '0;
      aw_done_q  <= 1'b0;
      w_done_q   <= 1'b0;
      busy_q     <= '0;
    end else begin
      if (enq) begin
        msg_addr_q[wr_q] <= ev_addr[enq_grp];
        msg_data_q[wr_q] <= ev_data[enq_grp];
        msg_grp_q[wr_q]  <= enq_grp;
        wr_q             <= ptr_inc(wr_q);
      end
      if (pop) begin
        rd_q      <= ptr_inc(rd_q);
        aw_done_q <= 1'b0;
        w_done_q  <= 1'b0;
      end else begin
        if (m_axi_awvalid && m_axi_awready) aw_done_q <= 1'b1;
        if (m_axi_wvalid && m_axi_wready) w_done_q <= 1'b1;
      end
      count_q <= count_q + (PTR_W + 1)'(enq) - (PTR_W + 1)'(pop);
      busy_q  <= (busy_q & ~pop_mask) | enq_mask;
    end
  end

  logic             head_valid;
  logic [LANE_W-1:0] lane;

  assign head_valid    = count_q != '0;
  assign msg_pending_o = head_valid;
  assign lane       = {msg_addr_q[rd_q][LANE_W-3:0], 2'b00};

  assign m_axi_awid    = '0;
  assign m_axi_awaddr  = {msg_addr_q[rd_q], 2'b00};
  assign m_axi_awlen   = 8'd0;
  assign m_axi_awsize  = 3'd2;      // 4 bytes
  assign m_axi_awburst = 2'b01;     // INCR
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = 4'b0000;   // device, non-bufferable
  assign m_axi_awprot  = 3'b010;    // unprivileged, non-secure, data
  assign m_axi_awqos   = 4'd0;
  assign m_axi_awvalid = head_valid && !aw_done_q;
  assign m_axi_wdata   = {(AXI_DATA_W / 32){16'd0, msg_data_q[rd_q]}};
  assign m_axi_wstrb   = (AXI_DATA_W / 8)'(4'hF) << lane;
  assign m_axi_wlast   = 1'b1;
  assign m_axi_wvalid  = head_valid && !w_done_q;
  assign m_axi_bready  = head_valid && aw_done_q && w_done_q;

endmodule

`resetall
