"""Per-test numbers (requests checked, mismatches, simulated cycles, wall time) for the ``make sim`` table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Stats:
    def __init__(self):
        self.name = os.environ.get("SVM_TEST_NAME", "unnamed")
        self.seed = int(os.environ.get("SVM_SEED", "0"))
        self.checked = 0
        self.mismatches = 0
        self.cycles = 0
        self.result = "FAIL"  # until the test says otherwise
        self.t0 = time.perf_counter()

    def rerun_hint(self) -> str:
        return f"seed {self.seed}; rerun with waves: make waves TEST={self.name} SEED={self.seed}"

    def write(self):
        d = os.environ.get("SVM_STATS_DIR")
        if not d:
            return
        Path(d).mkdir(parents=True, exist_ok=True)
        rec = dict(test=self.name, seed=self.seed, checked=self.checked, mismatches=self.mismatches,
                   cycles=self.cycles, wall_s=round(time.perf_counter() - self.t0, 3), result=self.result)
        (Path(d) / f"{self.name}.json").write_text(json.dumps(rec))
