"""Documents generated from the models stay in step with them."""

from pathlib import Path

from models.iommu import render_fault_priority

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_fault_priority_page_matches_model():
    page = (DOCS / "fault-priority.md").read_text()
    table = render_fault_priority().strip()
    assert table in page, "docs/fault-priority.md is stale: regenerate the table with render_fault_priority()"
