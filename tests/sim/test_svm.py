"""Simulation: the SVM software loop against the whole IOMMU (rtl/iommu_top.sv through tb/rtl/iommu_tb.sv):
endpoint agents and the SVM driver (models.svm) on tb/svm_env.py, scored by the golden model
(tb/cocotb_svm.py). Same sources and build as tests/sim/test_iommu.py. Each case's pytest id is its test
name (the first column of the `make sim` table). svm_random: COUNT= DMA jobs (default 150), SEED= to rerun;
svm_random_small runs it on test_iommu's minimal configuration (4-entry IOTLB, 2 walks, one context and one
PASID-cache entry: the same build as iommu_random_small)."""

import pytest

from tb import runner
from tests.sim import test_iommu as _iommu

SOURCES = _iommu.SOURCES
TESTS = ["svm_bind", "svm_demand_fault", "svm_sharing", "svm_bind_refcount", "svm_responses",
         "svm_prq_overflow", "svm_unmap_in_flight", "svm_supervisor", "svm_bad_descriptors",
         "svm_bad_messages", "svm_ite", "svm_random"]
CASES = [(t, t, {}) for t in TESTS] + [("svm_random_small", "svm_random", _iommu.SMALL)]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_svm(name, testcase, params):
    runner.run("iommu_tb", SOURCES, "tb.cocotb_svm", testcase, parameters=params, name=name)
