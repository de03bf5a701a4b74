"""Simulation: the whole IOMMU (rtl/iommu_top.sv through tb/rtl/iommu_tb.sv) under Verilator, scored
against models.iommu (tb/cocotb_iommu.py on tb/iommu_env.py).

Sources: every file of the Makefile's RTL list (read from the Makefile, so the two never disagree),
packages first, plus the three the top needs, then the testbench wrapper. Each case's pytest id is its
test name (the first column of the `make sim` table); iommu_random_small runs iommu_random on a
minimal configuration (4-entry direct-mapped IOTLB, 2 walks, one context and one PASID-cache entry)."""

import re

import pytest

from tb import runner


def _sources() -> list:
    text = (runner.ROOT / "Makefile").read_text()
    block = re.search(r"^RTL\s*:=((?:.*\\\n)*.*)$", text, re.M).group(1)
    names = [p.split("/", 1)[1] for p in re.findall(r"rtl/\w+\.sv", block)]
    names += [n for n in ("fault_info_pkg.sv", "axi_mux.sv", "iommu_top.sv") if n not in names]
    names = [n for n in names if n.endswith("_pkg.sv")] + [n for n in names if not n.endswith("_pkg.sv")]
    return [*runner.rtl(*names), runner.ROOT / "tb" / "rtl" / "iommu_tb.sv"]


SOURCES = _sources()
SMALL = dict(IOTLB_ENTRIES=4, IOTLB_WAYS=1, N_WALKS=2, CTX_ENTRIES=1, PE_ENTRIES=1)
TESTS = ["iommu_pages", "iommu_5level", "iommu_faults", "iommu_user_supervisor", "iommu_ad",
         "iommu_frcd_overflow", "iommu_fault_msi", "iommu_ats", "iommu_translated", "iommu_bad_tlps",
         "iommu_page_requests", "iommu_inv_queue", "iommu_inv_drain",
         "iommu_random"]
CASES = [(t, t, {}) for t in TESTS] + [("iommu_random_small", "iommu_random", SMALL)]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_iommu(name, testcase, params):
    runner.run("iommu_tb", SOURCES, "tb.cocotb_iommu", testcase, parameters=params, name=name)
