"""bench/RESULTS.md's table (bench/results_table.py): its columns, the ratio it computes, the verdicts,
a figure the run did not produce shown as missing, and every issue's rows present."""

from __future__ import annotations

from bench.results_table import ROWS, Row, Target, document, figures_from_table, line, table

HEADER = "| measure | ours | anchor | anchor figure | ratio | target |"

RATE = Row(
    7, "Widgets made", "bench_w.ours_per_s", "/s", Target("ratio_at_least", 0.9), "bench_w.base_per_s", "a plain widget"
)
AIM = Target("ratio_at_least", 2.0, "aim 4×")
PAIRED = Row(7, "Paired", "bench_w.ours_per_s", "/s", AIM, "bench_w.base_per_s", "x", "bench_w.r")
BOUND = Row(7, "Latency p99", "bench_w.p99_ms", "ms", Target("at_most", 100.0, "ms"))


def test_the_ratio_is_ours_over_the_anchor_and_judged() -> None:
    cells = line(RATE, {"bench_w": {"ours_per_s": 450.0, "base_per_s": 500.0}}).cells
    assert cells == ("Widgets made (issue 7)", "450 /s", "500 /s", "a plain widget", "0.90×", "≥ 0.9× — met")
    below = line(RATE, {"bench_w": {"ours_per_s": 440.0, "base_per_s": 500.0}})
    assert below.met is False and below.cells[4] == "0.88×" and below.cells[5] == "≥ 0.9× — **not met**"


def test_a_paired_ratio_from_the_bench_wins_over_the_cells() -> None:
    entry = line(PAIRED, {"bench_w": {"ours_per_s": 300.0, "base_per_s": 100.0, "r": 2.6}})
    assert entry.cells[4] == "2.60×" and entry.cells[5] == "≥ 2× (aim 4×) — met" and entry.met


def test_a_missing_figure_is_shown_missing_not_judged() -> None:
    entry = line(RATE, {"bench_w": {"base_per_s": 500.0}})
    assert entry.cells[1] == "missing" and entry.cells[4] == "missing"
    assert entry.met is None and entry.cells[5] == "≥ 0.9× — not measured"
    nothing = line(PAIRED, {})
    assert nothing.cells[1:3] == ("missing", "missing") and nothing.met is None


def test_a_bound_without_an_anchor() -> None:
    assert line(BOUND, {"bench_w": {"p99_ms": 42.0}}).cells == (
        "Latency p99 (issue 7)",
        "42.0 ms",
        "—",
        "—",
        "—",
        "≤ 100 (ms) — met",
    )
    assert line(BOUND, {"bench_w": {"p99_ms": 101.0}}).met is False


COMPARED = Row(
    7, "Waiting", "bench_w.ours_per_s", "/s", Target("ratio_compared", 0.5, "judged below"), "bench_w.base_per_s", "x"
)


def test_a_compared_ratio_says_whether_it_reaches_the_bound_but_is_not_counted() -> None:
    under = line(COMPARED, {"bench_w": {"ours_per_s": 40.0, "base_per_s": 100.0}})
    assert under.met is None and under.cells[4] == "0.40×"
    assert under.cells[5] == "≥ 0.5× (judged below) — **under it**"
    over = line(COMPARED, {"bench_w": {"ours_per_s": 60.0, "base_per_s": 100.0}})
    assert over.cells[5] == "≥ 0.5× (judged below) — reached"
    doc = document([COMPARED, RATE], {"bench_w": {"ours_per_s": 40.0, "base_per_s": 100.0}}, "m")
    assert "0 of 1 targets met" in doc  # the compared row is shown, not counted
    assert line(COMPARED, {}).cells[5] == "≥ 0.5× (judged below) — not measured"


def test_the_table_and_the_document() -> None:
    figures = {"bench_w": {"ours_per_s": 1234.5, "base_per_s": 1000.0, "p99_ms": 3.0}}
    text = table([RATE, BOUND], figures).splitlines()
    assert text[0] == HEADER and text[1] == "|---|---|---|---|---|---|"
    assert text[2] == "| Widgets made (issue 7) | 1,234 /s | 1,000 /s | a plain widget | 1.23× | ≥ 0.9× — met |"
    assert len(text) == 4 and all(row.count("|") == 7 for row in text)
    doc = document([RATE, BOUND, PAIRED], figures, "a test machine")
    assert "Machine: a test machine" in doc and HEADER in doc
    assert "2 of 2 targets met; 1 figure(s) missing from this run" in doc


def test_every_issue_with_a_benchmark_has_its_rows() -> None:
    issues = {row.issue for row in ROWS}
    assert issues == {2, 3, 4, 10, 11, 12}
    keys = {row.ours for row in ROWS}
    for key in (
        "bench_ledger.issuance_http_with_ledger_rps",
        "bench_ledger.pg_ledger_appends_per_s",
        "bench_ledger.pg_ledger_integrated_per_s",
        "bench_ledger.proofs_per_s_at_1e6",
        "bench_ledger.wait_for_index_p99_ms",
        "bench_ledger.commit_to_checkpoint_p99_ms",
        "bench_issuance.http_issue_sm2_rps",
        "bench_sealing.sm2_seal_100k_per_s",
        "bench_scale.issue_http_with_ledger_rps",
        "bench_ocsp.ocsp_presigned_http_rps",
        "bench_crl.crl_1e5_generation_s",
        "bench_crl.crl_1e5_der_bytes",
        "bench_crl.crl_partition_generation_median_s",
        "bench_crl.crl_partition_der_max_bytes",
    ):
        assert key in keys, key


def test_figures_read_back_from_a_written_table_as_rounded_there() -> None:
    """`python -m bench --update` on a checkout without bench/results/latest.json carries what the table
    shows: every figure read back renders the very same table."""
    figures = {"bench_w": {"ours_per_s": 1234.5, "base_per_s": 1000.0, "p99_ms": 3.0, "r": 2.567}}
    rows = [RATE, BOUND, PAIRED, Row(7, "Pipe | in it", "bench_v.size", "bytes", Target("reported"))]
    written = document(rows, {**figures, "bench_v": {"size": 4_899_966.0}}, "run started 2026-01-01T00:00:00+00:00; x")
    back, runs = figures_from_table(written, rows)
    assert back == {"bench_w": {"ours_per_s": 1234.0, "base_per_s": 1000.0, "p99_ms": 3.0, "r": 2.57},
                    "bench_v": {"size": 4_899_966.0}}  # fmt: skip
    assert runs == {"bench_w": "2026-01-01T00:00:00+00:00", "bench_v": "2026-01-01T00:00:00+00:00"}
    assert table(rows, back) == table(rows, {**figures, "bench_v": {"size": 4_899_966.0}})
    missing = document([RATE], {}, "m")
    assert figures_from_table(missing, [RATE]) == ({}, {})


def test_the_carried_runs_are_read_from_the_machine_line() -> None:
    machine = (
        "run started 2026-02-02T00:00:00+00:00; load. This run measured bench_w; carried from earlier runs "
        "(python -m bench --update): bench_v (2026-01-01T00:00:00+00:00)"
    )
    rows = [RATE, Row(7, "Size", "bench_v.size", "bytes", Target("reported"))]
    written = document(rows, {"bench_w": {"ours_per_s": 5.0, "base_per_s": 5.0}, "bench_v": {"size": 1.0}}, machine)
    _, runs = figures_from_table(written, rows)
    assert runs == {"bench_w": "2026-02-02T00:00:00+00:00", "bench_v": "2026-01-01T00:00:00+00:00"}
