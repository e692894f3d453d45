"""Certificates issued per second, in-process and over HTTP, next to a trivial-endpoint anchor.

Anchor: GET /v1/health of the same app (an `async def` returning a constant: the web stack's own limit),
served by the same uvicorn process and loaded by the same wrk settings, measured alternately with
issuance. Target: issuance over HTTP >= 0.3x anchor. Also reported: the ceiling (in-process issuance
against the anchor's HTTP rate) and the per-request budget 0.3x would leave for the HTTP layer, next
to what the trivial request itself costs. (Until 2026-12-01 the anchor was a sync `def`
endpoint, whose thread-pool hop made it ~2.6x slower on these machines and the ratio ~2.6x higher.)
Every issuance is real: CSR check, SM2 signature, certificate and event rows committed.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.csrs import p256_csr, sm2_csr
from bench.server import post_script, served, wrk, wrk_available

CSR_COUNT = 32


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


def in_process(home: Path, seconds: float) -> dict[str, float]:
    from api.context import open_context

    context = open_context()
    out = {}
    for family, make in (("sm2", sm2_csr), ("p256", p256_csr)):
        csrs = [make() for _ in range(CSR_COUNT)]
        ca = f"cn-370000-{family}"
        context.ca.issue(csrs[0], "org-seal", ca)  # warm caches (templates, parsed CA)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            context.ca.issue(csrs[n % CSR_COUNT], "org-seal", ca)
            n += 1
        out[f"in_process_{family}_per_s"] = n / (time.perf_counter() - start)
    context.close()
    return out


def over_http(home: Path, token: str, seconds: float, rounds: int) -> dict[str, float]:
    """Alternating rounds of the anchor, HTTP issuance and (in this process, the server idle)
    in-process SM2 issuance: the last gives the ceiling, the ratio HTTP issuance would reach if
    the HTTP layer cost it nothing."""
    from api.context import open_context

    bodies = [
        json.dumps({"csr_pem": sm2_csr(), "profile": "org-seal", "ca": "cn-370000-sm2"}) for _ in range(CSR_COUNT)
    ]
    script = post_script("/v1/certificates", bodies, token)
    csrs = [sm2_csr() for _ in range(CSR_COUNT)]
    anchor, issuance, local = [], [], []
    with served(home) as url:
        context = open_context()
        context.ca.issue(csrs[0], "org-seal", "cn-370000-sm2")
        wrk(url + "/v1/health", 1)  # warm-up
        wrk(url, 1, script=script)
        for _ in range(rounds):
            anchor.append(wrk(url + "/v1/health", seconds)["rps"])
            issuance.append(wrk(url, seconds, script=script)["rps"])
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                context.ca.issue(csrs[n % CSR_COUNT], "org-seal", "cn-370000-sm2")
                n += 1
            local.append(n / (time.perf_counter() - start))
        context.close()
    a, i, c = statistics.median(anchor), statistics.median(issuance), statistics.median(local)
    return {
        "http_trivial_rps": a,
        "http_issue_sm2_rps": i,
        "http_ratio_issue_vs_trivial": i / a,
        "ceiling_ratio_in_process_vs_trivial": c / a,
        # what 0.3x would leave per request for the whole HTTP layer, beside in-process issuance
        "http_budget_us_at_0_3x": 1e6 / (0.3 * a) - 1e6 / c,
        "trivial_request_us": 1e6 / a,
        # an issuance request's HTTP layer (POST, body, auth, response) costs at least a whole trivial
        # request, so 0.3x is reachable only if this is >= 1
        "http_budget_over_trivial_request": (1e6 / (0.3 * a) - 1e6 / c) / (1e6 / a),
    }


def run(seconds: float = 3.0, rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        token = _setup(home)
        result = in_process(home, seconds)
        if wrk_available():
            result.update(over_http(home, token, seconds, rounds))
        else:
            result["http_skipped"] = 1.0
        return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:32} {value:10.2f}")
