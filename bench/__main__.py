"""`make bench`: run every bench/bench_*.py module's `run()`, print one table, keep the figures.

Each module measures its anchor in the same run and reports ratios; absolute numbers are shown
for context only (these machines are noisy). The figures go to bench/results/latest.json and, from a
run of every module, into bench/RESULTS.md (bench/results_table.py: one row per figure of every
issue, and the machine); a run of some modules writes its table to bench/results/RESULTS.md instead.
`python -m bench --update bench_x …` re-measures only those modules and keeps every other module's
figures from bench/results/latest.json (or, on a checkout without it, from what bench/RESULTS.md shows):
bench/RESULTS.md is then rewritten, its machine line saying which modules this run measured and from
which run the others were carried.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import results_table

HERE = Path(__file__).parent


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _postgres() -> str:
    try:
        from bench.bench_ledger import postgres_version

        return postgres_version()
    except Exception as error:  # no server: say so on the machine line
        return f"unavailable ({type(error).__name__})"


def machine(started: datetime, load_before: tuple[float, ...]) -> str:
    load_after = os.getloadavg()
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"PostgreSQL {_postgres()}; {platform.system()} {platform.release()}; "
        f"run started {started.isoformat(timespec='seconds')}; "
        f"load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end "
        "(the machine is shared: ratios are paired within the run, absolute rates are context)"
    )


def main(argv: list[str]) -> int:
    everything = sorted(p.stem for p in HERE.glob("bench_*.py"))
    update = "--update" in argv
    names = [arg for arg in argv if arg != "--update"] or everything
    out = HERE / "results"
    previous: dict[str, Any] = {}
    from_table = False
    old_table = ""
    if update:  # read first: a missing or partial earlier run stops here, before minutes of benches
        if (out / "latest.json").exists():
            previous = json.loads((out / "latest.json").read_text())
        else:  # a fresh checkout (results/ is not kept): the figures bench/RESULTS.md shows, as rounded there
            old_table = (HERE / "RESULTS.md").read_text()
            figures, measured = results_table.figures_from_table(old_table, results_table.ROWS)
            shown = {key.partition(".")[0] for row in results_table.ROWS for key in (row.ours, row.anchor) if key}
            for unshown in set(everything) - shown:  # a module no row shows: nothing to carry, nothing lost
                figures.setdefault(unshown, {})
                measured.setdefault(unshown, "no row in bench/RESULTS.md")
            previous = {"at": "bench/RESULTS.md", "results": figures, "runs": measured}
            from_table = True
        kept = set(previous["results"]) | set(names)
        if not kept >= set(everything):
            raise SystemExit(f"--update: no figures for {sorted(set(everything) - kept)} in {out / 'latest.json'}")
    started, load_before = datetime.now(UTC), os.getloadavg()
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
    out.mkdir(exist_ok=True)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    runs = dict.fromkeys(results, at)
    if update:
        earlier: dict[str, str] = previous.get("runs") or dict.fromkeys(previous["results"], previous["at"])
        runs = {**{name: earlier[name] for name in previous["results"]}, **runs}
        results = {**previous["results"], **results}
    record = {
        "at": at,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
        "runs": runs,  # module -> when its figures were measured
    }
    (out / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"figures written to {out / 'latest.json'}")
    table = HERE / "RESULTS.md" if set(results) >= set(everything) else out / "RESULTS.md"
    where = machine(started, load_before)
    carried = sorted(name for name in results if name not in names)
    if carried:
        sources = ", ".join(f"{name} ({runs[name]})" for name in carried)
        where += (
            f". This run measured {', '.join(names)}; carried from earlier runs (python -m bench --update): {sources}"
        )
        if from_table:
            where += " (read back from bench/RESULTS.md as it was written, rounded as shown there)"
    text = results_table.document(results_table.ROWS, results, where)
    if from_table:  # rows of carried modules exactly as they were shown
        text = results_table.keep_carried_lines(text, old_table, results_table.ROWS, set(names))
    table.write_text(text)
    print(f"table written to {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
