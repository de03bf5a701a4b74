`resetall
`timescale 1ns / 1ps
`default_nettype none

// Page request queue writer (vtd.md §1.11, §4.7, §5; golden model: models/iommu_queues.py
// PageRequestQueue, module docstring "Page request queue" steps 1-5).
//
// Input: one received PRI Page Request (pcie.md §4.1) as tlp_rx_parser decoded it (req_hdr_i: kind
// TLP_MSG, msg_code MSG_PAGE_REQ; the PASID prefix in pasid_valid/pasid/pmr/er; header bytes 8-15 in
// dw2/dw3) together with the context/PASID lookup the top did for it (req_lkup_i, prq_pkg::prq_lookup_t,
// from pasid_lookup kind PL_PAGE_REQ). One request is handled at a time, in this order (the model's):
//
//   1. disabled (GSTS.TES = 0): nothing recorded or written.
//   2. lookup fault: the fault goes to iommu_ctrl (fault_o: type page request {T1,T2} = 01, AT 00,
//      PRIV = PMR, EXE = ER, FI = the page) unless FPD suppresses it (fault_info_pkg::fault_qualified).
//   3. PRS.PRO already set: nothing written, no event.
//   4. full, (PQT + 1) mod 2^(PQS+7) == PQH: PRS.PRO is set through iommu_ctrl (prq_set_o = PRO).
//   5. otherwise: the implicit invalidation of vtd §4.7 (inv_o, then wait for inv_done), the 32-byte
//      descriptor (models.vtd.PageRequestDescriptor) at PQA + PQT as one AXI burst, and after its B
//      response (the descriptor is visible) PQT = (PQT + 1) mod size and PRS.PPR, at one clock edge:
//      pqt_o carries the write in exactly the cycle of the prq_set_o = PPR handshake, so software never
//      sees PPR (or its MSI, which iommu_ctrl sends) before the new PQT.
//   Cases 1-4 answer a request that needs a response (L = 1 and not a stop marker: a stop marker is a
//   request with a PASID and L = 1, R = W = 0) with an automatic PRG Response (Invalid Request for 1
//   and 2, Success for 3 and 4), and drop any other. The PRG Response goes to tlp_tx (tx_hdr_o): Msg
//   routed by ID from IOMMU_RID to the requester, with the request's PRG index, and a PASID prefix
//   (PMR = ER = 0) exactly when the request had one.
//
// Where each decision takes effect (what a scoreboard replays the model at): a request's outcome is
// decided at one clock edge, reported by outcome_valid_o / outcome_o, which rise at that edge:
// * queued (5): the edge of the PPR handshake (PQT and PPR land there); the queue was found neither
//   overflowing nor full when the request was decided, and only this block sets PRO or moves PQT, so
//   with software that only advances PQH over descriptors it has read the model finds the same at the
//   PPR edge. The descriptor address and the new PQT are taken when the request is decided.
// * full (4): the edge of the PRO handshake. While iommu_ctrl is not ready, full is evaluated again
//   every cycle: if software frees a slot first, prq_set_valid_o drops again without a handshake and the
//   request is queued instead (iommu_ctrl acts on handshakes only). So the queue state the decision
//   reads is always the state at the edge it takes effect.
// * recorded fault (2): the edge of the fault_o handshake (iommu_ctrl logs it there).
// * everything else (1, 2 with FPD, 3): the edge that ends the cycle of the decision; for 3 that cycle
//   read PRS.PRO.
// The automatic response is handed to tlp_tx after its outcome edge.
//
// Latency (no back-pressure, tb/cocotb_prq.py prq_latency): request accepted -> descriptor AW 4 cycles
// (decide, invalidation command, its completion), then the memory's write response; B -> PQT/PPR 1
// cycle; accepted -> automatic response header to tlp_tx 2 cycles.
//
// Integration: inv_* goes to the IOTLB (shared with the invalidation queue's commands: the top
// arbitrates), and like any invalidation it must also stop fills of walks that started before it (the
// top's invalidation generation), or a walk in flight could put back the entry it removed.
//
// AXI4 master, write channels only (the top gives it a row of its table-port axi_mux): one descriptor
// in flight, AWID 0, INCR, AWSIZE = min(bus, 32 bytes), 32 / min(bus, 32) beats; on a bus wider than
// 32 bytes the descriptor is repeated on every 32-byte lane group and WSTRB selects the addressed one.
// AWCACHE = 0010 (normal, non-bufferable: B comes from the memory itself, so it means visible),
// AWPROT = 010. BRESP is not looked at: VT-d has no report for a failed descriptor write (the model
// does not define one either), so PQT advances as for a good write.
module prq
  import iommu_pkg::*;
  import prq_pkg::*;
  import iommu_ctrl_pkg::*;
  import iommu_reg_pkg::pqt_hw2reg_t;
  import iotlb_pkg::*;
  import dma_pkg::tx_hdr_t;
  import fault_info_pkg::fault_qualified;
#(
  parameter int unsigned AXI_DATA_W = 256,      // >= 64, power of two
  parameter int unsigned AXI_ID_W   = 4,
  parameter logic [15:0] IOMMU_RID  = 16'h0000  // requester ID of the automatic PRG responses
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  // one received page request and its lookup
  /* verilator lint_off UNUSEDSIGNAL */  // the header's other fields describe other TLP kinds
  input  tlp_hdr_t                req_hdr_i,
  /* verilator lint_on UNUSEDSIGNAL */
  input  prq_lookup_t             req_lkup_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  // queue registers (reg2hw of the register page)
  input  logic [13:0]             pqh_i,   // PQH.PQH: next descriptor software reads (32-byte units)
  input  logic [13:0]             pqt_i,   // PQT.PQT
  input  logic [51:0]             pqa_i,   // PQA.PQA: queue base bits 63:12
  input  logic [2:0]              pqs_i,   // PQA.PQS: 2^PQS pages, 2^(PQS+7) descriptors
  input  logic                    pro_i,   // PRS.PRO

  // to iommu_ctrl: PQT write, PRS status bits, fault records
  output pqt_hw2reg_t             pqt_o,
  output prq_status_e             prq_set_o,
  output logic                    prq_set_valid_o,
  input  logic                    prq_set_ready_i,
  output fault_rec_t              fault_o,
  output logic                    fault_valid_o,
  input  logic                    fault_ready_i,

  // implicit invalidation (vtd §4.7), to the IOTLB: one command, then its completion
  output iotlb_inv_t              inv_o,
  output logic                    inv_valid_o,
  input  logic                    inv_ready_i,
  input  logic                    inv_done_valid_i,
  output logic                    inv_done_ready_o,

  // automatic PRG responses, a tlp_tx source (no payload)
  output tx_hdr_t                 tx_hdr_o,
  output logic                    tx_hdr_valid_o,
  input  logic                    tx_hdr_ready_i,

  // what became of each request (one-cycle pulse from the edge the outcome takes effect)
  output prq_outcome_t            outcome_o,
  output logic                    outcome_valid_o,

  // AXI4 master, write channels: descriptor writes
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
  /* verilator lint_off UNUSEDSIGNAL */  // one write in flight with ID 0; BRESP is not acted on (header)
  input  logic [AXI_ID_W-1:0]     m_axi_bid,
  input  logic [1:0]              m_axi_bresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  logic                    m_axi_bvalid,
  output logic                    m_axi_bready
);

  localparam int unsigned BUS_BYTES  = AXI_DATA_W / 8;
  localparam int unsigned DESC_BYTES = 32;                       // vtd §5.1
  localparam int unsigned BEAT_BYTES = BUS_BYTES < DESC_BYTES ? BUS_BYTES : DESC_BYTES;
  localparam int unsigned BEATS      = DESC_BYTES / BEAT_BYTES;
  localparam int unsigned BEAT_W     = BEATS > 1 ? $clog2(BEATS) : 1;

  if (AXI_DATA_W < 64 || (AXI_DATA_W & (AXI_DATA_W - 1)) != 0) begin : g_bad_data_w
    $error("prq: AXI_DATA_W must be a power of two >= 64");
  end

  // -----------------------------------------------------------------------------------------------
  // The request being handled
  // -----------------------------------------------------------------------------------------------
  typedef enum logic [3:0] {
    S_IDLE,      // waiting for a request
    S_DECIDE,    // steps 1-5
    S_FAULT,     // fault record to iommu_ctrl
    S_INV,       // implicit invalidation command
    S_INV_WAIT,  // ... and its completion
    S_WRITE,     // descriptor write: AW, W beats, B
    S_COMMIT,    // PQT + PPR
    S_RESP       // automatic PRG response to tlp_tx
  } state_e;

  state_e      state_q, state_d;
  logic [15:0] rid_q;
  logic        pp_q, pmr_q, er_q;
  logic [19:0] pasid_q;
  logic [63:0] qw1_q;        // header bytes 8-15: page[63:12], PRG index[11:3], L, W, R (pcie §4.1)
  prq_lookup_t lk_q;
  logic [63:0] addr_q;       // descriptor address PQA + PQT
  logic [13:0] pqt_next_q;   // PQT after it
  logic [3:0]  rc_q;         // response code of the automatic response

  logic take, l, rd, wr, stop_marker, needs_rsp;
  assign take        = req_valid_i && req_ready_o;
  assign rd          = qw1_q[0];
  assign wr          = qw1_q[1];
  assign l           = qw1_q[2];
  assign stop_marker = pp_q && l && !rd && !wr;    // pcie §4.1: only a request with a PASID
  assign needs_rsp   = l && !stop_marker;          // vtd §5.2

  // Queue state: full when one more descriptor would make PQT reach PQH (N-1 entries at most).
  logic [13:0] idx_mask;   // 2^(PQS+7) - 1
  logic [13:0] pqt_next;
  logic        full;
  assign idx_mask = 14'h3FFF >> (3'd7 - pqs_i);
  assign pqt_next = (pqt_i + 14'd1) & idx_mask;
  assign full     = pqt_next == pqh_i;

  // Decision (S_DECIDE) and the outcome it takes effect with
  logic         done;          // an outcome takes effect at the next edge
  prq_outcome_t done_outcome;

  always_comb begin
    state_d         = state_q;
    done            = 1'b0;
    done_outcome    = '{cause: PRQ_QUEUED, responded: 1'b0};
    prq_set_valid_o = 1'b0;
    prq_set_o       = PRQ_SET_PPR;
    fault_valid_o   = 1'b0;
    inv_valid_o     = 1'b0;
    inv_done_ready_o = 1'b0;
    tx_hdr_valid_o  = 1'b0;
    unique case (state_q)
      S_IDLE: if (take) state_d = S_DECIDE;
      S_DECIDE: begin
        if (lk_q.disabled) begin
          done = 1'b1;
          done_outcome.cause = PRQ_DISABLED;
        end else if (lk_q.reason != 8'd0) begin
          if (lk_q.fpd && fault_qualified(lk_q.reason)) begin
            done = 1'b1;
            done_outcome.cause = PRQ_FAULT;
          end else begin
            state_d = S_FAULT;
          end
        end else if (pro_i) begin
          done = 1'b1;
          done_outcome.cause = PRQ_OVERFLOW;
        end else if (full) begin
          prq_set_valid_o = 1'b1;
          prq_set_o       = PRQ_SET_PRO;
          if (prq_set_ready_i) begin
            done = 1'b1;
            done_outcome.cause = PRQ_FULL;
          end
        end else begin
          state_d = S_INV;
        end
      end
      S_FAULT: begin
        fault_valid_o = 1'b1;
        if (fault_ready_i) begin
          done = 1'b1;
          done_outcome.cause = PRQ_FAULT;
        end
      end
      S_INV: begin
        inv_valid_o = 1'b1;
        if (inv_ready_i) state_d = S_INV_WAIT;
      end
      S_INV_WAIT: begin
        inv_done_ready_o = 1'b1;
        if (inv_done_valid_i) state_d = S_WRITE;
      end
      S_WRITE: if (m_axi_bvalid) state_d = S_COMMIT;  // B comes after AW and the last W beat
      S_COMMIT: begin
        prq_set_valid_o = 1'b1;
        prq_set_o       = PRQ_SET_PPR;
        if (prq_set_ready_i) begin
          done    = 1'b1;
          state_d = S_IDLE;
        end
      end
      S_RESP: begin
        tx_hdr_valid_o = 1'b1;
        if (tx_hdr_ready_i) state_d = S_IDLE;
      end
      default: state_d = S_IDLE;
    endcase
    // not queued: answer or drop (vtd §5.2 Table 31)
    if (done && done_outcome.cause != PRQ_QUEUED) begin
      done_outcome.responded = needs_rsp;
      state_d = needs_rsp ? S_RESP : S_IDLE;
    end
  end

  assign req_ready_o = state_q == S_IDLE;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q    <= S_IDLE;
      rid_q      <= '0;
      pp_q       <= 1'b0;
      pmr_q      <= 1'b0;
      er_q       <= 1'b0;
      pasid_q    <= '0;
      qw1_q      <= '0;
      lk_q       <= '0;
      addr_q     <= '0;
      pqt_next_q <= '0;
      rc_q       <= '0;
    end else begin
      state_q <= state_d;
      if (take) begin
        rid_q   <= req_hdr_i.requester_id;
        pp_q    <= req_hdr_i.pasid_valid;
        pmr_q   <= req_hdr_i.pmr;      // the parser gives PMR = ER = PASID = 0 without a prefix
        er_q    <= req_hdr_i.er;
        pasid_q <= req_hdr_i.pasid;
        qw1_q   <= {req_hdr_i.dw2, req_hdr_i.dw3};
        lk_q    <= req_lkup_i;
      end
      if (state_q == S_DECIDE) begin
        addr_q     <= {pqa_i, 12'd0} + {45'd0, pqt_i, 5'd0};
        pqt_next_q <= pqt_next;
      end
      if (done) begin
        rc_q <= done_outcome.cause inside {PRQ_DISABLED, PRQ_FAULT} ? PRG_INVALID_REQUEST : PRG_SUCCESS;
      end
    end
  end

  // Outcome report
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      outcome_valid_o <= 1'b0;
      outcome_o       <= '0;
    end else begin
      outcome_valid_o <= done;
      if (done) outcome_o <= done_outcome;
    end
  end

  // PQT lands with the PPR handshake
  assign pqt_o = '{pqt_de: state_q == S_COMMIT && prq_set_ready_i, pqt: pqt_next_q};

  // -----------------------------------------------------------------------------------------------
  // Fault record (models.iommu.Iommu.record_fault with kind 'page_request', AT untranslated)
  // -----------------------------------------------------------------------------------------------
  assign fault_o = '{
    fr:   lk_q.reason,
    sid:  rid_q,
    pp:   pp_q,
    pv:   pasid_q,
    priv: pmr_q,
    exe:  er_q,
    t1:   1'b0,       // {T1, T2} = 01: page request (vtd §1.9)
    t2:   1'b1,
    at:   AT_UNTRANSLATED,
    fi:   qw1_q[63:12]
  };

  // -----------------------------------------------------------------------------------------------
  // Implicit invalidation (vtd §4.7 Table 27, address = the page, AM = 0, IH = 0): first stage ->
  // page-selective within PASID (DID, PASID); pass-through -> page-selective within domain (DID), which
  // drops every first-stage entry of the domain (vtd §4.3). The IOTLB has no IH input: it holds leaves
  // only, and the walker keeps no paging-structure cache.
  // -----------------------------------------------------------------------------------------------
  assign inv_o = '{
    kind:  lk_q.pgtt == PGTT_PASS_THROUGH ? INV_DOMAIN_PAGE : INV_PASID_PAGE,
    did:   lk_q.did,
    pasid: lk_q.pgtt == PGTT_PASS_THROUGH ? 20'd0 : lk_q.pasid,
    addr:  qw1_q[56:12],
    am:    6'd0
  };

  // -----------------------------------------------------------------------------------------------
  // Automatic PRG Response (pcie §4.2): [PASID prefix] + 4-DW Msg header, no data
  // -----------------------------------------------------------------------------------------------
  logic [31:0]  pfx_dw;
  logic [127:0] rsp_dws;  // DW0 in bits 31:0

  assign pfx_dw  = {8'h91, 1'b0 /* PMR */, 1'b0 /* ER */, 2'b00, pasid_q};  // pcie §2.2
  assign rsp_dws = {32'd0,                                                   // DW3: reserved
                    rid_q, rc_q, 3'b000, qw1_q[11:3],                        // DW2: dest, RC, PRG index
                    IOMMU_RID, 8'h00 /* tag */, MSG_PRG_RESP,                // DW1
                    FMT_4DW_NODATA, 5'b1_0010 /* Msg, routed by ID */, 24'd0};  // DW0
  assign tx_hdr_o = '{
    n_dw:     pp_q ? 4'd5 : 4'd4,
    has_data: 1'b0,
    dws:      pp_q ? {96'd0, rsp_dws, pfx_dw} : {128'd0, rsp_dws}
  };

  // -----------------------------------------------------------------------------------------------
  // Descriptor write (models.vtd.PageRequestDescriptor; QW1 is header bytes 8-15 unchanged, pcie §4.3)
  // -----------------------------------------------------------------------------------------------
  logic [63:0]  qw0;
  logic [255:0] desc;
  assign qw0  = {10'd0, pmr_q /* PMR */, er_q /* EXR */, pasid_q, rid_q, 7'd0, pp_q, 8'h01 /* type */};
  assign desc = {128'd0, qw1_q, qw0};

  logic              aw_done_q;
  logic [BEAT_W-1:0] beat_q;
  logic              w_done_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      aw_done_q <= 1'b0;
      beat_q    <= '0;
      w_done_q  <= 1'b0;
    end else if (state_q != S_WRITE) begin
      aw_done_q <= 1'b0;
      beat_q    <= '0;
      w_done_q  <= 1'b0;
    end else begin
      if (m_axi_awvalid && m_axi_awready) aw_done_q <= 1'b1;
      if (m_axi_wvalid && m_axi_wready) begin
        beat_q <= beat_q + BEAT_W'(1);
        if (m_axi_wlast) w_done_q <= 1'b1;
      end
    end
  end

  assign m_axi_awid    = '0;
  assign m_axi_awaddr  = addr_q;
  assign m_axi_awlen   = 8'(BEATS - 1);
  assign m_axi_awsize  = 3'($clog2(BEAT_BYTES));
  assign m_axi_awburst = 2'b01;     // INCR
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = 4'b0010;   // normal, non-cacheable, non-bufferable
  assign m_axi_awprot  = 3'b010;    // unprivileged, non-secure, data
  assign m_axi_awqos   = 4'd0;
  assign m_axi_awvalid = state_q == S_WRITE && !aw_done_q;
  assign m_axi_wvalid  = state_q == S_WRITE && !w_done_q;
  assign m_axi_wlast   = beat_q == BEAT_W'(BEATS - 1);
  assign m_axi_bready  = state_q == S_WRITE;

  if (BUS_BYTES >= DESC_BYTES) begin : g_wide
    localparam int unsigned LANE_W = $clog2(BUS_BYTES);
    assign m_axi_wdata = {(BUS_BYTES / DESC_BYTES){desc}};
    if (BUS_BYTES > DESC_BYTES) begin : g_lanes
      assign m_axi_wstrb = BUS_BYTES'({DESC_BYTES{1'b1}}) << addr_q[LANE_W-1:0];
    end else begin : g_full
      assign m_axi_wstrb = '1;
    end
  end else begin : g_narrow
    assign m_axi_wdata = desc[AXI_DATA_W * beat_q +: AXI_DATA_W];
    assign m_axi_wstrb = '1;
  end

endmodule

`resetall
