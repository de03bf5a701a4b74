`resetall
`timescale 1ns / 1ps
`default_nettype none

// Types of the IOTLB (rtl/iotlb.sv). Kept apart from iommu_pkg until the lead folds them in.
// What an entry holds follows vtd.md §3.7 (SPEC §6.2.4): tags DID, PASID, input page, page size;
// data frame, AND(R/W), AND(U/S) over the walk, leaf D. Only first-stage translations (PGTT=001) are
// cached here, so no PGTT is stored.
package iotlb_pkg;

  // Leaf page size (vtd.md §3.1: PTE 4 KiB, PDE PS=1 2 MiB, PDPE PS=1 1 GiB). 2'd3 is reserved: a fill
  // carrying it is accepted and dropped.
  typedef enum logic [1:0] {
    PS_4K = 2'd0,
    PS_2M = 2'd1,
    PS_1G = 2'd2
  } iotlb_size_e;

  // Invalidation granularities, one per descriptor granularity that reaches the IOTLB (vtd.md §4.2,
  // §4.3). The IQ passes the descriptor's meaning through; iotlb.sv applies the §4.3 rules for
  // first-stage entries. Reserved codes (5-7) invalidate everything (more than asked is always legal).
  typedef enum logic [2:0] {
    INV_GLOBAL      = 3'd0,  // iotlb_inv_dsc G=01: every entry
    INV_DOMAIN      = 3'd1,  // iotlb_inv_dsc G=10: DID
    INV_DOMAIN_PAGE = 3'd2,  // iotlb_inv_dsc G=11: first-stage entries of the DID, all addresses
    INV_PASID       = 3'd3,  // p_iotlb_inv_dsc G=10: DID + PASID
    INV_PASID_PAGE  = 3'd4   // p_iotlb_inv_dsc G=11: DID + PASID + pages overlapping ADDR/AM
  } iotlb_inv_e;

  // Input addresses are 57 bits (5-level first stage, vtd.md §3.1). The caller has done the canonical
  // check, so bits 63:57 repeat bit 56 (or bit 47 with 4 levels) and carry no information.

  // A lookup: the tags plus the access kind (a write must not hit an entry with D=0, vtd.md §3.7).
  // With MATCH_SRC=1 (iotlb.sv) lookups match the request's source tag instead of DID/PASID: the
  // requester ID, whether it carried a PASID, and that PASID ({rid, pv, pasid}, pasid 0 without one).
  // Known as soon as the TLP is parsed, so the IOTLB can be looked up in parallel with the context and
  // PASID caches; DID/PASID stay in the entry for invalidation.

  typedef struct packed {
    logic [15:0] did;
    logic [19:0] pasid;
    logic [36:0] src;        // MATCH_SRC=1: the tag compared instead of did/pasid
    logic [56:12] va;        // input address bits 56:12
    logic        is_write;   // write/atomic, or an ATS translation request treated as a write (vtd.md §3.5)
  } iotlb_lkup_t;

  // One IOTLB entry, also the fill request (va may point anywhere inside the page; the IOTLB keeps
  // the page-aligned part, and likewise for frame).
  typedef struct packed {
    logic [15:0] did;
    logic [19:0] pasid;
    logic [36:0] src;        // MATCH_SRC=1: the source tag of the request whose walk filled it
    logic [56:12] va;        // input page, bits 56:12
    iotlb_size_e size;
    logic [51:12] frame;     // output page base, bits 51:12
    logic        rw;         // AND of R/W over every level of the walk
    logic        us;         // AND of U/S over every level of the walk
    logic        d;          // leaf D
  } iotlb_entry_t;

  // A lookup's answer. On a miss every other field is zero.
  typedef struct packed {
    logic        hit;
    iotlb_size_e size;
    logic [51:12] frame;
    logic        rw;
    logic        us;
    logic        d;
  } iotlb_rsp_t;

  // An invalidation (vtd.md §4.2 field names). addr/am only matter for INV_PASID_PAGE: the range is
  // ADDR with its low AM page-number bits cleared, 2^(12+AM) bytes long.
  typedef struct packed {
    iotlb_inv_e  kind;
    logic [15:0] did;
    logic [19:0] pasid;
    logic [56:12] addr;
    logic [5:0]  am;
  } iotlb_inv_t;

endpackage

`resetall
