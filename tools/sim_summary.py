#!/usr/bin/env python3
"""Print the table of simulation results written by tb.stats (one JSON per test)."""

import json
import sys
from pathlib import Path


def main(d: str) -> int:
    recs = [json.loads(p.read_text()) for p in sorted(Path(d).glob("*.json"))] if Path(d).is_dir() else []
    if not recs:
        print("sim summary: no simulation results were recorded")
        return 1
    cols = ["test", "result", "checked", "mismatches", "cycles", "wall_s", "seed"]
    rows = [[str(r.get(c, "")) for c in cols] for r in recs]
    rows.append(["TOTAL", f"{sum(r['result'] == 'PASS' for r in recs)}/{len(recs)} pass",
                 str(sum(r["checked"] for r in recs)), str(sum(r["mismatches"] for r in recs)),
                 str(sum(r["cycles"] for r in recs)), f"{sum(r['wall_s'] for r in recs):.1f}", ""])
    w = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w[i]) for i, c in enumerate(cols))
    print("\n" + line + "\n" + "-" * len(line))
    for row in rows:
        if row[0] == "TOTAL":
            print("-" * len(line))
        print("  ".join(v.ljust(w[i]) for i, v in enumerate(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "sim_build/stats"))
