"""`python -m bench --update bench_x`: only bench_x is run; every other module's figures are kept from
bench/results/latest.json and the full table is written, saying which run each module came from."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.__main__ as main_module


def _modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ran: list[str]) -> None:
    for name in ("bench_a", "bench_b"):
        (tmp_path / f"{name}.py").write_text("")

    def fake(name: str) -> SimpleNamespace:
        short = name.removeprefix("bench.")
        ran.append(short)
        return SimpleNamespace(run=lambda: {"figure": 2.0})

    monkeypatch.setattr(main_module, "HERE", tmp_path)
    monkeypatch.setattr("importlib.import_module", fake)
    monkeypatch.setattr(main_module, "_postgres", lambda: "test")


def test_an_update_runs_one_module_and_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    _modules(tmp_path, monkeypatch, ran)
    (tmp_path / "results").mkdir()
    earlier = {"at": "2026-01-01T00:00:00+00:00", "results": {"bench_a": {"figure": 1.0}, "bench_b": {"figure": 1.0}}}
    (tmp_path / "results" / "latest.json").write_text(json.dumps(earlier))
    assert main_module.main(["--update", "bench_b"]) == 0
    assert ran == ["bench_b"]
    record = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert record["results"] == {"bench_a": {"figure": 1.0}, "bench_b": {"figure": 2.0}}
    assert record["runs"]["bench_a"] == "2026-01-01T00:00:00+00:00" and record["runs"]["bench_b"] == record["at"]
    table = (tmp_path / "RESULTS.md").read_text()  # the full table, not results/RESULTS.md
    assert "This run measured bench_b; carried from earlier runs" in table
    assert "bench_a (2026-01-01T00:00:00+00:00)" in table


def test_a_partial_run_without_update_leaves_the_full_table_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    _modules(tmp_path, monkeypatch, ran)
    assert main_module.main(["bench_b"]) == 0
    assert not (tmp_path / "RESULTS.md").exists() and (tmp_path / "results" / "RESULTS.md").exists()
    with pytest.raises(SystemExit, match="no figures for"):  # an update needs every other module's figures
        (tmp_path / "results" / "latest.json").write_text(json.dumps({"at": "x", "results": {}}))
        main_module.main(["--update", "bench_b"])
    assert ran == ["bench_b"]  # refused before running anything


def test_an_update_without_latest_json_carries_what_results_md_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/results/ is not kept in the repository: on a fresh checkout the figures come from the table."""
    from bench import results_table

    ran: list[str] = []
    _modules(tmp_path, monkeypatch, ran)
    (tmp_path / "bench_c.py").write_text("")  # a module no row shows
    rows = [
        results_table.Row(1, "A", "bench_a.figure", "s", results_table.Target("reported")),
        results_table.Row(1, "B", "bench_b.figure", "s", results_table.Target("reported")),
    ]
    monkeypatch.setattr(results_table, "ROWS", rows)
    earlier = {"bench_a": {"figure": 1.25}, "bench_b": {"figure": 9.0}}
    (tmp_path / "RESULTS.md").write_text(results_table.document(rows, earlier, "run started 2026-01-01T00:00:00Z; x"))
    assert main_module.main(["--update", "bench_b"]) == 0
    assert ran == ["bench_b"]
    record = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert record["results"] == {"bench_a": {"figure": 1.25}, "bench_b": {"figure": 2.0}, "bench_c": {}}
    table = (tmp_path / "RESULTS.md").read_text()
    assert "| A (issue 1) | 1.25 s |" in table and "| B (issue 1) | 2 s |" in table
    assert "bench_a (2026-01-01T00:00:00Z)" in table and "read back from bench/RESULTS.md" in table


def test_carried_rows_are_shown_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ratio recomputed from rounded cells may differ in its last digit: a carried row keeps its line,
    and the summary counts the lines shown."""
    from bench import results_table
    from bench.results_table import Row, Target

    ran: list[str] = []
    _modules(tmp_path, monkeypatch, ran)
    rows = [
        Row(1, "A", "bench_a.figure", "/s", Target("ratio_at_least", 3.855), "bench_a.anchor", "x"),
        Row(1, "B", "bench_b.figure", "s", Target("reported")),
    ]
    monkeypatch.setattr(results_table, "ROWS", rows)
    earlier = {"bench_a": {"figure": 33.949, "anchor": 8.7951}, "bench_b": {"figure": 9.0}}  # 3.860×: met
    old = results_table.document(rows, earlier, "run started 2026-01-01T00:00:00Z; x")
    assert "| 3.86× | ≥ 3.85× — met |" in old and "1 of 1 targets met." in old
    (tmp_path / "RESULTS.md").write_text(old)
    assert main_module.main(["--update", "bench_b"]) == 0
    table = (tmp_path / "RESULTS.md").read_text()
    a_line = next(line for line in old.splitlines() if line.startswith("| A (issue 1)"))
    assert a_line in table.splitlines()  # read back as 33.9 / 8.8 it would be 3.85×, "not met"
    assert "1 of 1 targets met." in table
