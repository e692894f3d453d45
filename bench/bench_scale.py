"""Scale (issue 12): HTTP issuance against in-process issuance, and 10³ against 10⁶ certificates on
PostgreSQL. Every ratio is paired within this run, slices alternating. OCSP over HTTP against the trivial
endpoint is bench_ocsp.py's; the CRL of 10⁵ revoked entries, one list and partitioned, is bench_crl.py's.

- Issuance, both with the ledger (SQLite home, the demo SM2 CA, profile org-seal): wrk with 8
  connections POSTs CSRs to /v1/certificates (each response waits for its ledger index); the in-process
  slice, this process with the server idle, calls `ca.issue` then `ledger.wait_for` on its event, one
  after the other. Ratio: the median of per-round HTTP / in-process.
- OCSP over HTTP against the trivial endpoint: bench/bench_ocsp.py (pre-signed and live-signed answers).
- CRL of 10⁵ revoked entries, one list and partitioned: bench/bench_crl.py.
- 10³ against 10⁶ certificates on PostgreSQL (only with TRUSTSEAL_BENCH_SCALE_PG=1): two schemas, each
  with its own demo hierarchy and that many real certificates bulk-loaded as above; in alternating
  slices, in-process issuance (issue + wait for the index) and OCSP answer latency (`ca.ocsp`, 64
  bulk-loaded certificates in turn: a primary-key lookup among 10⁶ rows; since pre-signed responses,
  each certificate's first answer is signed and stored, the later ones read the stored response joined
  with its certificate row). Ratios: rate at 10⁶ / rate
  at 10³; latency at 10³ / latency at 10⁶ (the issue's "within 1.5×" is ≥ 0.67).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.csrs import sm2_csr
from bench.server import post_script, served, wrk, wrk_available

CSR_COUNT = 32
CA = "cn-370000-sm2"


def _setup(home: Path) -> str:
    os.environ["TRUSTSEAL_HOME"] = str(home)
    from api.auth import create_token
    from api.context import open_context
    from ca.hierarchy import create_demo_hierarchy

    context = open_context(create=True)
    create_demo_hierarchy(context.ca)
    token = create_token(context.db, "officer", "bench")
    context.close()
    return token


def issuance(home: Path, token: str, seconds: float, rounds: int) -> dict[str, float]:
    from api.context import open_context

    bodies = [json.dumps({"csr_pem": sm2_csr(), "profile": "org-seal", "ca": CA}) for _ in range(CSR_COUNT)]
    script = post_script("/v1/certificates", bodies, token)
    csrs = [sm2_csr() for _ in range(CSR_COUNT)]
    http, local = [], []
    with served(home) as url:
        context = open_context()

        def one(n: int) -> None:
            issued = context.ca.issue(csrs[n % CSR_COUNT], "org-seal", CA)
            assert issued.event_id is not None
            context.ledger.wait_for(issued.event_id)

        one(0)  # warm caches
        wrk(url, 1, script=script)
        for r in range(rounds):
            for which in ("http", "local") if r % 2 == 0 else ("local", "http"):
                if which == "http":
                    http.append(wrk(url, seconds, script=script)["rps"])
                    continue
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    one(n)
                    n += 1
                local.append(n / (time.perf_counter() - start))
        context.close()
    return {
        "issue_http_with_ledger_rps": statistics.median(http),
        "issue_in_process_with_ledger_per_s": statistics.median(local),
        "ratio_issue_http_vs_in_process": statistics.median(h / c for h, c in zip(http, local, strict=True)),
    }


def prepared_certificates(ca_service: Any, ca_name: str, count: int, partitioned: bool = False) -> Iterator[Any]:
    """`count` real certificates of `ca_name`, each approved and signed by the issuance code with its own
    CSPRNG serial (one CSR, parsed once: the subject key is shared), nothing written. `partitioned`: each
    goes into its CRL partition as issuance assigns it (ca/partitions.py; the in-process count, never
    re-read meanwhile: the bench writes every batch before it signs the next)."""
    from ca import issuance
    from ca.csr import parse_csr
    from policies.names import ANY_ORGANISATION

    request = parse_csr(sm2_csr())
    profile = ca_service.subscriber_profile("org-seal")
    ca = ca_service.snapshots.entry(ca_name)
    for _ in range(count):
        approval = issuance.approve_csr(
            profile,
            request,
            ca,
            ca.certificate,
            parent=ca.parent,
            status=ca.status,
            namespaces=ca.namespaces,
            requester=ANY_ORGANISATION,
        )
        scope = ca_service.partitions.assign(ca, 0) if partitioned else None
        yield ca_service._sign(approval, scope)  # the CA's own signing step (private: no public sign-only call)


def _pg_context(home: Path, url: str, rows: int) -> tuple[Any, list[bytes]]:
    """A demo hierarchy in its own home and PostgreSQL schema, `rows` certificates of CA bulk-loaded;
    OCSP requests for 64 of them."""
    from dataclasses import replace

    from api.context import open_context
    from api.settings import Settings
    from ca import store
    from ca.hierarchy import create_demo_hierarchy

    context = open_context(replace(Settings.from_env(home), database_url=url), create=True)
    create_demo_hierarchy(context.ca)
    issuer = context.ca.ca_certificate(CA)
    picked: list[bytes] = []
    batch: list[Any] = []
    with context.db.engine.begin() as connection:
        for n, prepared in enumerate(prepared_certificates(context.ca, CA, rows)):
            batch.append(prepared)
            if n % max(1, rows // 64) == 0 and len(picked) < 64:
                picked.append(_request_for(issuer, int(prepared.serial_hex, 16)))
            if len(batch) == 5000:
                store.bulk_add(connection, batch)
                batch = []
        store.bulk_add(connection, batch)
    return context, picked


def _request_for(issuer: Any, serial: int) -> bytes:
    from asn1crypto import ocsp

    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    der: bytes = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
    return der


def pg_at_scale(tmp: Path, small: int, big: int, seconds: float, rounds: int) -> dict[str, float]:
    """Issuance (issue + wait for the ledger index, in-process) and OCSP answer latency (in-process,
    a different bulk-loaded certificate each time) on two PostgreSQL schemas, `small` and `big` rows,
    in alternating slices. Ratios: big rate / small rate; small latency / big latency."""
    from bench.bench_ledger import _schema

    csrs = [sm2_csr() for _ in range(CSR_COUNT)]
    rates: dict[str, list[float]] = {"small": [], "big": []}
    latency: dict[str, list[float]] = {"small": [], "big": []}
    with _schema("scale_small") as url_small, _schema("scale_big") as url_big:
        contexts = {"small": _pg_context(tmp / "pg-small", url_small, small)}
        start = time.perf_counter()
        contexts["big"] = _pg_context(tmp / "pg-big", url_big, big)
        load_s = time.perf_counter() - start
        for context, requests in contexts.values():
            context.ca.ocsp(requests[0])
        for r in range(rounds):
            for tag in ("small", "big") if r % 2 == 0 else ("big", "small"):
                context, requests = contexts[tag]
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    issued = context.ca.issue(csrs[n % CSR_COUNT], "org-seal", CA)
                    context.ledger.wait_for(issued.event_id)
                    n += 1
                rates[tag].append(n / (time.perf_counter() - start))
                times: list[float] = []
                start = time.perf_counter()
                while time.perf_counter() - start < seconds:
                    t = time.perf_counter()
                    context.ca.ocsp(requests[len(times) % len(requests)])
                    times.append(time.perf_counter() - t)
                latency[tag].append(statistics.median(times))
        for context, _ in contexts.values():
            context.close()
    return {
        "pg_bulk_load_1e6_s": load_s,  # signing each certificate, then bulk_add in batches of 5,000
        "pg_issue_per_s_at_1e3": statistics.median(rates["small"]),
        "pg_issue_per_s_at_1e6": statistics.median(rates["big"]),
        "ratio_pg_issue_1e6_vs_1e3": statistics.median(
            b / s for b, s in zip(rates["big"], rates["small"], strict=True)
        ),
        "pg_ocsp_per_s_at_1e3": 1 / statistics.median(latency["small"]),
        "pg_ocsp_per_s_at_1e6": 1 / statistics.median(latency["big"]),
        "pg_ocsp_p50_ms_at_1e3": 1e3 * statistics.median(latency["small"]),
        "pg_ocsp_p50_ms_at_1e6": 1e3 * statistics.median(latency["big"]),
        "ratio_pg_ocsp_1e6_vs_1e3": statistics.median(
            s / b for s, b in zip(latency["small"], latency["big"], strict=True)
        ),
    }


def run(seconds: float = 3.0, rounds: int = 4) -> dict[str, float]:
    """The 10³ / 10⁶ PostgreSQL comparison runs only with TRUSTSEAL_BENCH_SCALE_PG=1: its bulk load signs
    10⁶ real certificates (~8 CPU-minutes here)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        token = _setup(home)
        result: dict[str, float] = {}
        if wrk_available():
            result.update(issuance(home, token, seconds, rounds))
        else:
            result["http_skipped"] = 1.0
        if os.environ.get("TRUSTSEAL_BENCH_SCALE_PG") == "1":
            result.update(pg_at_scale(home, 1_000, 1_000_000, seconds, rounds))
        return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40} {value:12.3f}")
