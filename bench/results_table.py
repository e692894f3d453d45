"""bench/RESULTS.md: every issue's speed figure in one table, from one `make bench` run.

Columns `measure | ours | anchor | anchor figure | ratio | target` (issue 11). The ratio is ours / anchor,
higher is better: where a bench pairs its slices it is the bench's own median of the paired ratios
(`ratio_key`, steadier on these noisy machines than a ratio of two medians), else ours / anchor from
the two cells. A figure with no anchor (a latency bound, a rate only reported) shows "—" there and is
judged against its bound. A figure the run did not produce is shown as missing, never left out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Figures = dict[str, dict[str, float]]  # bench module -> figure -> value (bench/results/latest.json)

NOTES = """Notes:
- Every bench's docstring (bench/bench_*.py) says exactly what it times and what its anchor does.
- Issuance *without the ledger* (issue 11): the same app, code and database with the ledger's
  request-time work switched off in that server process only (bench/asgi_without_ledger.py):
  certificate and event row still committed in one transaction, as before the ledger; no sequencer
  pass, no integrator. Both services run at once and wrk loads them in alternating slices.
- Ledger appends (issue 11), two rows, each against the plain-INSERT slice of its own round (rounds
  of three 8-thread slices, order reversed every other round, the service's integrator running every
  0.25 s throughout). *Waiting*: each writer commits a transaction inserting its event
  (`record_event`) and then waits for the event's ledger index (`Ledger.wait_for`); an append counts
  when its writer holds the index. *Not waiting*: each writer only commits its event; counted are the
  entries integrated (indexed and in the tree; the tree grew by exactly the events committed) from
  the slice's start until the integrator caught up with its last event. Anchor: the same row
  inserted into a plain table of the same shape, and committed. The latency rows come from the
  waiting slices.
