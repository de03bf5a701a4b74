"""Pure-Python reference for svm-iommu (no simulator imports anywhere in this package).

Modules: ``bits`` (bit-field structures), ``paging`` (first-stage entry format), ``vtd`` (VT-d 5.10
scalable-mode structures, descriptors, register page, fault reasons), ``tlp`` (PCIe TLP codec with the
PASID prefix, ATS and PRI), ``host`` (host memory, frame allocator, process address spaces),
``iommu`` (golden IOMMU model), ``endpoint`` (PCIe endpoint with PASID/ATS/PRI), ``svm`` (SVM driver).
"""
