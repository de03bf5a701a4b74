#!/usr/bin/env python3
"""make waves TEST=<name> [SEED=<n>]: rerun one simulation test with tracing and print the dump's path.

TEST is the name a test prints and records (the first column of the `make sim` table), which is also the
pytest id used to select it.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(test: str) -> int:
    t0 = time.time()
    env = dict(os.environ, WAVES="1")
    base = [sys.executable, "-m", "pytest", "-m", "sim", "-q", "-p", "no:cacheprovider"]
    ids = subprocess.run(base + ["tests/sim", "--collect-only"], cwd=ROOT, capture_output=True,
                         text=True).stdout.split()
    nodes = [n for n in ids if n.endswith(f"[{test}]")]
    if not nodes:
        print(f"waves: no simulation test named {test!r}; known: "
              + ", ".join(sorted(n.split("[")[-1].rstrip("]") for n in ids if "[" in n)))
        return 2
    rc = subprocess.call(base + nodes, cwd=ROOT, env=env)
    dumps = [p for ext in ("fst", "vcd") for p in (ROOT / "sim_build").glob(f"*/run-{test}/dump.{ext}")
             if p.stat().st_mtime >= t0 - 1]
    if not dumps:
        print(f"waves: no dump was written for {test!r} (is the name right? see the first column of make sim)")
        return rc or 1
    for p in dumps:
        print(f"waves: {p}")
    print("view with: gtkwave <file>  (apt-get install gtkwave)")
    return rc


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: waves.py TEST")
    sys.exit(main(sys.argv[1]))
