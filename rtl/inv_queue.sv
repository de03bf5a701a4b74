`resetall
`timescale 1ns / 1ps
`default_nettype none

// Queued invalidation engine (vtd.md §1.10, §4.1-§4.5): fetches invalidation descriptors from the
// in-memory queue at IQA + IQH, validates them and carries them out. The reference is
// models.iommu_queues.InvalidationQueue (module docstring "Invalidation queue"); the RTL makes the
// same decisions, one descriptor at a time, in queue order.
//
// Fetch. While GSTS.QIES = 1, FSTS.IQE = FSTS.ITE = 0, IQH != IQT and no fencing wait (FN = 1) is
// pending, the engine checks the queue configuration (inv_queue_pkg::config_error: TTM 7, width 5,
// tail 1, tail alignment 6, in that order) and reads the descriptor at IQA + IQH: one AXI4 INCR burst
// of 32 bytes (IQA.DW = 1) or 16 bytes (DW = 0, zero-padded to 256 bits; legal only in legacy mode,
// RTADDR.TTM = 00 latched by SRTP, root_ttm_i), in beats of min(descriptor, bus) bytes.
//
// Decision ("commit"). The fetched descriptor is judged in the cycle it is committed, against the
// registers of that cycle, exactly as the model judges it when it fetches: configuration error, else
// RRESP SLVERR/DECERR on any beat (IQEI 2), else inv_queue_pkg::decode_error (3 / 4, legacy 3).
// * An error is committed by the iq_set IQE handshake with iommu_ctrl; IQERCD.IQEI is written at the
//   same edge (iq_iqercd_o). IQH stays on the descriptor; nothing is fetched until software clears IQE.
// * A valid descriptor is committed by writing IQH past it (iq_iqh_o, (IQH + 16 or 32) mod the queue
//   size) at the edge its action starts:
//   - cc_inv_dsc -> cc_inv_o (g, sid, fm: DID is ignored in scalable mode), pc_inv_dsc -> pc_inv_o
//     (g, did, pasid), each valid until ready (pasid_lookup applies them in the accepting cycle);
//   - iotlb_inv_dsc -> iotlb_inv_o kind G=01 INV_GLOBAL, 10 INV_DOMAIN, 11 INV_DOMAIN_PAGE;
//     p_iotlb_inv_dsc -> G=10 INV_PASID, 11 INV_PASID_PAGE; did, pasid, ADDR bits 56:12 and AM as in
//     the descriptor (the IOTLB holds canonical 57-bit input addresses, so ADDR bits 63:57 carry no
//     scope; for a non-canonical ADDR this invalidates more than the model, which is legal). IH is not
//     passed: this design has no paging-structure cache, the only thing IH spares (vtd §4.3). The next
//     descriptor is committed only after iotlb_inv_done (the IOTLB has applied it);
//   - dev_tlb_inv_dsc / p_dev_tlb_inv_dsc -> an ATS Invalidate Request (pcie.md §3.4) from IOMMU_RID
//     to SID with the lowest free ITag (0..31), body = {ADDR[63:12], S, GI}; type 8 carries a PASID
//     prefix (PMR = ER = 0) and GI, type 3 neither. MIP and PFSID are not used (ECAP.DIT = 0). No free
//     ITag: the descriptor waits, fetched, without being committed (the model leaves it at IQH);
//   - page_grp_resp_dsc -> a PRG Response (pcie.md §4.2) from IOMMU_RID to RID with RC and PRGI, a
//     PASID prefix (PMR = ER = 0) iff PP = 1; QW1[2] (3.x LPIG) is ignored;
//   - inv_wait_dsc -> a wait slot (below); WAIT_SLOTS full: it waits uncommitted like a descriptor
//     without a free ITag (a resource limit the model does not have; see the test notes);
//   - iec_inv_dsc / hpt_inv_dsc (only with ECAP.IR / HPTS, which the profile lacks): no effect.
//   TLPs go to tlp_tx in queue order: the engine waits until header and payload are handed over.
//   A descriptor whose fetch conditions no longer hold when it could be committed (QIES dropped,
//   IQE/ITE set, IQH = IQT) is dropped uncommitted; the next fetch reads it again.
//
// Device-TLB invalidations in flight (32 ITags): per ITag the target SID, a completion count and a
// deadline, TIMEOUT_CYCLES after issue on a cycle counter shared by all ITags. Received ATS
// Invalidate Completions (cpl_i: the parsed header; anything else routed here is consumed without
// effect) count for each ITag of the vector that is outstanding for the message's requester; an
// ITag is free again when its count reaches CC (0 means 8, pcie.md §3.5). A completion with an
// empty vector, not addressed to IOMMU_RID, or naming an ITag that is not outstanding for its
// requester sets FSTS.ICE (iq_set ICE; IQERCD.ICESID = its requester when ICE was 0); its valid
// ITags still count. An ITag whose deadline the counter reaches
// times out (the oldest outstanding one, as the deadlines are in issue order): at the iq_set ITE
// handshake the ITag is freed, IQERCD.ITESID = its SID when ITE was 0, every wait not yet completed is
// aborted (no status write, no IWC), and fetching stops until software clears ITE. The counter stands
// still while a timeout waits for its handshake (and no ITag is issued then), so deadlines stay
// distinct and ITags time out one at a time, in issue order, each at least TIMEOUT_CYCLES after issue.
//
// Waits (vtd §4.4). A committed wait records the ITags outstanding at that moment; it completes
// when all of them have completed (or timed out) and every earlier wait has completed. Completing:
// first the drain handshake: drain_req_o is held until drain_ack_i, which the translation pipeline
// gives once every request it received before drain_req_o rose has finished (its DMA done; vtd.md
// §4.3: invalidated translations must not be used after the next wait completes); with PD = 1 also
// wait for prq_drained_i = 1 (every page request accepted before now is visible in the PRQ), then
// with SW = 1 the 32-bit status write (AXI4, status address bits >= HAW dropped, 4
// strobes) up to its B response, then with IF = 1 the iq_set IWC handshake (iommu_ctrl runs the
// invalidation event and its MSI). A wait with FN = 1 holds back every later descriptor until it has
// completed all of that.
//
// iq_set requests, one per cycle, by priority: ITE, IQE, ICE, IWC. Simplifications that keep every
// state change at one clock edge (what lets the testbench replay the model edge by edge): no
// completion is taken while an ICE or ITE handshake is pending or in a cycle that commits a
// descriptor, and no descriptor is committed while a timeout is pending.
//
// idle_o: no fetch, command, TLP, wait completion (including its drain and a PD wait) or iq_set
// request in progress, and the engine parked: nothing to fetch, or the fetched descriptor waits for
// an ITag or a wait slot. Only a register write, a completion or a deadline moves it on.
//
// Latency: a descriptor's last R beat -> commit 1 cycle later -> its TLP header offered to tlp_tx the
// cycle after (prg_response_latency_cycles = 2, tb/cocotb_inv_queue.py iq_prg_response).
//
// AXI4 master (one ID, 0): descriptor reads and status writes use AxCACHE = 1111 (coherent, snooped
// memory, like pasid_lookup's table reads), AxPROT = 010. BRESP of a status write is not looked at:
// the spec defines no report for it (the model does not model it either).
module inv_queue
  import iommu_pkg::*;
  import iommu_reg_pkg::*;
  import iommu_ctrl_pkg::*;
  import dma_pkg::*;
  import pasid_lookup_pkg::*;
  import iotlb_pkg::*;
  import inv_queue_pkg::*;
#(
  parameter int unsigned AXI_DATA_W     = 256,       // >= 64, power of two
  parameter int unsigned AXI_ID_W       = 4,
  parameter int unsigned TLP_DATA_W     = 256,       // tlp_tx payload stream, >= 64
  parameter int unsigned HAW            = 48,        // host address width (status address bits >= HAW
                                                     // are dropped)
  parameter logic [15:0] IOMMU_RID      = 16'h0000,  // requester ID of the messages sent
  parameter int unsigned TIMEOUT_CYCLES = 1 << 24,   // device-TLB invalidation timeout, >= 1
  parameter int unsigned WAIT_SLOTS     = 4          // waits pending at once, >= 1
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  // register page and control block
  /* verilator lint_off UNUSEDSIGNAL */  // the queue reads only its own registers of the page
  input  reg2hw_t                 reg2hw_i,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic [1:0]              root_ttm_i,      // RTADDR.TTM latched by SRTP (iommu_ctrl root_ttm_o)
  output iq_status_e              iq_set_o,
  output logic                    iq_set_valid_o,
  input  logic                    iq_set_ready_i,
  output iqh_hw2reg_t             iq_iqh_o,
  output iqercd_hw2reg_t          iq_iqercd_o,

  // cache invalidations
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

  // TLPs to devices (a tlp_tx source)
  output tx_hdr_t                 tx_hdr_o,
  output logic                    tx_hdr_valid_o,
  input  logic                    tx_hdr_ready_i,
  output logic [TLP_DATA_W-1:0]   m_axis_tx_tdata,
  output logic [TLP_DATA_W/8-1:0] m_axis_tx_tkeep,
  output logic                    m_axis_tx_tvalid,
  output logic                    m_axis_tx_tlast,
  input  logic                    m_axis_tx_tready,

  // ATS Invalidate Completions (parsed headers)
  /* verilator lint_off UNUSEDSIGNAL */  // a message header uses few of the parsed fields
  input  tlp_hdr_t                cpl_i,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    cpl_valid_i,
  output logic                    cpl_ready_o,

  input  logic                    prq_drained_i,   // every page request accepted before now is in the PRQ
  output logic                    drain_req_o,     // a wait is completing: drain the requests received so far
  input  logic                    drain_ack_i,     // ... every request received before drain_req_o rose is done
  output logic                    idle_o,

  // AXI4 master
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
  /* verilator lint_off UNUSEDSIGNAL */  // one write in flight, ID 0; a refused status write has no report
  input  logic [AXI_ID_W-1:0]     m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  /* verilator lint_on UNUSEDSIGNAL */
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
  /* verilator lint_off UNUSEDSIGNAL */  // one read in flight, ID 0
  input  logic [AXI_ID_W-1:0]     m_axi_rid,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_rlast,
  input  logic [AXI_DATA_W-1:0]   m_axi_rdata,
  /* verilator lint_off UNUSEDSIGNAL */  // RRESP[1] = SLVERR/DECERR; bit 0 only tells OKAY from EXOKAY
  input  logic [1:0]              m_axi_rresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_rvalid,
  output logic                    m_axi_rready
);

  localparam int unsigned BUS_BYTES = AXI_DATA_W / 8;
  localparam int unsigned LANE_W    = $clog2(BUS_BYTES);
  localparam int unsigned N_ITAGS   = 32;                          // pcie.md §3.4: 5-bit ITag
  localparam int unsigned TO_W      = $clog2(TIMEOUT_CYCLES + 1);
  localparam ecap_t       ECAP      = ecap_t'(ECAP_VALUE);
  localparam iq_caps_t    CAPS      = '{dt: ECAP.dt, prs: ECAP.prs, ir: ECAP.ir, hpts: ECAP.hpts,
                                        pds: ECAP.pds};
  localparam logic [61:0] STATUS_MASK = (62'd1 << (HAW - 2)) - 62'd1;  // address bits 63:2 below HAW

  if (AXI_DATA_W < 64 || (AXI_DATA_W & (AXI_DATA_W - 1)) != 0) begin : g_bad_data_w
    $error("inv_queue: AXI_DATA_W must be a power of two >= 64");
  end
  if (TLP_DATA_W < 64) begin : g_bad_tlp_w
    $error("inv_queue: TLP_DATA_W must be >= 64 (the 8-byte invalidation body is one beat)");
  end
  if (TIMEOUT_CYCLES < 1 || WAIT_SLOTS < 1) begin : g_bad_params
    $error("inv_queue: TIMEOUT_CYCLES and WAIT_SLOTS must be >= 1");
  end
  if (HAW < 32 || HAW > 52) begin : g_bad_haw
    $error("inv_queue: HAW must be 32..52");
  end

  // -----------------------------------------------------------------------------------------------
  // Registers the engine reads
  // -----------------------------------------------------------------------------------------------
  logic        qies, iqe, ite, dw;
  logic [2:0]  qs;
  logic [14:0] qh, qt, qh_next, units_mask;
  logic [3:0]  cfg_err;

  assign qies       = reg2hw_i.gsts.qies;
  assign iqe        = reg2hw_i.fsts.iqe;
  assign ite        = reg2hw_i.fsts.ite;
  assign dw         = reg2hw_i.iqa.dw;
  assign qs         = reg2hw_i.iqa.qs;
  assign qh         = reg2hw_i.iqh.qh;
  assign qt         = reg2hw_i.iqt.qt;
  assign units_mask = 15'((16'd256 << qs) - 16'd1);        // the queue in 16-byte units, minus 1
  assign qh_next    = (qh + (dw ? 15'd2 : 15'd1)) & units_mask;
  assign cfg_err    = config_error(root_ttm_i, dw, qs, qt, ECAP.smts, ECAP.adms);

  // -----------------------------------------------------------------------------------------------
  // Declarations shared by the units below
  // -----------------------------------------------------------------------------------------------
  typedef enum logic [2:0] {
    S_IDLE,        // may start a fetch (or report a configuration error)
    S_READ,        // descriptor read in flight
    S_EXEC,        // descriptor fetched: commit it, report its error, or wait for a resource
    S_CC,          // offering cc_inv_o
    S_PC,          // offering pc_inv_o
    S_IOTLB,       // offering iotlb_inv_o
    S_IOTLB_DONE,  // waiting for iotlb_inv_done
    S_TX           // handing a TLP to tlp_tx
  } state_e;

  typedef enum logic [2:0] {
    WS_IDLE,       // no wait completing
    WS_DRAIN,      // waiting for drain_ack_i (and with PD for prq_drained_i)
    WS_WRITE,      // status write: AW / W
    WS_B,          // status write: B
    WS_IWC         // asking iommu_ctrl for ICS.IWC
  } wstate_e;

  state_e                       state_q;
  wstate_e                      ws_q;
  logic [255:0]                 desc_q;
  logic                         bus_err_q;
  logic [N_ITAGS-1:0]           out_q;       // ITag outstanding
  logic [N_ITAGS-1:0][15:0]     sid_q;       // ... its target
  logic [N_ITAGS-1:0][2:0]      cnt_q;       // ... completions received
  logic [N_ITAGS-1:0][TO_W-1:0] due_q;       // ... its deadline on now_q
  logic [TO_W-1:0]              now_q;       // cycle counter (modulo 2^TO_W > TIMEOUT_CYCLES)
  logic [WAIT_SLOTS-1:0]        wv_q;        // wait slot valid (slot 0 = oldest)
  iq_wait_t [WAIT_SLOTS-1:0]    w_q;
  logic [WAIT_SLOTS-1:0][31:0]  wm_q;        // ... the ITags it still waits for
  iq_wait_t                     ws_cur_q;    // the wait completing
  logic                         ice_pending_q;
  logic [15:0]                  ice_sid_q;

  logic                         fn_block, can_run, commit_ok, to_pending;
  logic [4:0]                   to_idx;
  logic                         fire_ite, fire_iqe, fire_ice, fire_iwc;

  // -----------------------------------------------------------------------------------------------
  // Timeouts: the expired ITag (at most one: deadlines are set one per cycle, each within
  // TIMEOUT_CYCLES ahead, and now_q stands still while one has expired)
  // -----------------------------------------------------------------------------------------------
  always_comb begin
    to_pending = 1'b0;
    to_idx     = '0;
    for (int i = N_ITAGS - 1; i >= 0; i--) begin
      if (out_q[i] && due_q[i] == now_q) begin
        to_pending = 1'b1;
        to_idx     = 5'(i);
      end
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Fetch gating (models.iommu_queues.InvalidationQueue.process)
  // -----------------------------------------------------------------------------------------------
  always_comb begin
    fn_block = ws_q != WS_IDLE && ws_cur_q.fn;
    for (int i = 0; i < WAIT_SLOTS; i++) fn_block |= wv_q[i] && w_q[i].fn;
  end

  assign can_run   = qies && !iqe && !ite && !fn_block && qh != qt;
  assign commit_ok = can_run && !to_pending;

  // -----------------------------------------------------------------------------------------------
  // Descriptor decode (S_EXEC)
  // -----------------------------------------------------------------------------------------------
  logic [6:0]  dtype;
  logic [3:0]  exec_err, eng_err;
  logic        eng_err_req, need_tag, need_slot, tag_free, hold, exec_commit, start_fetch;
  logic [4:0]  new_tag;

  assign dtype    = {desc_q[11:9], desc_q[3:0]};
  assign exec_err = cfg_err != IQEI_NONE ? cfg_err
                  : bus_err_q            ? IQEI_FETCH_ERROR
                  :                        decode_error(desc_q, CAPS, root_ttm_i == TTM_LEGACY);

  always_comb begin
    tag_free = 1'b0;
    new_tag  = '0;
    for (int i = N_ITAGS - 1; i >= 0; i--) begin  // the lowest free ITag
      if (!out_q[i]) begin
        tag_free = 1'b1;
        new_tag  = 5'(i);
      end
    end
  end

  assign need_tag    = dtype == DT_DEV_TLB || dtype == DT_P_DEV_TLB;
  assign need_slot   = dtype == DT_INV_WAIT;
  assign hold        = (need_tag && !tag_free) || (need_slot && wv_q[WAIT_SLOTS-1]);
  assign exec_commit = state_q == S_EXEC && commit_ok && exec_err == IQEI_NONE && !hold;
  assign start_fetch = state_q == S_IDLE && commit_ok && cfg_err == IQEI_NONE;
  assign eng_err_req = commit_ok && ((state_q == S_IDLE && cfg_err != IQEI_NONE)
                                     || (state_q == S_EXEC && exec_err != IQEI_NONE));
  assign eng_err     = state_q == S_IDLE ? cfg_err : exec_err;

  // -----------------------------------------------------------------------------------------------
  // iq_set: one request per cycle, ITE > IQE > ICE > IWC
  // -----------------------------------------------------------------------------------------------
  always_comb begin
    iq_set_valid_o = 1'b1;
    if (to_pending)               iq_set_o = IQ_SET_ITE;
    else if (eng_err_req)         iq_set_o = IQ_SET_IQE;
    else if (ice_pending_q)       iq_set_o = IQ_SET_ICE;
    else begin
      iq_set_o       = IQ_SET_IWC;
      iq_set_valid_o = ws_q == WS_IWC;
    end
  end

  assign fire_ite = iq_set_valid_o && iq_set_ready_i && iq_set_o == IQ_SET_ITE;
  assign fire_iqe = iq_set_valid_o && iq_set_ready_i && iq_set_o == IQ_SET_IQE;
  assign fire_ice = iq_set_valid_o && iq_set_ready_i && iq_set_o == IQ_SET_ICE;
  assign fire_iwc = iq_set_valid_o && iq_set_ready_i && iq_set_o == IQ_SET_IWC;

  always_comb begin
    iq_iqercd_o           = '0;
    iq_iqercd_o.iqei_de   = fire_iqe;
    iq_iqercd_o.iqei      = eng_err;
    iq_iqercd_o.itesid_de = fire_ite && !ite;            // the first timeout's SID is kept
    iq_iqercd_o.itesid    = sid_q[to_idx];
    iq_iqercd_o.icesid_de = fire_ice && !reg2hw_i.fsts.ice;
    iq_iqercd_o.icesid    = ice_sid_q;
  end

  assign iq_iqh_o = '{qh_de: exec_commit, qh: qh_next};

  // -----------------------------------------------------------------------------------------------
  // Descriptor read
  // -----------------------------------------------------------------------------------------------
  logic              ar_valid_q;
  logic              fetch_dw_q;          // the descriptor width being read (IQA.DW at the fetch)
  logic [63:0]       ar_addr_q;
  logic [7:0]        ar_len;
  logic [2:0]        ar_size;
  logic [1:0]        beat_q;
  logic              r_fire;
  logic [255:0]      desc_d;

  // beats of min(descriptor, bus) bytes: 32 B (DW=1) or 16 B (DW=0)
  always_comb begin
    if (BUS_BYTES >= 32) begin
      ar_size = fetch_dw_q ? 3'd5 : 3'd4;
      ar_len  = 8'd0;
    end else if (BUS_BYTES == 16) begin
      ar_size = 3'd4;
      ar_len  = fetch_dw_q ? 8'd1 : 8'd0;
    end else begin
      ar_size = 3'd3;
      ar_len  = fetch_dw_q ? 8'd3 : 8'd1;
    end
  end

  assign r_fire = m_axi_rvalid && m_axi_rready;

  if (BUS_BYTES >= 32) begin : g_wide_read
    logic [LANE_W-1:0] lane;
    logic [255:0]      beat;
    assign lane   = ar_addr_q[LANE_W-1:0];
    assign beat   = 256'(m_axi_rdata >> {lane, 3'b000});
    assign desc_d = fetch_dw_q ? beat : {128'd0, beat[127:0]};
  end else begin : g_narrow_read
    always_comb begin
      desc_d = desc_q;
      desc_d[int'(beat_q) * AXI_DATA_W +: AXI_DATA_W] = m_axi_rdata;
    end
  end

  assign m_axi_arid    = '0;
  assign m_axi_araddr  = ar_addr_q;
  assign m_axi_arlen   = ar_len;
  assign m_axi_arsize  = ar_size;
  assign m_axi_arburst = 2'b01;      // INCR
  assign m_axi_arlock  = 1'b0;
  assign m_axi_arcache = 4'b1111;    // coherent (snooped) memory
  assign m_axi_arprot  = 3'b010;     // data, non-secure, unprivileged
  assign m_axi_arqos   = 4'd0;
  assign m_axi_arvalid = ar_valid_q;
  assign m_axi_rready  = state_q == S_READ;

  // -----------------------------------------------------------------------------------------------
  // Completions
  // -----------------------------------------------------------------------------------------------
  logic               cpl_fire, cpl_ok, cpl_bad;
  logic [31:0]        cpl_vec;
  logic [3:0]         cpl_need;
  logic [N_ITAGS-1:0] cpl_hit, rel_cpl, rel;

  assign cpl_ready_o = !ice_pending_q && !to_pending && !exec_commit;
  assign cpl_fire    = cpl_valid_i && cpl_ready_o;
  // a well-formed ATS Invalidate Completion (Msg, ID-routed, code 0x02, no prefix)
  assign cpl_ok      = cpl_i.err == TLP_OK && cpl_i.kind == TLP_MSG && cpl_i.fmt == FMT_4DW_NODATA
                    && cpl_i.tlp_type == TYPE_MSG_BY_ID && cpl_i.msg_code == MSG_ATS_INV_CPL
                    && !cpl_i.pasid_valid && !cpl_i.other_e2e;
  assign cpl_vec     = cpl_i.dw3;                                  // ITag vector, bytes 12-15
  assign cpl_need    = cpl_i.dw2[2:0] == 3'd0 ? 4'd8 : {1'b0, cpl_i.dw2[2:0]};  // CC, byte 11 [2:0]

  always_comb begin
    for (int i = 0; i < N_ITAGS; i++) begin
      cpl_hit[i] = cpl_vec[i] && out_q[i] && sid_q[i] == cpl_i.requester_id;
      rel_cpl[i] = cpl_fire && cpl_ok && cpl_hit[i] && {1'b0, cnt_q[i]} + 4'd1 >= cpl_need;
    end
  end

  assign cpl_bad = cpl_vec == '0 || cpl_i.dw2[31:16] != IOMMU_RID || (cpl_vec & ~cpl_hit) != '0;
  assign rel     = rel_cpl | (fire_ite ? N_ITAGS'(1) << to_idx : '0);

  // -----------------------------------------------------------------------------------------------
  // Waits: slots in order (slot 0 oldest), the completing one in ws_cur_q
  // -----------------------------------------------------------------------------------------------
  // A wait records the ITags outstanding when it is committed. Masks only lose bits, and a later
  // wait's mask holds every bit of an earlier one's, so the waits with an empty mask are always the
  // oldest ones: the slots stay a prefix when a timeout drops the others.
  logic                        w_push, w_pop;
  iq_wait_t                    w_new;
  logic [WAIT_SLOTS-1:0]       wv_d;
  iq_wait_t [WAIT_SLOTS-1:0]   w_d;
  logic [WAIT_SLOTS-1:0][31:0] wm_d;

  assign w_push = exec_commit && dtype == DT_INV_WAIT;
  assign w_pop  = wv_q[0] && wm_q[0] == '0 && ws_q == WS_IDLE;
  assign w_new  = '{if_: desc_q[4], sw: desc_q[5], fn: desc_q[6], pd: desc_q[7], addr: desc_q[127:66],
                    data: desc_q[63:32]};

  always_comb begin
    logic placed;
    w_d  = w_q;
    wv_d = wv_q;
    for (int i = 0; i < WAIT_SLOTS; i++) begin
      wm_d[i] = wm_q[i] & ~rel;
      // a timeout aborts every wait still waiting for an invalidation; those that are not are
      // complete already (in the model they completed when their last invalidation did)
      if (fire_ite && wm_q[i] != '0) wv_d[i] = 1'b0;
    end
    if (w_pop) begin
      for (int i = 0; i < WAIT_SLOTS - 1; i++) begin
        w_d[i]  = w_d[i + 1];
        wm_d[i] = wm_d[i + 1];
        wv_d[i] = wv_d[i + 1];
      end
      wv_d[WAIT_SLOTS-1] = 1'b0;
    end
    placed = 1'b0;
    for (int i = 0; i < WAIT_SLOTS; i++) begin
      if (w_push && !placed && !wv_d[i]) begin
        w_d[i]  = w_new;
        wm_d[i] = out_q;
        wv_d[i] = 1'b1;
        placed  = 1'b1;
      end
    end
  end

  // Completion of the oldest wait: drain (and PD), status write, IWC
  assign drain_req_o = ws_q == WS_DRAIN;

  logic aw_pend_q, w_pend_q;
  logic aw_fire, w_fire;

  assign aw_fire = m_axi_awvalid && m_axi_awready;
  assign w_fire  = m_axi_wvalid && m_axi_wready;

  assign m_axi_awid    = '0;
  assign m_axi_awaddr  = {ws_cur_q.addr & STATUS_MASK, 2'b00};
  assign m_axi_awlen   = 8'd0;
  assign m_axi_awsize  = 3'd2;       // 4 bytes
  assign m_axi_awburst = 2'b01;      // INCR
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = 4'b1111;    // coherent (snooped) memory
  assign m_axi_awprot  = 3'b010;
  assign m_axi_awqos   = 4'd0;
  assign m_axi_awvalid = aw_pend_q;
  assign m_axi_wdata   = {(AXI_DATA_W / 32){ws_cur_q.data}};
  assign m_axi_wstrb   = (AXI_DATA_W / 8)'(4'hF) << {ws_cur_q.addr[LANE_W-3:0], 2'b00};
  assign m_axi_wlast   = 1'b1;
  assign m_axi_wvalid  = w_pend_q;
  assign m_axi_bready  = ws_q == WS_B;

  // -----------------------------------------------------------------------------------------------
  // TLPs
  // -----------------------------------------------------------------------------------------------
  // the body is big-endian (pcie.md §3.4): its byte 0 is bits 63:56
  function automatic logic [63:0] byte_swap(input logic [63:0] x);
    for (int i = 0; i < 8; i++) byte_swap[8 * i +: 8] = x[56 - 8 * i +: 8];
  endfunction

  tx_hdr_t     tx_hdr_q, tx_new;
  logic        tx_hv_q, tx_dv_q, tx_data_new;
  logic [63:0] tx_body_q, tx_body_new;

  always_comb begin
    logic        pfx;
    logic [31:0] dw0, dw1, dw2, pfx_dw;
    logic [19:0] pasid;
    if (dtype == DT_PGRP_RESP) begin      // PRG Response (pcie.md §4.2): Msg, no data
      pfx         = desc_q[4];                                   // PP
      dw0         = {FMT_4DW_NODATA, TYPE_MSG_BY_ID, 24'd0};
      dw1         = {IOMMU_RID, 8'h00, MSG_PRG_RESP};
      dw2         = {desc_q[31:16], desc_q[15:12], 3'b000, desc_q[75:67]};  // RID, RC, PRGI
      tx_data_new = 1'b0;
      tx_body_new = '0;
    end else begin                        // ATS Invalidate Request (pcie.md §3.4): MsgD, 2 DW
      pfx         = dtype == DT_P_DEV_TLB;
      dw0         = {FMT_4DW_DATA, TYPE_MSG_BY_ID, 14'd0, 10'd2};
      dw1         = {IOMMU_RID, 3'b000, new_tag, MSG_ATS_INV_REQ};
      dw2         = {pfx ? desc_q[31:16] : desc_q[47:32], 16'd0};          // SID
      tx_data_new = 1'b1;
      // body: ADDR[63:12], S, GI (type 8: S = QW1[11], GI = QW1[0]; type 3: S = QW1[0])
      tx_body_new = {desc_q[127:76], pfx ? desc_q[75] : desc_q[64], 10'd0, pfx && desc_q[64]};
    end
    pasid  = desc_q[51:32];
    pfx_dw = {FMT_PREFIX, 1'b1, E2E_PASID, 1'b0 /* PMR */, 1'b0 /* ER */, 2'b00, pasid};
    tx_new = '0;
    tx_new.has_data = tx_data_new;
    if (pfx) begin
      tx_new.n_dw        = 4'd5;
      tx_new.dws[159:0]  = {32'd0, dw2, dw1, dw0, pfx_dw};
    end else begin
      tx_new.n_dw        = 4'd4;
      tx_new.dws[127:0]  = {32'd0, dw2, dw1, dw0};
    end
  end

  assign tx_hdr_o         = tx_hdr_q;
  assign tx_hdr_valid_o   = tx_hv_q;
  assign m_axis_tx_tdata  = TLP_DATA_W'(byte_swap(tx_body_q));   // body byte 0 (bits 63:56) in lane 0
  assign m_axis_tx_tkeep  = (TLP_DATA_W / 8)'(8'hFF);
  assign m_axis_tx_tvalid = tx_dv_q;
  assign m_axis_tx_tlast  = 1'b1;

  // -----------------------------------------------------------------------------------------------
  // Cache invalidation commands
  // -----------------------------------------------------------------------------------------------
  pl_cc_inv_t cc_q;
  pl_pc_inv_t pc_q;
  iotlb_inv_t iotlb_q, iotlb_new;

  always_comb begin
    iotlb_new       = '0;
    iotlb_new.did   = desc_q[31:16];
    iotlb_new.addr  = desc_q[120:76];          // ADDR bits 56:12
    iotlb_new.am    = desc_q[69:64];
    if (dtype == DT_P_IOTLB) begin
      iotlb_new.pasid = desc_q[51:32];
      iotlb_new.kind  = desc_q[5:4] == 2'b11 ? INV_PASID_PAGE : INV_PASID;
    end else begin
      unique case (desc_q[5:4])
        2'b10:   iotlb_new.kind = INV_DOMAIN;
        2'b11:   iotlb_new.kind = INV_DOMAIN_PAGE;
        default: iotlb_new.kind = INV_GLOBAL;
      endcase
    end
  end

  assign cc_inv_o               = cc_q;
  assign cc_inv_valid_o         = state_q == S_CC;
  assign pc_inv_o               = pc_q;
  assign pc_inv_valid_o         = state_q == S_PC;
  assign iotlb_inv_o            = iotlb_q;
  assign iotlb_inv_valid_o      = state_q == S_IOTLB;
  assign iotlb_inv_done_ready_o = state_q == S_IOTLB_DONE;

  // -----------------------------------------------------------------------------------------------
  // State
  // -----------------------------------------------------------------------------------------------
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q    <= S_IDLE;
      desc_q     <= '0;
      bus_err_q  <= 1'b0;
      ar_valid_q <= 1'b0;
      ar_addr_q  <= '0;
      fetch_dw_q <= 1'b0;
      beat_q     <= '0;
      cc_q       <= '0;
      pc_q       <= '0;
      iotlb_q    <= '0;
      tx_hdr_q   <= '0;
      tx_hv_q    <= 1'b0;
      tx_dv_q    <= 1'b0;
      tx_body_q  <= '0;
    end else begin
      unique case (state_q)
        S_IDLE: if (start_fetch) begin
          ar_valid_q <= 1'b1;
          ar_addr_q  <= {reg2hw_i.iqa.iqa, 12'd0} + {45'd0, qh, 4'd0};
          fetch_dw_q <= dw;
          beat_q     <= '0;
          bus_err_q  <= 1'b0;
          desc_q     <= '0;
          state_q    <= S_READ;
        end
        S_READ: begin
          if (m_axi_arready) ar_valid_q <= 1'b0;
          if (r_fire) begin
            desc_q    <= desc_d;
            beat_q    <= beat_q + 2'd1;
            bus_err_q <= bus_err_q | m_axi_rresp[1];             // SLVERR / DECERR
            if (m_axi_rlast) state_q <= S_EXEC;
          end
        end
        S_EXEC: begin
          if (!can_run || fire_iqe) begin
            state_q <= S_IDLE;                                   // dropped uncommitted, or reported
          end else if (exec_commit) begin
            unique case (dtype)
              DT_CC: begin
                cc_q    <= '{g: desc_q[5:4], sid: desc_q[47:32], fm: desc_q[49:48]};
                state_q <= S_CC;
              end
              DT_PC: begin
                pc_q    <= '{g: desc_q[5:4], did: desc_q[31:16], pasid: desc_q[51:32]};
                state_q <= S_PC;
              end
              DT_IOTLB, DT_P_IOTLB: begin
                iotlb_q <= iotlb_new;
                state_q <= S_IOTLB;
              end
              DT_DEV_TLB, DT_P_DEV_TLB, DT_PGRP_RESP: begin
                tx_hdr_q  <= tx_new;
                tx_hv_q   <= 1'b1;
                tx_dv_q   <= tx_data_new;
                tx_body_q <= tx_body_new;
                state_q   <= S_TX;
              end
              default: state_q <= S_IDLE;                        // wait (slotted), IEC, HPT
            endcase
          end
        end
        S_CC:         if (cc_inv_ready_i) state_q <= S_IDLE;
        S_PC:         if (pc_inv_ready_i) state_q <= S_IDLE;
        S_IOTLB:      if (iotlb_inv_ready_i) state_q <= S_IOTLB_DONE;
        S_IOTLB_DONE: if (iotlb_inv_done_valid_i) state_q <= S_IDLE;
        S_TX: begin
          if (tx_hdr_ready_i) tx_hv_q <= 1'b0;
          if (m_axis_tx_tready) tx_dv_q <= 1'b0;
          if ((!tx_hv_q || tx_hdr_ready_i) && (!tx_dv_q || m_axis_tx_tready)) state_q <= S_IDLE;
        end
        default: state_q <= S_IDLE;
      endcase
    end
  end

  // ITags
  logic alloc;
  assign alloc = exec_commit && need_tag;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      out_q         <= '0;
      sid_q         <= '0;
      cnt_q         <= '0;
      due_q         <= '0;
      now_q         <= '0;
      ice_pending_q <= 1'b0;
      ice_sid_q     <= '0;
    end else begin
      for (int i = 0; i < N_ITAGS; i++) begin
        if (alloc && new_tag == 5'(i)) begin
          out_q[i]   <= 1'b1;
          sid_q[i]   <= dtype == DT_P_DEV_TLB ? desc_q[31:16] : desc_q[47:32];
          cnt_q[i]   <= '0;
          due_q[i]   <= now_q + TO_W'(TIMEOUT_CYCLES);
        end else begin
          if (rel[i]) out_q[i] <= 1'b0;
          if (cpl_fire && cpl_ok && cpl_hit[i]) cnt_q[i] <= cnt_q[i] + 3'd1;
        end
      end
      if (!to_pending) now_q <= now_q + TO_W'(1);
      if (fire_ice) ice_pending_q <= 1'b0;
      if (cpl_fire && cpl_ok && cpl_bad) begin
        ice_pending_q <= 1'b1;
        ice_sid_q     <= cpl_i.requester_id;
      end
    end
  end

  // Waits
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wv_q      <= '0;
      w_q       <= '0;
      wm_q      <= '0;
      ws_q      <= WS_IDLE;
      ws_cur_q  <= '0;
      aw_pend_q <= 1'b0;
      w_pend_q  <= 1'b0;
    end else begin
      wv_q <= wv_d;
      w_q  <= w_d;
      wm_q <= wm_d;
      unique case (ws_q)
        WS_IDLE: if (w_pop) begin
          ws_cur_q <= w_q[0];
          ws_q     <= WS_DRAIN;
        end
        WS_DRAIN: if (drain_ack_i && (!ws_cur_q.pd || prq_drained_i)) begin
          if (ws_cur_q.sw) begin
            aw_pend_q <= 1'b1;
            w_pend_q  <= 1'b1;
            ws_q      <= WS_WRITE;
          end else begin
            ws_q <= ws_cur_q.if_ ? WS_IWC : WS_IDLE;
          end
        end
        WS_WRITE: begin
          if (aw_fire) aw_pend_q <= 1'b0;
          if (w_fire) w_pend_q <= 1'b0;
          if ((!aw_pend_q || aw_fire) && (!w_pend_q || w_fire)) ws_q <= WS_B;
        end
        WS_B:    if (m_axi_bvalid) ws_q <= ws_cur_q.if_ ? WS_IWC : WS_IDLE;
        WS_IWC:  if (fire_iwc) ws_q <= WS_IDLE;
        default: ws_q <= WS_IDLE;
      endcase
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Idle: parked with nothing in flight
  // -----------------------------------------------------------------------------------------------
  logic parked;
  assign parked = (state_q == S_IDLE && !commit_ok)
               || (state_q == S_EXEC && commit_ok && exec_err == IQEI_NONE && hold);
  assign idle_o = parked && !ice_pending_q && ws_q == WS_IDLE && !w_pop && !to_pending;

endmodule

`resetall
