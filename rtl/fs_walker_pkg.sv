`resetall
`timescale 1ns / 1ps
`default_nettype none

// Request / response types of the first-stage page walker (rtl/fs_walker.sv; vtd.md §3).
// Kept apart from iommu_pkg so the walker can be built and tested on its own; the lead may fold
// these types into iommu_pkg.
package fs_walker_pkg;

  // What the request does with the page (vtd.md §3.3, §3.5). An ATS translation request is a
  // read, or read+write unless NW=1 with ECAP.NWFS=1.
  typedef enum logic [1:0] {
    FS_READ        = 2'd0,
    FS_WRITE       = 2'd1,
    FS_ATOMIC      = 2'd2,
    FS_TRANSLATION = 2'd3
  } fs_kind_e;

  // Size of the page a leaf maps (vtd.md §3.1: PTE, PDE with PS=1, PDPE with PS=1).
  typedef enum logic [1:0] {
    FS_PAGE_4K = 2'd0,
    FS_PAGE_2M = 2'd1,
    FS_PAGE_1G = 2'd2
  } fs_page_e;

  // Outcome of a walk: FS_OK or the fault reason code (vtd.md §6.1). These are the first-stage rows
  // of FAULT_PRIORITY (models/iommu.py, docs/fault-priority.md), listed in the order they are checked.
  typedef enum logic [7:0] {
    FS_OK          = 8'h00,
    FS_SGN_1       = 8'h80,  // non-canonical input address
    FS_SFS_4       = 8'h73,  // read error of the entry in the table at FSPTPTR
    FS_SFS_1       = 8'h70,  // read error of an entry of a lower table
    FS_SFS_2       = 8'h71,  // P=0
    FS_SFS_3       = 8'h72,  // reserved bits set
    FS_SFS_9       = 8'h90,  // A/EA/D must be set but the walk is not snooped
    FS_SFS_10      = 8'h91,  // the atomic A/EA/D update failed
    FS_SGN_4       = 8'h83,  // output address at or above 2^HAW
    FS_SGN_8       = 8'h87,  // output address in the interrupt window 0xFEE0_0000-0xFEEF_FFFF
    FS_SGN_2       = 8'h81,  // user request, AND(U/S)=0
    FS_SGN_6       = 8'h85   // write not allowed
  } fs_fault_e;

  // One walk, as the PASID stage hands it over. The opaque tag travels on its own port.
  typedef struct packed {
    logic [51:0] fsptptr;     // PASID entry FSPTPTR: address bits 63:12 of the top table
    logic        level5;      // FSPM=01: 5-level paging (else 4-level)
    logic [63:0] addr;        // input (untranslated) address
    fs_kind_e    kind;
    logic        nw;          // No-Write of an ATS translation request (ignored for other kinds)
    logic        supervisor;  // PR=1 processed with SRE=1 (vtd.md §3.3)
    logic        wpe;         // PASID entry WPE
    logic        eafe;        // PASID entry EAFE: set EA together with A
    logic        snooped;     // ECAP.SMPWCS=1 and PASID entry PWSNP=1: A/D updates are allowed
  } fs_req_t;

  // The walk's answer. When a leaf was reached (leaf=1) the page fields are valid, also for the
  // faults found at or after the leaf (0x83, 0x87, 0x81, 0x90/0x91 at the leaf, 0x85); with leaf=0
  // they are all zero. r/w are what the page grants this request (models.iommu.Translation.r/w): an
  // ATS translation request that faults with 0x85 is answered with them (Seff), and one with NW=1
  // (NWFS=1) gets w=0 without a fault.
  typedef struct packed {
    fs_fault_e   fault;
    logic        leaf;
    logic [39:0] page;        // output page: address bits 51:12 (low bits 0 for 2M/1G pages)
    fs_page_e    size;
    logic        rw;          // AND of R/W over every level
    logic        us;          // AND of U/S over every level
    logic        d;           // leaf D after the walk's update
    logic        r;           // read granted
    logic        w;           // write granted
  } fs_rsp_t;

  // The checks at a leaf that depend only on the page reached and the request (FAULT_PRIORITY stages
  // "output", "access_user" and "access_write"), shared by the walker's leaf evaluation and the IOTLB
  // hit path of iommu_top so that both decide alike. page/size: the leaf's output page; addr: the
  // input address; rw/us: AND of R/W and U/S over the walk.
  typedef struct packed {
    logic above_haw;  // output (an ATS request: its whole page) at or above 2^HAW (0x83)
    logic in_irq;     // output (ATS: the page) overlaps 0xFEE0_0000-0xFEEF_FFFF (0x87)
    logic read_ok;    // vtd.md §3.3: supervisor, or U/S=1 at every level (else 0x81)
    logic write_ok;   // vtd.md §3.3: supervisor needs R/W only with WPE=1; user needs R/W and U/S
  } fs_access_t;

  localparam logic [51:0] FS_IRQ_BASE = 52'hFEE0_0000;

  // Output address bits 51:0 of the input address (its low 30 bits: the offset in any page size).
  function automatic logic [51:0] fs_output(input logic [39:0] page, input fs_page_e size,
                                            input logic [29:0] addr);
    unique case (size)
      FS_PAGE_1G: return {page[39:18], addr[29:0]};
      FS_PAGE_2M: return {page[39:9], addr[20:0]};
      default:    return {page, addr[11:0]};
    endcase
  endfunction

  function automatic fs_access_t fs_access(input int haw, input logic [39:0] page, input fs_page_e size,
                                           input logic [29:0] addr, input logic translation,
                                           input logic supervisor, input logic wpe, input logic rw,
                                           input logic us);
    fs_access_t  a;
    logic [51:0] checked, ignored, above;
    checked = fs_output(page, size, addr);
    ignored = 52'hF_FFFF;                            // the window is 1 MiB aligned
    if (translation) begin
      checked = {page, 12'h0};
      if (size == FS_PAGE_2M) ignored = 52'h1F_FFFF;
      if (size == FS_PAGE_1G) ignored = 52'h3FFF_FFFF;
    end
    above      = ~((52'h1 << haw) - 52'h1);
    // pages are size-aligned and 2^HAW is a multiple of every page size (HAW >= 32), so for a page
    // "base + size > 2^HAW" is "base >= 2^HAW"
    a.above_haw = (checked & above) != '0;
    a.in_irq    = ((checked ^ FS_IRQ_BASE) & ~ignored) == '0;
    a.read_ok   = supervisor || us;
    a.write_ok  = supervisor ? (rw || !wpe) : (rw && us);
    return a;
  endfunction

endpackage

`resetall
