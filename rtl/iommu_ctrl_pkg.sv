`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types of the IOMMU control block (rtl/iommu_ctrl.sv): the fault record the translation pipeline
// hands over for primary fault logging (vtd.md §6.3, FRCD layout §1.9) and the status bits the
// invalidation queue and the page request queue ask the control block to set (vtd.md §1.12).
package iommu_ctrl_pkg;

  // One fault to log. Field names and meanings are the FRCD's (vtd §1.9); the control block copies
  // them into FRCD[index] unchanged, except PV, which it writes as 0 when PP = 0.
  typedef struct packed {
    logic [7:0]  fr;    // fault reason (models.vtd.FaultReason)
    logic [15:0] sid;   // requester ID
    logic        pp;    // the request carried a PASID
    logic [19:0] pv;    // its PASID value (ignored when pp = 0)
    logic        priv;  // supervisor request: PMR of the PASID prefix (0 without a PASID)
    logic        exe;   // execute requested: ER of the PASID prefix
    logic        t1;    // request type {T1, T2}: 00 write, 01 page request, 10 read, 11 atomic
    logic        t2;
    logic [1:0]  at;    // address type: 00 untranslated, 01 translation request, 10 translated
    logic [51:0] fi;    // faulting address bits 63:12
  } fault_rec_t;

  // Status bits the invalidation queue sets: IQE / ICE / ITE (FSTS, fault event) and IWC (ICS,
  // invalidation completion event).
  typedef enum logic [1:0] {
    IQ_SET_IQE = 2'd0,
    IQ_SET_ICE = 2'd1,
    IQ_SET_ITE = 2'd2,
    IQ_SET_IWC = 2'd3
  } iq_status_e;

  // Status bits the page request queue sets (PRS, page request event).
  typedef enum logic [0:0] {
    PRQ_SET_PPR = 1'd0,
    PRQ_SET_PRO = 1'd1
  } prq_status_e;

  // The three interrupt event groups of vtd §1.12, as indices of the control block's event arrays.
  localparam int unsigned EV_FAULT = 0;  // FSTS.PPF|PFO|IQE|ICE|ITE, FECTL/FEDATA/FEADDR/FEUADDR
  localparam int unsigned EV_INV   = 1;  // ICS.IWC, IECTL/IEDATA/IEADDR/IEUADDR
  localparam int unsigned EV_PRQ   = 2;  // PRS.PPR|PRO, PECTL/PEDATA/PEADDR/PEUADDR
  localparam int unsigned EV_N     = 3;

endpackage
