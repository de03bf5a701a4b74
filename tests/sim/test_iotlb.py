"""Simulation: rtl/iotlb.sv under Verilator, scored against models.iommu.Caches (tb/cocotb_iotlb.py).

Each case's pytest id is its test name (the first column of the `make sim` table): the cocotb test name
plus the configuration (e16w4: 16 entries 4-way; e64fa: 64 entries fully associative; e8dm: 8 entries
direct-mapped; e16w4src: 16 entries 4-way with MATCH_SRC=1, entries matched by the source tag, as
iommu_top builds it)."""

import pytest

from tb import runner

SOURCES = runner.rtl("iotlb_pkg.sv", "iotlb.sv")
TESTS = ["iotlb_random", "iotlb_exact", "iotlb_overlap", "iotlb_stream"]
CONFIGS = {"e16w4": (16, 4, 0), "e64fa": (64, 64, 0), "e8dm": (8, 1, 0), "e16w4src": (16, 4, 1)}
USER_W = 16
CASES = [(f"{t}_{c}", t, c) for c in CONFIGS for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,config", CASES, ids=[c[0] for c in CASES])
def test_iotlb(name, testcase, config):
    entries, ways, match_src = CONFIGS[config]
    runner.run("iotlb", SOURCES, "tb.cocotb_iotlb", testcase,
               parameters={"ENTRIES": entries, "WAYS": ways, "USER_W": USER_W, "MATCH_SRC": match_src},
               name=name,
               extra_env={"IOTLB_ENTRIES": str(entries), "IOTLB_WAYS": str(ways), "IOTLB_USER_W": str(USER_W),
                          "IOTLB_MATCH_SRC": str(match_src)})
