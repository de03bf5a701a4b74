`resetall
`timescale 1ns / 1ps
`default_nettype none

// First-stage page walker (vtd.md §3): N_WALKS independent walk contexts behind one AXI4 master.
//
// A request (ready/valid) carries the PASID entry facts the walk needs (FSPTPTR, FSPM, WPE, EAFE,
// snoop-ok), the request facts (input address, kind, NW, supervisor) and an opaque tag. It is taken by
// any idle context; each context walks on its own and answers when done, so responses come back in
// completion order, not request order (the tag says which request an answer belongs to). A context
// uses AXI ID = its index, so a slow walk never blocks another.
//
// Checks run in exactly the order of the first-stage rows of FAULT_PRIORITY (models/iommu.py,
// docs/fault-priority.md); the first that fires is the answer:
//   input:     0x80 non-canonical (bits 63:N-1 not all equal, N = 48 / 57)
//   per level: 0x73 (top level) / 0x70 read error, 0x71 P=0, 0x72 reserved bits (vtd.md §3.2),
//              then for a table entry: 0x90 A (EA) needed but not snooped, 0x91 update failed
//   leaf:      0x83 output >= 2^HAW, 0x87 output in the interrupt window, 0x81 user and AND(U/S)=0,
//              0x90 / 0x91 for the A (EA, D) update, 0x85 write not allowed
// Access rights are the AND over all levels and are looked at only at the leaf; D is set only by a
// write the rights allow, so the A/D update sits between the user check and the write check.
//
// Memory side (the fixed contract of every structure-fetching block): every entry is fetched with one
// 8-byte exclusive read (ARLOCK=1, ARLEN=0, ARSIZE=3); when A/EA/D must be set, the exclusive write
// (AWLOCK=1, same ID/address/size) of the updated value completes the pair. The pair is the
// compare-and-swap of vtd.md §3.5 (models.host.Memory.cmpxchg64): the compared value is what the
// exclusive read returned.
//   * BRESP EXOKAY: stored; the entry is evaluated again with the new value (which now needs no
//     update), and the walk goes on.
//   * BRESP OKAY: another agent wrote the entry between the read and the write, nothing was stored:
//     the entry is read again and evaluated from scratch (read error, P, reserved, ...). Like the
//     golden model this retries without a bound; a CPU that rewrites the entry forever stalls the walk.
//   * BRESP SLVERR/DECERR: 0x91. So is an update whose exclusive read was answered OKAY instead of
//     EXOKAY: the slave does not support exclusive access (AMBA AXI A7.2), so no atomic update is
//     possible and no write is attempted.
//   * RRESP SLVERR/DECERR: read error (0x73 for the top-level table, 0x70 below).
// Reading every entry exclusively costs nothing extra when no update is needed (the reservation is
// simply dropped) and saves a second read when one is.
//
// Timing: a level costs its read round trip (AR handshake to R beat) + 2 cycles (AR issue, evaluation);
// a level that sets A/EA/D adds the write round trip (AW/W issue to B) + 2 cycles. Each context has at
// most one AXI transaction outstanding; N_WALKS contexts overlap fully (tb fs_walker_latency measures it).
// Response fields other than `fault` are zero unless `leaf` is set.
//
// The snoop-ok input only decides 0x90: AXI4 has no snoop attribute (a coherent ACE-Lite port would
// carry it in AxSNOOP/AxDOMAIN). Exclusive accesses use AxCACHE=0010 (normal, non-cacheable,
// non-bufferable) so that no cache or write buffer between the walker and the monitor answers them
// (docs/atomics.md).
//
// No paging-structure cache: every walk starts at FSPTPTR, so nothing needs invalidating (vtd.md §4.3).
module fs_walker
  import fs_walker_pkg::*;
#(
  parameter int HAW        = 48,    // host address width: entry address bits 51:HAW are reserved
  parameter bit FS1GP      = 1'b1,  // CAP.FS1GP: 1 GiB pages (PS in a PDPE is reserved without it)
  parameter bit NWFS       = 1'b1,  // ECAP.NWFS: an ATS request with NW=1 is a read (else read+write)
  parameter int N_WALKS    = 4,     // walk contexts (walks in flight)
  parameter int TAG_W      = 8,
  parameter int AXI_DATA_W = 256,
  parameter int AXI_ID_W   = 4
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,

  input  fs_req_t                 req_i,
  input  logic [TAG_W-1:0]        req_tag_i,
  input  logic                    req_valid_i,
  output logic                    req_ready_o,

  output fs_rsp_t                 rsp_o,
  output logic [TAG_W-1:0]        rsp_tag_o,
  output logic                    rsp_valid_o,
  input  logic                    rsp_ready_i,

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

  localparam int IDX_W = N_WALKS > 1 ? $clog2(N_WALKS) : 1;

  if (N_WALKS < 1 || N_WALKS > (1 << AXI_ID_W)) begin : g_bad_walks
    $error("fs_walker: N_WALKS must be 1..2^AXI_ID_W (one AXI ID per walk context)");
  end
  if (AXI_DATA_W < 64 || (AXI_DATA_W & (AXI_DATA_W - 1)) != 0) begin : g_bad_width
    $error("fs_walker: AXI_DATA_W must be a power of two >= 64");
  end
  if (HAW < 32 || HAW > 52) begin : g_bad_haw
    $error("fs_walker: HAW must be 32..52 (entries hold address bits 51:12)");
  end

  // -----------------------------------------------------------------------------------------------
  // Round-robin choice: the first requester after `last` (wrapping); `last` itself comes last.
  // -----------------------------------------------------------------------------------------------
  function automatic logic [IDX_W-1:0] rr_pick(input logic [N_WALKS-1:0] req, input logic [IDX_W-1:0] last);
    rr_pick = last;
    for (int k = N_WALKS; k >= 1; k--) begin
      if (req[(int'(last) + k) % N_WALKS]) rr_pick = IDX_W'((int'(last) + k) % N_WALKS);
    end
  endfunction

  // -----------------------------------------------------------------------------------------------
  // Walk contexts: each walks one request from FSPTPTR down to the leaf
  // -----------------------------------------------------------------------------------------------
  localparam logic [1:0] RESP_OKAY   = 2'b00;
  localparam logic [1:0] RESP_EXOKAY = 2'b01;
  localparam int         LANE_W      = AXI_DATA_W > 64 ? $clog2(AXI_DATA_W / 64) : 1;

  // entry bits (vtd.md §3.2; models.paging.FsEntry)
  localparam int BIT_P  = 0;
  localparam int BIT_RW = 1;
  localparam int BIT_US = 2;
  localparam int BIT_A  = 5;
  localparam int BIT_D  = 6;
  localparam int BIT_PS = 7;
  localparam int BIT_EA = 10;
  // physical address bits at and above HAW (of a 52-bit address)
  localparam logic [51:0] ABOVE_HAW = ~((52'(1) << HAW) - 52'(1));

  typedef enum logic [2:0] {ST_IDLE, ST_AR, ST_R, ST_EVAL, ST_AW, ST_B, ST_DONE} state_e;

  logic [N_WALKS-1:0] idle, start;
  logic [N_WALKS-1:0] ar_req, ar_done, aw_req, aw_done, rsp_valid, rsp_take;
  logic [63:0]        slot_addr [N_WALKS];
  logic [63:0]        w_entry   [N_WALKS];
  fs_rsp_t            rsp       [N_WALKS];
  logic [TAG_W-1:0]   rsp_tag   [N_WALKS];

  // a new request goes to the lowest-numbered idle context
  always_comb begin
    start = '0;
    for (int i = N_WALKS - 1; i >= 0; i--) begin
      if (idle[i]) start = N_WALKS'(1) << i;
    end
    if (!req_valid_i) start = '0;
  end
  assign req_ready_o = |idle;

  // canonical input address (vtd.md §3.1): bits 63:N-1 all equal, N = 48 / 57
  logic canonical;
  always_comb begin
    if (req_i.level5) canonical = req_i.addr[63:56] == '0 || req_i.addr[63:56] == '1;
    else              canonical = req_i.addr[63:47] == '0 || req_i.addr[63:47] == '1;
  end

  for (genvar i = 0; i < N_WALKS; i++) begin : g_ctx
    state_e           state_q;
    logic [56:0]      addr_q;         // the request (bits 63:57 are only needed by the canonical check)
    fs_kind_e         kind_q;
    logic             nw_q, sup_q, wpe_q, eafe_q, snooped_q, level5_q;
    logic [TAG_W-1:0] tag_q;
    logic [2:0]       level_q;        // 5..1 (vtd.md §3.1)
    logic [51:0]      table_q;        // address bits 63:12 of the table being walked
    logic             rw_q, us_q;     // AND of R/W, U/S over the levels above
    logic [63:0]      entry_q;        // the entry as last read (or as just stored)
    logic             rd_err_q;       // the last read failed
    logic             exok_q;         // the last read was answered EXOKAY
    logic [63:0]      new_q;          // value of the pending exclusive write
    fs_rsp_t          rsp_q;

    logic             r_valid, b_valid;
    assign r_valid = m_axi_rvalid && m_axi_rlast && m_axi_rid == AXI_ID_W'(i);
    assign b_valid = m_axi_bvalid && m_axi_bid == AXI_ID_W'(i);

    // --- request facts ---------------------------------------------------------------------------
    logic [2:0] top_level;
    logic       wants_write;
    assign top_level = level5_q ? 3'd5 : 3'd4;
    // vtd.md §3.5: writes and atomics; an ATS request is read+write unless NW=1 with NWFS=1
    assign wants_write = kind_q == FS_WRITE || kind_q == FS_ATOMIC ||
                         (kind_q == FS_TRANSLATION && !(nw_q && NWFS));

    logic [8:0] index;
    always_comb begin
      unique case (level_q)
        3'd5:    index = addr_q[56:48];
        3'd4:    index = addr_q[47:39];
        3'd3:    index = addr_q[38:30];
        3'd2:    index = addr_q[29:21];
        default: index = addr_q[20:12];
      endcase
    end
    assign slot_addr[i] = {table_q, index, 3'b000};

    // --- evaluation of the entry in entry_q (ST_EVAL) --------------------------------------------
    logic        present, ps, reserved, leaf, rw_all, us_all, read_ok, write_ok, need_update;
    logic [63:0] target;
    logic [39:0] page;
    fs_page_e    size;
    fs_access_t  access;
    logic        above_haw, in_irq;

    always_comb begin
      present = entry_q[BIT_P];
      ps      = entry_q[BIT_PS];
      // reserved bits of a present entry (vtd.md §3.2; models.paging.FsEntry.reserved_violations)
      reserved = (entry_q[51:0] & ABOVE_HAW) != '0;
      if (level_q >= 3'd4 && ps) reserved = 1'b1;
      if (level_q == 3'd3 && ps && (!FS1GP || entry_q[29:13] != '0)) reserved = 1'b1;
      if (level_q == 3'd2 && ps && entry_q[20:13] != '0) reserved = 1'b1;
      leaf = level_q == 3'd1 || ((level_q == 3'd2 || level_q == 3'd3) && ps);

      // rights: AND over every level including this one (vtd.md §3.3)
      rw_all   = rw_q && entry_q[BIT_RW];
      us_all   = us_q && entry_q[BIT_US];
      // the page a leaf maps
      unique case (level_q)
        3'd3:    begin size = FS_PAGE_1G; page = {entry_q[51:30], 18'h0}; end
        3'd2:    begin size = FS_PAGE_2M; page = {entry_q[51:21], 9'h0}; end
        default: begin size = FS_PAGE_4K; page = entry_q[51:12]; end
      endcase
      // output and access checks (one function with the IOTLB hit path: fs_walker_pkg::fs_access)
      access    = fs_access(HAW, page, size, addr_q[29:0], kind_q == FS_TRANSLATION, sup_q, wpe_q, rw_all,
                            us_all);
      above_haw = access.above_haw;
      in_irq    = access.in_irq;
      read_ok   = access.read_ok;
      write_ok  = access.write_ok;

      // the A/EA (and at the leaf, for an allowed write, D) bits this access sets (vtd.md §3.5)
      target = entry_q;
      target[BIT_A] = 1'b1;
      if (eafe_q) target[BIT_EA] = 1'b1;
      if (leaf && wants_write && write_ok) target[BIT_D] = 1'b1;
      need_update = target != entry_q;
    end

    // --- state machine -----------------------------------------------------------------------------
    assign idle[i]      = state_q == ST_IDLE;
    assign ar_req[i]    = state_q == ST_AR;
    assign aw_req[i]    = state_q == ST_AW;
    assign w_entry[i]   = new_q;
    assign rsp_valid[i] = state_q == ST_DONE;
    assign rsp[i]       = rsp_q;
    assign rsp_tag[i]   = tag_q;

    logic [LANE_W-1:0] lane;  // which 64-bit lane of the data bus holds the entry
    if (AXI_DATA_W > 64) begin : g_lane
      assign lane = slot_addr[i][3 +: LANE_W];
    end else begin : g_lane_one
      assign lane = 1'b0;
    end

    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        state_q   <= ST_IDLE;
        addr_q    <= '0;
        kind_q    <= FS_READ;
        nw_q      <= 1'b0;
        sup_q     <= 1'b0;
        wpe_q     <= 1'b0;
        eafe_q    <= 1'b0;
        snooped_q <= 1'b0;
        level5_q  <= 1'b0;
        tag_q     <= '0;
        level_q   <= 3'd1;
        table_q   <= '0;
        rw_q      <= 1'b0;
        us_q      <= 1'b0;
        entry_q   <= '0;
        rd_err_q  <= 1'b0;
        exok_q    <= 1'b0;
        new_q     <= '0;
        rsp_q     <= '0;
      end else begin
        unique case (state_q)
          ST_IDLE: if (start[i]) begin
            addr_q    <= req_i.addr[56:0];
            kind_q    <= req_i.kind;
            nw_q      <= req_i.nw;
            sup_q     <= req_i.supervisor;
            wpe_q     <= req_i.wpe;
            eafe_q    <= req_i.eafe;
            snooped_q <= req_i.snooped;
            level5_q  <= req_i.level5;
            tag_q     <= req_tag_i;
            level_q   <= req_i.level5 ? 3'd5 : 3'd4;
            table_q   <= req_i.fsptptr;
            rw_q      <= 1'b1;
            us_q      <= 1'b1;
            rsp_q     <= '0;
            if (canonical) begin
              state_q <= ST_AR;
            end else begin
              rsp_q.fault <= FS_SGN_1;
              state_q     <= ST_DONE;
            end
          end
          ST_AR: if (ar_done[i]) state_q <= ST_R;
          ST_R: if (r_valid) begin
            entry_q  <= m_axi_rdata[64 * lane +: 64];
            rd_err_q <= m_axi_rresp[1];           // SLVERR / DECERR
            exok_q   <= m_axi_rresp == RESP_EXOKAY;
            state_q  <= ST_EVAL;
          end
          ST_EVAL: begin
            state_q <= ST_DONE;                   // unless the walk goes on (below)
            if (rd_err_q) begin
              rsp_q.fault <= level_q == top_level ? FS_SFS_4 : FS_SFS_1;
            end else if (!present) begin
              rsp_q.fault <= FS_SFS_2;
            end else if (reserved) begin
              rsp_q.fault <= FS_SFS_3;
            end else begin
              if (leaf) begin
                rsp_q.leaf <= 1'b1;
                rsp_q.page <= page;
                rsp_q.size <= size;
                rsp_q.rw   <= rw_all;
                rsp_q.us   <= us_all;
                rsp_q.d    <= entry_q[BIT_D];
                rsp_q.r    <= read_ok;
                rsp_q.w    <= write_ok && (kind_q != FS_TRANSLATION || wants_write);
              end
              if (leaf && above_haw) begin
                rsp_q.fault <= FS_SGN_4;
              end else if (leaf && in_irq) begin
                rsp_q.fault <= FS_SGN_8;
              end else if (leaf && !read_ok) begin
                rsp_q.fault <= FS_SGN_2;
              end else if (need_update && !snooped_q) begin
                rsp_q.fault <= FS_SFS_9;
              end else if (need_update && !exok_q) begin
                rsp_q.fault <= FS_SFS_10;         // the memory cannot do the atomic update
              end else if (need_update) begin
                new_q   <= target;
                state_q <= ST_AW;
              end else if (!leaf) begin
                level_q <= level_q - 3'd1;
                table_q <= {12'h0, entry_q[51:12]};
                rw_q    <= rw_all;
                us_q    <= us_all;
                state_q <= ST_AR;
              end else if (wants_write && !write_ok) begin
                rsp_q.fault <= FS_SGN_6;
              end
            end
          end
          ST_AW: if (aw_done[i]) state_q <= ST_B;
          ST_B: if (b_valid) begin
            if (m_axi_bresp == RESP_EXOKAY) begin
              entry_q <= new_q;                   // stored: go on from the new value
              state_q <= ST_EVAL;
            end else if (m_axi_bresp == RESP_OKAY) begin
              rsp_q   <= '0;                      // the entry changed under us: read it again and
              state_q <= ST_AR;                   // forget the page an earlier look at it found
            end else begin
              rsp_q.fault <= FS_SFS_10;
              state_q     <= ST_DONE;
            end
          end
          ST_DONE: if (rsp_take[i]) state_q <= ST_IDLE;
          default: state_q <= ST_IDLE;
        endcase
      end
    end
  end

  // -----------------------------------------------------------------------------------------------
  // AR channel: one context at a time; the choice is held while ARVALID waits for ARREADY
  // -----------------------------------------------------------------------------------------------
  logic [IDX_W-1:0] ar_last_q, ar_sel;
  logic             ar_hold_q;
  assign ar_sel = ar_hold_q ? ar_last_q : rr_pick(ar_req, ar_last_q);

  assign m_axi_arvalid = ar_req[ar_sel];
  assign m_axi_arid    = AXI_ID_W'(ar_sel);
  assign m_axi_araddr  = slot_addr[ar_sel];
  assign m_axi_arlen   = 8'd0;
  assign m_axi_arsize  = 3'd3;            // 8 bytes: one entry
  assign m_axi_arburst = 2'b01;           // INCR
  assign m_axi_arlock  = 1'b1;            // exclusive: the first half of a possible A/D update
  assign m_axi_arcache = 4'b0010;         // normal, non-cacheable, non-bufferable: the monitor answers
  assign m_axi_arprot  = 3'b010;          // data, non-secure, unprivileged
  assign m_axi_arqos   = 4'd0;
  assign m_axi_rready  = 1'b1;            // every context with a read outstanding waits for it

  always_comb begin
    ar_done = '0;
    ar_done[ar_sel] = m_axi_arvalid && m_axi_arready;
  end

  // -----------------------------------------------------------------------------------------------
  // AW + W: one context at a time, held until both its address and its data have been taken
  // -----------------------------------------------------------------------------------------------
  localparam int BYTES = AXI_DATA_W / 8;
  logic [IDX_W-1:0] aw_last_q, aw_sel;
  logic             aw_hold_q, aw_sent_q, w_sent_q, aw_fire, w_fire, aw_pair_done;
  assign aw_sel = aw_hold_q ? aw_last_q : rr_pick(aw_req, aw_last_q);

  assign m_axi_awvalid = aw_req[aw_sel] && !aw_sent_q;
  assign m_axi_wvalid  = aw_req[aw_sel] && !w_sent_q;
  assign m_axi_awid    = AXI_ID_W'(aw_sel);
  assign m_axi_awaddr  = slot_addr[aw_sel];
  assign m_axi_awlen   = 8'd0;
  assign m_axi_awsize  = 3'd3;
  assign m_axi_awburst = 2'b01;
  assign m_axi_awlock  = 1'b1;            // exclusive: stored only if nobody wrote the entry since the read
  assign m_axi_awcache = 4'b0010;         // non-bufferable: EXOKAY/OKAY come from the monitor itself
  assign m_axi_awprot  = 3'b010;
  assign m_axi_awqos   = 4'd0;
  assign m_axi_wdata   = {(AXI_DATA_W / 64){w_entry[aw_sel]}};
  if (BYTES > 8) begin : g_strb_lanes
    assign m_axi_wstrb = (AXI_DATA_W / 8)'(8'hFF) << {slot_addr[aw_sel][$clog2(BYTES)-1:3], 3'b000};
  end else begin : g_strb_one
    assign m_axi_wstrb = 8'hFF;
  end
  assign m_axi_wlast   = 1'b1;
  assign m_axi_bready  = 1'b1;

  assign aw_fire      = m_axi_awvalid && m_axi_awready;
  assign w_fire       = m_axi_wvalid && m_axi_wready;
  assign aw_pair_done = aw_req[aw_sel] && (aw_sent_q || aw_fire) && (w_sent_q || w_fire);

  always_comb begin
    aw_done = '0;
    aw_done[aw_sel] = aw_pair_done;
  end

  // -----------------------------------------------------------------------------------------------
  // Responses: round-robin over finished contexts, held while RSP_VALID waits for RSP_READY
  // -----------------------------------------------------------------------------------------------
  logic [IDX_W-1:0] rsp_last_q, rsp_sel;
  logic             rsp_hold_q;
  assign rsp_sel     = rsp_hold_q ? rsp_last_q : rr_pick(rsp_valid, rsp_last_q);
  assign rsp_valid_o = rsp_valid[rsp_sel];
  assign rsp_o       = rsp[rsp_sel];
  assign rsp_tag_o   = rsp_tag[rsp_sel];

  always_comb begin
    rsp_take = '0;
    rsp_take[rsp_sel] = rsp_ready_i;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ar_last_q  <= '0;
      ar_hold_q  <= 1'b0;
      aw_last_q  <= '0;
      aw_hold_q  <= 1'b0;
      aw_sent_q  <= 1'b0;
      w_sent_q   <= 1'b0;
      rsp_last_q <= '0;
      rsp_hold_q <= 1'b0;
    end else begin
      ar_last_q  <= ar_sel;
      ar_hold_q  <= m_axi_arvalid && !m_axi_arready;
      aw_last_q  <= aw_sel;
      aw_hold_q  <= aw_req[aw_sel] && !aw_pair_done;
      aw_sent_q  <= (aw_sent_q || aw_fire) && !aw_pair_done;
      w_sent_q   <= (w_sent_q || w_fire) && !aw_pair_done;
      rsp_last_q <= rsp_sel;
      rsp_hold_q <= rsp_valid_o && !rsp_ready_i;
    end
  end

endmodule

`resetall
