`resetall
`timescale 1ns / 1ps
`default_nettype none

// IOTLB: cached first-stage leaf translations (vtd.md §3.7, SPEC §6.2.4), with the invalidation rules
// of vtd.md §4.3 for first-stage (PGTT=001) entries.
//
// Organisation
// * ENTRIES entries in SETS = ENTRIES / WAYS sets of WAYS ways (WAYS = ENTRIES: fully associative);
//   both powers of two. Storage is flops.
// * Entry: tags DID, PASID, input page (va bits 56:12, kept page-aligned), page size; data frame
//   (bits 51:12, page-aligned), AND(R/W), AND(U/S), leaf D (iotlb_pkg::iotlb_entry_t).
// * Set index: a page of size S (4K/2M/1G) lives in the set named by the SET_W page-number bits just
//   above its offset: va[12 +: SET_W], va[21 +: SET_W] or va[30 +: SET_W]. A lookup does not know the
//   page size, so it probes three sets (one per size) and in each compares only the entries of that
//   size (3 x WAYS comparators; fully associative: one probe, ENTRIES comparators, each entry
//   compared at its own size).
// * Replacement: tree pseudo-LRU per set (WAYS-1 bits), touched by every hit and fill. A fill goes to
//   the way already holding the same tag (DID + PASID or src, page, size: the new walk result replaces
//   the old one, e.g. the D=1 refill after a write missed on D=0), else the first invalid way, else
//   the PLRU victim. A working set with at most WAYS pages per set is therefore never evicted.
//
// Lookup (lkup_* -> rsp_*): one accepted per cycle, answers in order with a fixed latency of 1 cycle:
// the request inputs are compared and the answer selected in the cycle the lookup is accepted, straight
// into the response register, so a request accepted in cycle t is answered in cycle t+1 (and held there
// while rsp_ready_i is low; a new lookup is accepted only in a cycle the register is empty or its
// answer leaves). lkup_ready_o = !rsp_valid_o || rsp_ready_i (combinational from rsp_ready_i).
// rsp_user_o returns lkup_user_i. The compare path starts at lkup_i (and fill_i, inv_i, see below).
// With MATCH_SRC=1 an entry is matched by src instead of DID + PASID (lookups and the fill's search for
// its old copy; lkup_i.did / lkup_i.pasid are not looked at); DID and PASID still select it for
// invalidation.
// * hit = a valid entry with the lookup's DID and PASID (src with MATCH_SRC=1) whose page contains va,
//   and, for a write, D=1: a write must not hit an entry cached with D=0 (the walk has to run again to
//   set D, vtd.md §3.7), so such an entry is passed over and the write misses unless another entry
//   covers it.
// * Several entries may cover one address (a 4K page inside a cached 2M page, filled by walks at
//   different times); the smallest page wins, then the entry being filled in that cycle, then the
//   lowest probe and way.
//
// Fill (fill_*): written in the cycle it is accepted. A lookup accepted in the same cycle already sees
// it: the fill is compared beside the stored entries. In that cycle the entry the fill overwrites is
// still compared too (it was valid until then: an older version of the same tag, which a cache may go
// on using until an invalidation, vtd.md §4.6, or a victim that is still a correct translation). A
// fill with the reserved size code is accepted and dropped. fill_ready_o is low while an
// invalidation walks the sets (so a fill lands wholly before or wholly after it).
//
// Invalidation (inv_* then inv_done_*): one at a time (inv_ready_o only when idle). The walk clears the
// matching ways of one set per cycle, SETS cycles; then inv_done_valid_o is raised and held until
// inv_done_ready_i. Matching entries (vtd.md §4.3, first-stage entries):
//   INV_GLOBAL (and reserved codes): all; INV_DOMAIN, INV_DOMAIN_PAGE: DID (a type-2 page-selective
//   invalidation drops every first-stage entry of the domain, whatever the address); INV_PASID: DID +
//   PASID; INV_PASID_PAGE: DID + PASID + the page overlaps [ADDR & ~(2^(12+AM)-1), +2^(12+AM)) (a page
//   of any size overlapping the range; AM >= 45 covers every address).
//
// Ordering and lookups in flight. Operations are ordered by the cycle they are accepted in; in one
// cycle a fill comes before an invalidation, which comes before a lookup.
// * A lookup accepted in the same cycle as an invalidation, or later, never hits an entry that
//   invalidation removes: lookups keep being accepted during the walk, and in the accepting cycle and
//   while the walk runs a hit whose entry the invalidation matches is answered as a miss (the ways of
//   sets not yet walked are still valid). Because the smallest covering page wins and any page
//   containing a doomed smaller page is doomed too, this only turns into misses the hits the
//   invalidation would remove anyway (with MATCH_SRC=1 this needs every entry of one src to carry the
//   same DID + PASID, which holds while software does not change the context / PASID entry behind it
//   without the invalidations vtd.md §4.6 asks for).
// * A lookup accepted before the invalidation is "in flight": it may hit or miss an entry the
//   invalidation removes. There is at most one, the answer waiting in the response register in the
//   cycle the invalidation is accepted. inv_done_valid_o waits until it has been taken (rsp handshake),
//   so after the done handshake no answer computed from a removed entry can still come out of the IOTLB.
// * Bound: an invalidation accepted in cycle t has inv_done_valid_o high in cycle t + SETS + 1, or, if
//   the answer in the response register in cycle t is still waiting then, in the cycle after it is
//   taken.
// * The IOTLB cannot tell when a walk read the tables: a fill from a walk that started before an
//   invalidation must be dropped by the walker (or the IQ must drain the walker before it completes the
//   invalidation), or it would put back what was invalidated.
module iotlb
  import iotlb_pkg::*;
#(
  parameter int unsigned ENTRIES = 16,
  parameter int unsigned WAYS    = 4,
  parameter int unsigned USER_W  = 8,
  parameter bit          MATCH_SRC = 1'b0   // 1: lookups and fills match src instead of DID + PASID
) (
  input  logic              clk_i,
  input  logic              rst_ni,

  input  logic              lkup_valid_i,
  output logic              lkup_ready_o,
  input  iotlb_lkup_t       lkup_i,
  input  logic [USER_W-1:0] lkup_user_i,

  output logic              rsp_valid_o,
  input  logic              rsp_ready_i,
  output iotlb_rsp_t        rsp_o,
  output logic [USER_W-1:0] rsp_user_o,

  input  logic              fill_valid_i,
  output logic              fill_ready_o,
  input  iotlb_entry_t      fill_i,

  input  logic              inv_valid_i,
  output logic              inv_ready_o,
  input  iotlb_inv_t        inv_i,

  output logic              inv_done_valid_o,
  input  logic              inv_done_ready_i
);

  localparam int unsigned SETS     = ENTRIES / WAYS;
  localparam int unsigned SET_W    = SETS > 1 ? $clog2(SETS) : 1;
  localparam int unsigned LOG_WAYS = $clog2(WAYS);
  localparam int unsigned WAY_W    = WAYS > 1 ? LOG_WAYS : 1;
  localparam int unsigned PLRU_W   = WAYS > 1 ? WAYS - 1 : 1;
  localparam int unsigned NPROBE   = SETS > 1 ? 3 : 1;
  localparam int unsigned VPN_W    = 45;   // va bits 56:12

  if (WAYS == 0 || ENTRIES % WAYS != 0 || (WAYS & (WAYS - 1)) != 0 || (SETS & (SETS - 1)) != 0
      || 18 + SET_W > VPN_W) begin : g_bad_geometry
    $error("iotlb: WAYS and ENTRIES / WAYS must be powers of two (at most 2^27 sets)");
  end

  typedef logic [VPN_W-1:0] vpn_t;
  typedef logic [SET_W-1:0] set_t;
  typedef logic [WAY_W-1:0] way_t;
  typedef logic [PLRU_W-1:0] plru_t;
  typedef enum logic [1:0] {ST_IDLE, ST_WALK, ST_DONE} inv_state_e;

  // page-number bits that name a page of this size (the ones above its offset)
  function automatic vpn_t page_mask(input iotlb_size_e size);
    unique case (size)
      PS_4K:   page_mask = '1;
      PS_2M:   page_mask = {{(VPN_W - 9){1'b1}}, 9'b0};
      default: page_mask = {{(VPN_W - 18){1'b1}}, 18'b0};
    endcase
  endfunction

  // the set a page of size code `size` (0 4K, 1 2M, 2 1G) containing va lives in
  function automatic set_t set_of(input vpn_t va, input int unsigned size);
    if (SETS == 1) set_of = '0;
    else           set_of = set_t'(va >> (9 * size));
  endfunction

  // vtd.md §4.3 for a first-stage entry with these tags (see the header)
  // the tag a lookup (or a fill looking for its old copy) compares: DID + PASID, or the source tag
  function automatic logic same_tag(input logic [15:0] did_a, input logic [19:0] pasid_a, input logic [36:0] src_a,
                                    input logic [15:0] did_b, input logic [19:0] pasid_b, input logic [36:0] src_b);
    return MATCH_SRC ? src_a == src_b : (did_a == did_b && pasid_a == pasid_b);
  endfunction

  function automatic logic doomed(input iotlb_inv_t inv, input logic [15:0] did, input logic [19:0] pasid,
                                  input vpn_t va, input iotlb_size_e size);
    logic did_eq, pasid_eq;
    vpn_t keep;
    did_eq   = did == inv.did;
    pasid_eq = pasid == inv.pasid;
    keep     = page_mask(size) & (vpn_t'('1) << inv.am);     // bits above both the page and the range
    unique case (inv.kind)
      INV_DOMAIN, INV_DOMAIN_PAGE: doomed = did_eq;
      INV_PASID:                   doomed = did_eq && pasid_eq;
      INV_PASID_PAGE:              doomed = did_eq && pasid_eq && ((va ^ inv.addr) & keep) == '0;
      default:                     doomed = 1'b1;           // INV_GLOBAL, reserved codes
    endcase
  endfunction

  // tree pseudo-LRU: node n has children 2n+1 (left) and 2n+2 (right); a bit of 1 sends the victim right
  function automatic plru_t plru_touch(input plru_t t, input way_t way);
    int unsigned node;
    node = 0;
    for (int l = int'(LOG_WAYS) - 1; l >= 0; l--) begin
      t[node] = !way[l];                                      // point away from the used way
      node = 2 * node + 1 + 32'(way[l]);
    end
    plru_touch = t;
  endfunction

  function automatic way_t plru_victim(input plru_t t);
    int unsigned node;
    node = 0;
    plru_victim = '0;
    for (int l = int'(LOG_WAYS) - 1; l >= 0; l--) begin
      plru_victim[l] = t[node];
      node = 2 * node + 1 + 32'(t[node]);
    end
  endfunction

  // -----------------------------------------------------------------------------------------------
  // State
  // -----------------------------------------------------------------------------------------------
  iotlb_entry_t      ent_q   [SETS][WAYS];
  logic [WAYS-1:0]   valid_q [SETS];
  plru_t             plru_q  [SETS];

  logic              rsp_old_q;                          // the answer waiting is from before the invalidation

  inv_state_e        inv_state_q;
  iotlb_inv_t        inv_q;
  set_t              walk_q;

  // -----------------------------------------------------------------------------------------------
  // Handshakes
  // -----------------------------------------------------------------------------------------------
  logic lkup_fire, fill_fire, fill_now, fill_ok, inv_fire, done_fire;
  assign lkup_ready_o = !rsp_valid_o || rsp_ready_i;
  assign lkup_fire    = lkup_valid_i && lkup_ready_o;
  assign fill_ready_o = inv_state_q != ST_WALK;
  assign fill_fire    = fill_valid_i && fill_ready_o;
  assign fill_now     = fill_fire && fill_ok;         // an entry is written this cycle
  assign inv_ready_o  = inv_state_q == ST_IDLE;
  assign inv_fire     = inv_valid_i && inv_ready_o;
  assign inv_done_valid_o = inv_state_q == ST_DONE && !(rsp_valid_o && rsp_old_q);
  assign done_fire    = inv_done_valid_o && inv_done_ready_i;

  // -----------------------------------------------------------------------------------------------
  // Fill placement: same tag, else first invalid way, else the PLRU victim
  // -----------------------------------------------------------------------------------------------
  iotlb_entry_t fill_e;
  set_t         fill_set;
  way_t         fill_way;

  always_comb begin
    logic found;
    fill_e       = fill_i;
    fill_e.va    = fill_i.va & page_mask(fill_i.size);
    fill_e.frame = fill_i.frame & 40'(page_mask(fill_i.size));
    fill_ok      = fill_i.size != iotlb_size_e'(2'd3);
    fill_set     = set_of(fill_i.va, 32'(fill_i.size));
    fill_way     = plru_victim(plru_q[fill_set]);
    found        = 1'b0;
    for (int w = 0; w < int'(WAYS); w++) begin
      if (!found && !valid_q[fill_set][w]) begin
        found    = 1'b1;
        fill_way = way_t'(w);
      end
    end
    found = 1'b0;
    for (int w = 0; w < int'(WAYS); w++) begin
      if (!found && valid_q[fill_set][w]
          && same_tag(ent_q[fill_set][w].did, ent_q[fill_set][w].pasid, ent_q[fill_set][w].src, fill_e.did,
                      fill_e.pasid, fill_e.src)
          && ent_q[fill_set][w].size == fill_e.size
          && ent_q[fill_set][w].va == fill_e.va) begin
        found    = 1'b1;
        fill_way = way_t'(w);
      end
    end
  end

  // -----------------------------------------------------------------------------------------------
  // Compare, in the accepting cycle: probe the set of each page size, and the entry being filled;
  // pick the smallest covering page
  // -----------------------------------------------------------------------------------------------
  logic         hit;
  /* verilator lint_off UNUSEDSIGNAL */  // the hit entry's tag was compared already; only its data goes on
  iotlb_entry_t hit_e;
  /* verilator lint_on UNUSEDSIGNAL */
  set_t         hit_set;
  way_t         hit_way;
  logic         fill_covers;
  iotlb_rsp_t   rsp_d;

  always_comb begin
    set_t         idx;
    iotlb_entry_t e;
    logic         covers;
    fill_covers = fill_now
                  && same_tag(fill_e.did, fill_e.pasid, fill_e.src, lkup_i.did, lkup_i.pasid, lkup_i.src)
                  && ((fill_e.va ^ lkup_i.va) & page_mask(fill_e.size)) == '0
                  && (!lkup_i.is_write || fill_e.d);
    hit     = 1'b0;
    hit_e   = '0;
    hit_set = '0;
    hit_way = '0;
    for (int sz = 0; sz < 3; sz++) begin
      if (!hit && fill_covers && fill_e.size == iotlb_size_e'(sz)) begin
        hit     = 1'b1;
        hit_e   = fill_e;
        hit_set = fill_set;
        hit_way = fill_way;
      end
      for (int p = 0; p < int'(NPROBE); p++) begin
        idx = set_of(lkup_i.va, (NPROBE == 1) ? 0 : p);
        for (int w = 0; w < int'(WAYS); w++) begin
          e = ent_q[idx][w];
          covers = valid_q[idx][w] && same_tag(e.did, e.pasid, e.src, lkup_i.did, lkup_i.pasid, lkup_i.src)
                   && ((e.va ^ lkup_i.va) & page_mask(e.size)) == '0 && (!lkup_i.is_write || e.d);
          if (!hit && covers && e.size == iotlb_size_e'(sz) && (NPROBE == 1 || p == sz)) begin
            hit     = 1'b1;
            hit_e   = e;
            hit_set = idx;
            hit_way = way_t'(w);
          end
        end
      end
    end
    // a hit on an entry the invalidation accepted this cycle or the running one removes is a miss
    // (header: lookups in flight)
    if ((inv_fire && doomed(inv_i, hit_e.did, hit_e.pasid, hit_e.va, hit_e.size))
        || (inv_state_q == ST_WALK && doomed(inv_q, hit_e.did, hit_e.pasid, hit_e.va, hit_e.size))) begin
      hit = 1'b0;
    end

    rsp_d = '0;
    if (hit) begin
      rsp_d.hit   = 1'b1;
      rsp_d.size  = hit_e.size;
      rsp_d.frame = hit_e.frame;
      rsp_d.rw    = hit_e.rw;
      rsp_d.us    = hit_e.us;
      rsp_d.d     = hit_e.d;
    end
  end

  // replacement state after this cycle's hit and fill (a fill in the hit's set sees the hit first)
  plru_t plru_hit_d, plru_fill_d;
  always_comb begin
    plru_hit_d  = plru_touch(plru_q[hit_set], hit_way);
    plru_fill_d = plru_touch((lkup_fire && hit && hit_set == fill_set) ? plru_hit_d : plru_q[fill_set],
                             fill_way);
  end

  // -----------------------------------------------------------------------------------------------
  // Flops
  // -----------------------------------------------------------------------------------------------
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      for (int s = 0; s < int'(SETS); s++) begin
        valid_q[s] <= '0;
        plru_q[s]  <= '0;
        for (int w = 0; w < int'(WAYS); w++) ent_q[s][w] <= '0;
      end
      rsp_valid_o <= 1'b0;
      rsp_old_q   <= 1'b0;
      rsp_o       <= '0;
      rsp_user_o  <= '0;
      inv_state_q <= ST_IDLE;
      inv_q       <= '0;
      walk_q      <= '0;
    end else begin
      // the answer (a lookup is accepted only when the register is empty or its answer leaves)
      if (lkup_fire) begin
        rsp_valid_o <= 1'b1;
        rsp_o       <= rsp_d;
        rsp_user_o  <= lkup_user_i;
        rsp_old_q   <= 1'b0;                                // same cycle as an invalidation: after it
      end else begin
        if (rsp_ready_i) rsp_valid_o <= 1'b0;
        if (inv_fire)    rsp_old_q   <= 1'b1;               // the answer waiting (if any) is in flight
      end

      // replacement state (plru_fill_d already includes a hit in the same set this cycle)
      if (lkup_fire && hit) plru_q[hit_set]  <= plru_hit_d;
      if (fill_now)         plru_q[fill_set] <= plru_fill_d;

      if (fill_now) begin
        ent_q[fill_set][fill_way]   <= fill_e;
        valid_q[fill_set][fill_way] <= 1'b1;
      end

      // invalidation
      unique case (inv_state_q)
        ST_IDLE: if (inv_fire) begin
          inv_q       <= inv_i;
          walk_q      <= '0;
          inv_state_q <= ST_WALK;
        end
        ST_WALK: begin
          for (int w = 0; w < int'(WAYS); w++) begin
            if (doomed(inv_q, ent_q[walk_q][w].did, ent_q[walk_q][w].pasid, ent_q[walk_q][w].va,
                       ent_q[walk_q][w].size)) valid_q[walk_q][w] <= 1'b0;
          end
          walk_q <= walk_q + set_t'(1);
          if (32'(walk_q) == SETS - 1) inv_state_q <= ST_DONE;
        end
        ST_DONE: if (done_fire) inv_state_q <= ST_IDLE;
        default: inv_state_q <= ST_IDLE;
      endcase
    end
  end

endmodule

`resetall
