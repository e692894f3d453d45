"""`make bench`: run every bench/bench_*.py module's `run()`, print one table, keep the figures.

Each module measures its anchor in the same run and reports ratios; absolute numbers are shown
for context only (these machines are noisy).
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("bench_*.py"))
    results: dict[str, dict[str, float]] = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        figures = module.run()
        for key, value in figures.items():
            print(f"   {key:36} {value:12.3f}", flush=True)
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
        results[name] = figures
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
    }
    (out / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"figures written to {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