- Which appends row the issue's ≥ 0.5× is judged on: the *not-waiting* one. Issue 11 bounds the
  index wait separately ("the response waits for its index, p99 ≤ 100 ms under load; integration
  into the tree may run behind", Tessera style), so its appends-per-second figure is read as the
  rate at which the log takes entries in, with the wait judged by its own p99 row. The waiting row
  is still set against the same 0.5× beside it, and where it says "under it" the waiting path misses
  that bound: with 8 closed-loop writers, each append there is the writer's own durable commit plus
  ~1.5 sequencer passes (a pass is a second durable transaction, shared by the events committed
  before it began), so a service whose responses carry the index (issuance, sealing) gets that
  rate at 8 concurrent clients; more clients share each pass.
- Inclusion proofs: trees of 10⁴ and 10⁶ entries written by the real append code (checked against
  the RFC 9162 reference of tests/ledger/rfc9162.py), `Ledger.inclusion_proof` for random indices.
- The sequencer's pass on PostgreSQL: its own connection (no pool checkout or ping), psycopg
  pipeline mode, two round trips ([BEGIN, advisory lock, waiting events with the tree's size], then
  [index assignment, nodes, COMMIT]) and one WAL flush; waiters take their places as each batch
  commits, and one whose event came too late starts the next pass at once.
- Scale (issue 12, bench/bench_scale.py): HTTP issuance against in-process issuance, both waiting
  for the ledger index (8 wrk connections against one in-process caller, alternating). The 10⁵-entry
  CRL and the 10³ / 10⁶ tables are bulk-loaded through ca/store.py `bulk_add`: real certificates
  signed by the issuance code, without event rows (the ledger never sees them).
- OCSP (issue 12, bench/bench_ocsp.py): one fixed valid request for an issued certificate, POSTed by
  wrk (rate budget off; the request set up once, as wrk sends health's GET), against health in
  alternating slices. Without a nonce it is answered from
  its stored pre-signed response (signed on the first request, re-signed by the scheduler before half
  its 4-hour validity, deleted by a revocation in its transaction and never served once its status
  differs from the certificate row's: one indexed read per request, on a kept DBAPI connection);
  with a nonce each answer is signed for that request, as every answer was before.
- CRLs at scale (issue 12, bench/bench_crl.py, split from bench_scale so it can be re-measured alone):
  10⁵ revoked certificates of one regional SM2 CA with partitioning off, its next CRL timed (`CRLs.issue`:
  read, build, sign, store); then 10⁵ revoked certificates of its sibling CA issued into partitions of 10⁴
  by the real assignment (each certificate's distribution point names its partition), and every
  partition's next CRL timed in turn. A partition row's ratio is partition / one list (lower is smaller
  or faster here: the "ratio" column is only their quotient, no target).
"""


@dataclass(frozen=True)
class Target:
    """`ratio_at_least`: the ratio must reach `value`; `at_most`: ours must stay at or below `value`;
    `reported`: no bound, shown for context; `ratio_compared`: the ratio is set against `value` and the
    table says whether it reaches it, but the issue's target is judged on another row (`note` says
    which), so it is not counted among the targets met."""

    kind: Literal["ratio_at_least", "at_most", "reported", "ratio_compared"]
    value: float = 0.0
    note: str = ""  # e.g. "aim 3×"

    def text(self) -> str:
        if self.kind in ("ratio_at_least", "ratio_compared"):
            base = f"≥ {_number(self.value)}×"
        elif self.kind == "at_most":
            base = f"≤ {_number(self.value)}"
        else:
            base = "reported"
        return f"{base} ({self.note})" if self.note else base


@dataclass(frozen=True)
class Row:
    issue: int
    measure: str
    ours: str  # "module.figure"
    unit: str
    target: Target
    anchor: str | None = None  # "module.figure"
    anchor_figure: str = "—"  # what the anchor is, in words
    ratio_key: str | None = None  # "module.figure": the bench's paired ratio


def _get(figures: Figures, key: str | None) -> float | None:
    if key is None:
        return None
    module, _, name = key.partition(".")
    value = figures.get(module, {}).get(name)
    return None if value is None or math.isnan(value) else value


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "missing"
    return f"{_number(value)} {unit}".strip()


@dataclass(frozen=True)
class Line:
    """One row as shown, and whether its target is met (None: nothing to judge, or a figure missing)."""

    cells: tuple[str, str, str, str, str, str]
    met: bool | None


def line(row: Row, figures: Figures) -> Line:
    ours = _get(figures, row.ours)
    anchor = _get(figures, row.anchor)
    ratio = _get(figures, row.ratio_key)
    if ratio is None and row.ratio_key is None and ours is not None and anchor is not None and anchor > 0:
        ratio = ours / anchor
    missing = ours is None or (row.anchor is not None and (anchor is None or ratio is None))
    met: bool | None = None
    if not missing:
        if row.target.kind == "ratio_at_least":
            met = ratio is not None and ratio >= row.target.value
        elif row.target.kind == "at_most":
            met = ours is not None and ours <= row.target.value
    target = row.target.text()
    if missing and row.target.kind != "reported":
        target += " — not measured"
    elif met is not None:
        target += " — met" if met else " — **not met**"
    elif row.target.kind == "ratio_compared" and ratio is not None:
        target += " — reached" if ratio >= row.target.value else " — **under it**"
    ratio_cell = "—" if row.anchor is None else ("missing" if ratio is None else f"{ratio:.2f}×")
    anchor_cell = "—" if row.anchor is None else _cell(anchor, row.unit)
    measure = f"{row.measure} (issue {row.issue})"
    return Line((measure, _cell(ours, row.unit), anchor_cell, row.anchor_figure, ratio_cell, target), met)


def table(rows: list[Row], figures: Figures) -> str:
    out = [
        "| measure | ours | anchor | anchor figure | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = line(row, figures).cells
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(out) + "\n"


def document(rows: list[Row], figures: Figures, machine: str, notes: str = NOTES) -> str:
    lines = [line(row, figures) for row in rows]
    judged = [entry.met for entry in lines if entry.met is not None]
    summary = f"{sum(judged)} of {len(judged)} targets met"
    missing = sum(1 for entry in lines if "missing" in entry.cells)
    if missing:
        summary += f"; {missing} figure(s) missing from this run"
    parts = [
        "# Benchmark results\n",
        "Written by `make bench` (bench/__main__.py, from bench/results_table.py) from one run (after "
        "`python -m bench --update`, the machine line names the modules carried from an earlier run); "
        "every ratio is against an anchor measured in the same run. Ratio = ours / anchor, higher is better "
        "(where a bench pairs its slices, the median of the paired ratios).\n",
        f"Machine: {machine}\n",
        f"{summary}.\n",
        table(rows, figures),
    ]
    if notes:
        parts.append(notes)
    return "\n".join(parts)


def _parse_cell(cell: str, unit: str) -> float | None:
    """The number `_cell` (or a ratio cell, "0.72×") shows, as rounded there; None for "missing" / "—"."""
    text = cell.strip().removesuffix("×")
    if unit and text.endswith(unit):
        text = text[: -len(unit)]
    try:
        return float(text.strip().replace(",", ""))
    except ValueError:
        return None


def figures_from_table(text: str, rows: list[Row]) -> tuple[Figures, dict[str, str]]:
    """The figures a written bench/RESULTS.md shows (as rounded there), and when each module was measured
    (from its machine line): what `python -m bench --update` carries when bench/results/latest.json (not
    kept in the repository) is absent. Rows whose measure text changed since are not recovered."""
    by_measure = {f"{row.measure} (issue {row.issue})": row for row in rows}
    figures: Figures = {}
    for line_text in text.splitlines():
        if not line_text.startswith("| "):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line_text.strip())[1:-1]]
        row = by_measure.get(cells[0]) if len(cells) == 6 else None
        if row is None:
            continue
        for key, cell, unit in ((row.ours, cells[1], row.unit), (row.anchor, cells[2], row.unit),
                                (row.ratio_key, cells[4], "")):  # fmt: skip
            value = _parse_cell(cell, unit) if key is not None else None
            if key is not None and value is not None:
                module, _, name = key.partition(".")
                figures.setdefault(module, {})[name] = value
    started = re.search(r"run started (\S+);", text)
    runs = dict.fromkeys(figures, started.group(1) if started else "unknown")
    carried = re.search(r"carried from earlier runs \(python -m bench --update\): (.*)$", text, re.MULTILINE)
    if carried:
        for module, at in re.findall(r"(bench_\w+) \(([^)]+)\)", carried.group(1)):
            if module in runs:
                runs[module] = at
    return figures, runs


def keep_carried_lines(text: str, old: str, rows: list[Row], measured: set[str]) -> str:
    """`text` (a document) with each row that no module of `measured` feeds shown exactly as in `old` (the
    table the figures were read back from: a ratio recomputed from rounded cells could differ in its last
    digit), and the summary line counted again over the lines shown."""
    previous = {line_text.split(" | ")[0]: line_text for line_text in old.splitlines() if line_text.startswith("| ")}
    out = []
    for line_text in text.splitlines():
        head = line_text.split(" | ")[0]
        row = next((r for r in rows if head == f"| {r.measure} (issue {r.issue})"), None)
        keys = [k for k in (row.ours, row.anchor, row.ratio_key) if k] if row is not None else []
        if row is not None and head in previous and not {k.partition(".")[0] for k in keys} & measured:
            line_text = previous[head]
        out.append(line_text)
    body = "\n".join(out) + ("\n" if text.endswith("\n") else "")
    lines = [line_text for line_text in out if line_text.startswith("| ") and not line_text.startswith("| measure")]
    met = sum(1 for line_text in lines if line_text.endswith("— met |"))
    judged = met + sum(1 for line_text in lines if line_text.endswith("— **not met** |"))
    summary = f"{met} of {judged} targets met"
    missing = sum(1 for line_text in lines if "| missing |" in line_text)
    if missing:
        summary += f"; {missing} figure(s) missing from this run"
    return re.sub(r"^\d+ of \d+ targets met[^\n]*\.$", summary + ".", body, count=1, flags=re.MULTILINE)


SM2_SIGN_TARGET = Target("ratio_at_least", 1.0, "aim 3×")

ROWS: list[Row] = [
    # issue 2: SM2 core and CA
    Row(
        2,
        "SM2 sign through gm/ (Botan, constant-time)",
        "bench_sm2.gm_sm2_sign_per_s",
        "/s",
        SM2_SIGN_TARGET,
        "bench_sm2.openssl_sm2_sign_per_s",
        "`openssl speed sm2` sign",
        "bench_sm2.ratio_sign_gm_vs_openssl",
    ),
    Row(
        2,
        "SM2 verify through gm/, one key",
        "bench_sm2.gm_sm2_verify_per_s",
        "/s",
        SM2_SIGN_TARGET,
        "bench_sm2.openssl_sm2_verify_per_s",
        "`openssl speed sm2` verify",
        "bench_sm2.ratio_verify_gm_vs_openssl",
    ),
    Row(
        2,
        "SM2 verify through gm/, a new key each time",
        "bench_sm2.gm_sm2_verify_new_key_per_s",
        "/s",
        Target("reported"),
        "bench_sm2.openssl_sm2_verify_per_s",
        "`openssl speed sm2` verify",
        "bench_sm2.ratio_verify_new_key_gm_vs_openssl",
    ),
    Row(
        2,
        "Certificates issued in-process, SM2 (SQLite)",
        "bench_issuance.in_process_sm2_per_s",
        "/s",
        Target("reported"),
    ),
    Row(
        2,
        "Certificates issued in-process, P-256 (SQLite)",
        "bench_issuance.in_process_p256_per_s",
        "/s",
        Target("reported"),
    ),
    Row(
        2,
        "Certificate issuance over HTTP, SM2 (wrk, 8 connections)",
        "bench_issuance.http_issue_sm2_rps",
        "req/s",
        Target("ratio_at_least", 0.3),
        "bench_issuance.http_trivial_rps",
        "`GET /v1/health` (async, constant JSON), same server, alternating",
    ),
    # issue 3: seals and PDF sealing
    Row(
        3,
        "Sealing a 100 KB PDF in-process, visible SM2 seal",
        "bench_sealing.sm2_seal_100k_per_s",
        "/s",
        Target("ratio_at_least", 3.0, "aim 5×"),
        "bench_sealing.pyhanko_p256_100k_per_s",
        "pyHanko `SimpleSigner` P-256, default settings",
    ),
    Row(
        3,
        "Sealing a 100 KB PDF over HTTP (4 clients)",
        "bench_sealing.http_sm2_seal_100k_per_s",
        "/s",
        Target("reported"),
        "bench_sealing.pyhanko_p256_100k_per_s",
        "pyHanko `SimpleSigner` P-256, in-process",
    ),
    Row(
        3,
        "Sealing a 5 MB PDF in-process",
        "bench_sealing.sm2_seal_5m_per_s",
        "/s",
        Target("reported"),
        "bench_sealing.pyhanko_p256_5m_per_s",
        "pyHanko `SimpleSigner` P-256, 5 MB",
    ),
    # issue 4 and issue 10: verification
    Row(
        4,
        "Full verification, 100 KB B-LT SM2 PDF",
        "bench_verify.sm2_b_lt_full_verify_per_s",
        "/s",
        Target("ratio_at_least", 2.0, "aim 4×"),
        "bench_verify.pyhanko_p256_no_revocation_per_s",
        "pyHanko `validate_pdf_signature`, P-256, no revocation checks",
        "bench_verify.ratio_full_verify_vs_pyhanko",
    ),
    Row(
        4,
        "OFD verification, vendor file 1.ofd",
        "bench_verify.ofd_vendor_verify_per_s",
        "/s",
        Target("reported"),
    ),
    Row(
        10,
        "Full verification, 100 KB B-LT SM2 PDF, like for like",
        "bench_verify.sm2_b_lt_full_verify_per_s",
        "/s",
        Target("ratio_at_least", 3.0, "aim 5×"),
        "bench_verify.pyhanko_p256_b_lt_hardfail_per_s",
        "pyHanko, its own P-256 B-LT PDF, hard-fail revocation from the DSS",
        "bench_verify.ratio_full_verify_vs_pyhanko_blt_hardfail",
    ),
    # issue 11: the ledger
    Row(
        11,
        "Issuance over HTTP with the ledger (SQLite, wrk, 8 connections)",
        "bench_ledger.issuance_http_with_ledger_rps",
        "req/s",
        Target("ratio_at_least", 0.9),
        "bench_ledger.issuance_http_without_ledger_rps",
        "the same service without the ledger's request-time work (bench/asgi_without_ledger.py)",
        "bench_ledger.ratio_issuance_with_vs_without_ledger",
    ),
    Row(
        11,
        "Issuances per second of server CPU, with the ledger (the same slices)",
        "bench_ledger.issuance_per_server_cpu_s_with_ledger",
        "/CPU-s",
        Target("reported"),
        "bench_ledger.issuance_per_server_cpu_s_without_ledger",
        "the same without the ledger (server process CPU from /proc, integrator included)",
        "bench_ledger.ratio_issuance_per_cpu_with_vs_without_ledger",
    ),
    Row(
        11,
        "Ledger appends on PostgreSQL, 8 writers, each waiting for its index (commit + wait)",
        "bench_ledger.pg_ledger_appends_per_s",
        "/s",
        Target("ratio_compared", 0.5, "the issue's bound; judged on the next row, see the notes"),
        "bench_ledger.pg_plain_inserts_per_s",
        "plain single-row INSERT + commit, table of the same shape, same 8 threads",
        "bench_ledger.ratio_appends_vs_plain_inserts",
    ),
    Row(
        11,
        "Ledger appends on PostgreSQL, 8 writers not waiting: entries integrated into the tree per second",
        "bench_ledger.pg_ledger_integrated_per_s",
        "/s",
        Target("ratio_at_least", 0.5),
        "bench_ledger.pg_plain_inserts_per_s",
        "plain single-row INSERT + commit, table of the same shape, same 8 threads",
        "bench_ledger.ratio_integrated_vs_plain_inserts",
    ),
    Row(
        11,
        "Inclusion proofs at 10⁶ entries (PostgreSQL)",
        "bench_ledger.proofs_per_s_at_1e6",
        "/s",
        Target("ratio_at_least", 0.5, "within 2×"),
        "bench_ledger.proofs_per_s_at_1e4",
        "the same at 10⁴ entries (ratio = t(10⁴) / t(10⁶))",
        "bench_ledger.ratio_proof_rate_1e6_vs_1e4",
    ),
    Row(
        11,
        "Wait for the ledger index after commit, p99, under the 8-writer load",
        "bench_ledger.wait_for_index_p99_ms",
        "ms",
        Target("at_most", 100.0, "ms"),
    ),
    Row(
        11,
        "Wait for the ledger index after commit, p50",
        "bench_ledger.wait_for_index_p50_ms",
        "ms",
        Target("reported"),
    ),
    Row(
        11,
        "Commit → first signed checkpoint covering it, p99, under load",
        "bench_ledger.commit_to_checkpoint_p99_ms",
        "ms",
        Target("at_most", 1000.0, "ms"),
    ),
    Row(
        11,
        "Commit → first signed checkpoint covering it, p50",
        "bench_ledger.commit_to_checkpoint_p50_ms",
        "ms",
        Target("reported"),
    ),
    # issue 12: scale
    Row(
        12,
        "Issuance over HTTP with the ledger (SQLite, SM2, wrk, 8 connections)",
        "bench_scale.issue_http_with_ledger_rps",
        "req/s",
        Target("ratio_at_least", 0.65),
        "bench_scale.issue_in_process_with_ledger_per_s",
        "in-process issuance with the ledger (issue + wait for the index), one caller, same CA and home, alternating",
        "bench_scale.ratio_issue_http_vs_in_process",
    ),
    Row(
        12,
        "OCSP responses over HTTP, pre-signed and refreshed, Boulder style (one CertID, no nonce; wrk, 8 connections)",
        "bench_ocsp.ocsp_presigned_http_rps",
        "req/s",
        Target("ratio_at_least", 0.5),
        "bench_ocsp.health_http_rps",
        "`GET /v1/health`, same server, alternating",
        "bench_ocsp.ratio_ocsp_presigned_vs_health",
    ),
    Row(
        12,
        "The same pre-signed answers through GET /v1/ocsp/{base64url}, with RFC 5019 caching headers",
        "bench_ocsp.ocsp_presigned_get_http_rps",
        "req/s",
        Target("reported"),
        "bench_ocsp.health_http_rps",
        "`GET /v1/health`, same server, alternating",
        "bench_ocsp.ratio_ocsp_presigned_get_vs_health",
    ),
    Row(
        12,
        "OCSP responses over HTTP with a nonce, each signed on request (wrk, 8 connections)",
        "bench_ocsp.ocsp_live_signed_http_rps",
        "req/s",
        Target("reported"),
        "bench_ocsp.health_http_rps",
        "`GET /v1/health`, same server, alternating",
        "bench_ocsp.ratio_ocsp_live_signed_vs_health",
    ),
    Row(
        12,
        "The pre-signed OCSP responder in-process (no HTTP)",
        "bench_ocsp.ocsp_presigned_in_process_per_s",
        "/s",
        Target("reported"),
        "bench_ocsp.health_http_rps",
        "`GET /v1/health` over HTTP, same run, alternating",
        "bench_ocsp.ratio_ocsp_presigned_in_process_vs_health",
    ),
    Row(
        12,
        "CRL with 10⁵ revoked entries as one list (SQLite, SM2): generation time (read, build, sign, store)",
        "bench_crl.crl_1e5_generation_s",
        "s",
        Target("reported", note="partitioning off"),
    ),
    Row(
        12,
        "CRL with 10⁵ revoked entries as one list: DER size",
        "bench_crl.crl_1e5_der_bytes",
        "bytes",
        Target("reported", note="partitioning off"),
    ),
    Row(
        12,
        "10⁵ revoked entries in partitions of 10⁴ (issuing distribution point): lists",
        "bench_crl.crl_partitions",
        "",
        Target("reported", note="the key's base list and p1…: the base list also holds the CA's OCSP signer"),
    ),
    Row(
        12,
        "One partition's CRL (≤ 10⁴ entries): generation time, median over the partitions",
        "bench_crl.crl_partition_generation_median_s",
        "s",
        Target("reported", note="revocation re-issues only its certificate's partition"),
        "bench_crl.crl_1e5_generation_s",
        "the one 10⁵-entry list, same run",
    ),
    Row(
        12,
        "One partition's CRL (≤ 10⁴ entries): generation time, largest",
        "bench_crl.crl_partition_generation_max_s",
        "s",
        Target("reported"),
    ),
    Row(
        12,
        "All partitions' CRLs (10⁵ entries in all): generation time, summed (the scheduler's round)",
        "bench_crl.crl_partition_generation_sum_s",
        "s",
        Target("reported"),
        "bench_crl.crl_1e5_generation_s",
        "the one 10⁵-entry list, same run",
    ),
    Row(
        12,
        "One partition's CRL: DER size, largest",
        "bench_crl.crl_partition_der_max_bytes",
        "bytes",
        Target("reported", note="what a relying party downloads for one certificate"),
        "bench_crl.crl_1e5_der_bytes",
        "the one 10⁵-entry list, same run",
    ),
    Row(
        12,
        "Issuance rate at 10⁶ certificates in PostgreSQL",
        "bench_scale.pg_issue_per_s_at_1e6",
        "/s",
        Target("ratio_at_least", 0.67, "within 1.5×"),
        "bench_scale.pg_issue_per_s_at_1e3",
        "the same at 10³ certificates",
        "bench_scale.ratio_pg_issue_1e6_vs_1e3",
    ),
    Row(
        12,
        "OCSP answers at 10⁶ certificates in PostgreSQL, one connection (rate = 1 / latency)",
        "bench_scale.pg_ocsp_per_s_at_1e6",
        "/s",
        Target("ratio_at_least", 0.67, "within 1.5×"),
        "bench_scale.pg_ocsp_per_s_at_1e3",
        "the same at 10³ certificates (ratio = t(10³) / t(10⁶))",
        "bench_scale.ratio_pg_ocsp_1e6_vs_1e3",
    ),
]
