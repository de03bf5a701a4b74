`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types of the page request queue writer (rtl/prq.sv): what it gets with each received page request
// besides the parsed header, and what it reports per request. Field names follow vtd.md §2.5 / §5.2
// and models/iommu_queues.py (PageRequestQueue, PrqCounters). Kept apart from iommu_pkg until the lead
// folds them in.
package prq_pkg;

  // PGTT of the PASID entry (vtd §2.5). Only these two pass the page-request lookup in this design:
  // second-stage and nested entries fault 0x5B (SPT.4) in pasid_lookup.
  localparam logic [2:0] PGTT_FIRST_STAGE = 3'b001;
  localparam logic [2:0] PGTT_PASS_THROUGH = 3'b100;

  // The context/PASID lookup of one page request (pasid_lookup kind PL_PAGE_REQ, answer
  // pasid_lookup_pkg::pl_rsp_t), reduced to what the queue needs:
  // * disabled: GSTS.TES = 0, nothing was looked up (pl_rsp_t.disabled);
  // * reason:   the fault reason (FRCD.FR code, pasid_lookup_pkg::pl_fault_e value), 0 = no fault;
  // * fpd:      an FPD bit was seen on the way (a qualified fault is then not recorded, vtd §2.6);
  // * without a fault, the PASID entry's did and pgtt and the PASID the request is processed with
  //   (its own, or RID_PASID without a PASID prefix: pl_rsp_t.pasid), for the implicit invalidation
  //   of vtd §4.7. Don't-care when disabled or faulting.
  typedef struct packed {
    logic        disabled;
    logic [7:0]  reason;
    logic        fpd;
    logic [15:0] did;
    logic [2:0]  pgtt;
    logic [19:0] pasid;
  } prq_lookup_t;

  // What became of a request (models.iommu_queues.PrqCounters): queued, or not queued for one of the
  // causes of vtd §5.2 Table 31 in the model's order (disabled, fault, overflow, full).
  typedef enum logic [2:0] {
    PRQ_QUEUED   = 3'd0,  // descriptor written, PQT advanced, PRS.PPR set
    PRQ_DISABLED = 3'd1,  // GSTS.TES = 0
    PRQ_FAULT    = 3'd2,  // remapping-table fault (recorded unless FPD suppressed it)
    PRQ_OVERFLOW = 3'd3,  // PRS.PRO was already set
    PRQ_FULL     = 3'd4   // the queue was full: PRS.PRO set now
  } prq_cause_e;

  // responded: not queued and an automatic PRG response was sent (the request needed one); not queued
  // and responded = 0: dropped. Always 0 for PRQ_QUEUED.
  typedef struct packed {
    prq_cause_e cause;
    logic       responded;
  } prq_outcome_t;

  // PRG Response codes (pcie §4.2)
  localparam logic [3:0] PRG_SUCCESS         = 4'b0000;
  localparam logic [3:0] PRG_INVALID_REQUEST = 4'b0001;

endpackage

`resetall
