"""Simulation: rtl/pasid_lookup.sv under Verilator, scored against models.iommu (tb/cocotb_pasid_lookup.py).

Each case's pytest id is its test name (the first column of the `make sim` table): the cocotb test name,
plus the configuration for the two non-default builds:
  alt  - 64-bit AXI data, 2 lookups in flight, tiny caches (eviction); VER 7 (ER faults SPT.5), 16-bit
         PASIDs, ADMS (TTM=11 aborts), RPS=0, RPRIVS, PTRS, PT, no 5-level paging, HAW 40;
  wide - 512-bit AXI data, 3 lookups in flight; SRS=0, MTS, SC, EAFS, HPTS, SSADS, C=0, HAW 52.
"""

import json

import pytest

from tb import runner
from tb.cocotb_pasid_lookup import rtl_parameters

SOURCES = runner.rtl("pasid_lookup_pkg.sv", "pasid_lookup.sv")
TESTS = ["pasid_lookup_random", "pasid_lookup_faults", "pasid_lookup_stale", "pasid_lookup_bitflip"]
CONFIGS = {
    "": ({}, {}),
    "alt": (dict(AXI_DATA_W=64, SLOTS=2, CTX_ENTRIES=2, PE_ENTRIES=3),
            dict(haw=40, ver_max=7, pss=15, adms=1, rps=0, rprivs=1, ptrs=1, pt=1, fs5lp=0)),
    "wide": (dict(AXI_DATA_W=512, SLOTS=3, CTX_ENTRIES=4, PE_ENTRIES=8),
             dict(haw=52, srs=0, mts=1, sc=1, eafs=1, hpts=1, ssads=1, c=0)),
}
CASES = [(f"{t}_{c}" if c else t, t, c) for c in CONFIGS for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,config", CASES, ids=[c[0] for c in CASES])
def test_pasid_lookup(name, testcase, config):
    params, profile = CONFIGS[config]
    runner.run("pasid_lookup", SOURCES, "tb.cocotb_pasid_lookup", testcase,
               parameters=dict(params, **rtl_parameters(profile)), name=name,
               extra_env={"PL_PROFILE": json.dumps(profile), "PL_SLOTS": str(params.get("SLOTS", 4))})
