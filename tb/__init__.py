"""cocotb side of svm-iommu: bus agents, scoreboards and the cocotb test modules (run through tb.runner)."""
