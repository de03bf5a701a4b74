"""Simulation: rtl/iommu_ctrl.sv behind the generated register page (rtl/iommu_regs_ctrl.sv) under
Verilator, scored against models.iommu.Iommu (tb/cocotb_ctrl.py).

Each case's pytest id is its test name (the first column of the `make sim` table). The `_w64` case
runs the random test with a 64-bit message port (the data lane follows the address)."""

import pytest

from tb import runner

SOURCES = runner.rtl("iommu_reg_pkg.sv", "iommu_ctrl_pkg.sv", "iommu_regs.sv", "iommu_ctrl.sv",
                     "iommu_regs_ctrl.sv")
CASES = [
    ("ctrl_directed", "ctrl_directed", {}),
    ("ctrl_read_pushes_msi", "ctrl_read_pushes_msi", {}),
    ("ctrl_random", "ctrl_random", {}),
    ("ctrl_streaming", "ctrl_streaming", {}),
    ("ctrl_backlog", "ctrl_backlog", {}),
    ("ctrl_random_w64", "ctrl_random", {"AXI_DATA_W": 64}),
]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_ctrl(name, testcase, params):
    runner.run("iommu_regs_ctrl", SOURCES, "tb.cocotb_ctrl", testcase, parameters=params, name=name)