"""Does an OCSP flood starve the rest of the service? (issue 12: "four anonymous connections saturate the
server through OCSP", when POST /v1/ocsp signed on the event loop.)

Anchor: GET /v1/health over one connection, alone. Then the same while four connections POST OCSP requests
as fast as they can, with the OCSP budget switched off (TRUSTSEAL_OCSP_RATE_PER_MINUTE=0: the worst case,
only the thread pool keeps the event loop free). Reported: health's rate under the flood over its rate alone
(1.0 = untouched; what the GIL and two shared cores leave), the OCSP rate meanwhile, and health's median
latency in both. With the budget on (the default), four connections from one address get `tryLater` after
their burst and cost next to nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import statistics
import tempfile
import threading
from pathlib import Path

from bench.csrs import sm2_csr
from bench.server import served, wrk, wrk_available


def _setup(home: Path) -> bytes:
    """A demo home with one issued SM2 certificate; the DER of an OCSP request for it."""
    os.environ["TRUSTSEAL_HOME"] = str(home)
    from asn1crypto import ocsp

    from api.context import open_context
    from ca.hierarchy import create_demo_hierarchy

    context = open_context(create=True)
    create_demo_hierarchy(context.ca)
    issued = context.ca.issue(sm2_csr(), "org-seal", "cn-370000-sm2")
    issuer = context.ca.ca_certificate("cn-370000-sm2")
    context.close()
    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": issued.certificate.serial_number,
    }
    der: bytes = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
    return der


def _post_script(der: bytes) -> str:
    body = "".join(f"\\{b:03d}" for b in der)  # Lua decimal escapes: the DER as it is
    return (
        f'local body = "{body}"\n'
        'request = function() return wrk.format("POST", "/v1/ocsp", '
        '{["Content-Type"] = "application/ocsp-request"}, body) end\n'
    )


def run(seconds: float = 3.0, rounds: int = 2) -> dict[str, float]:
    if not wrk_available():
        return {"http_skipped": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        der = _setup(home)
        with served(home, {"TRUSTSEAL_OCSP_RATE_PER_MINUTE": "0"}) as url:
            script = _post_script(der)
            wrk(url + "/v1/health", 1, connections=1)  # warm-up
            check = wrk(url, 1, connections=1, script=script)
            assert check["rps"] > 0, base64.b64encode(der)
            alone, flooded, ocsp_rates, p50_alone, p50_flooded = [], [], [], [], []
            for _ in range(rounds):
                quiet = wrk(url + "/v1/health", seconds, connections=1)
                alone.append(quiet["rps"])
                p50_alone.append(_micros(str(quiet["p50"])))
                flood: dict[str, float] = {}
                loader = threading.Thread(target=_flood, args=(flood, url, seconds + 2, script))
                loader.start()
                threading.Event().wait(1.0)  # the flood is running
                busy = wrk(url + "/v1/health", seconds, connections=1)
                loader.join()
                flooded.append(busy["rps"])
                p50_flooded.append(_micros(str(busy["p50"])))
                ocsp_rates.append(flood["rps"])
    return {
        "health_under_ocsp_flood_over_alone": statistics.median(f / a for f, a in zip(flooded, alone, strict=True)),
        "health_rps_alone": statistics.median(alone),
        "health_rps_under_flood": statistics.median(flooded),
        "ocsp_rps_4_connections": statistics.median(ocsp_rates),
        "health_p50_us_alone": statistics.median(p50_alone),
        "health_p50_us_under_flood": statistics.median(p50_flooded),
    }


def _flood(into: dict[str, float], url: str, seconds: float, script: str) -> None:
    into.update(wrk(url, seconds, connections=4, script=script))


def _micros(text: str) -> float:
    for unit, factor in (("us", 1.0), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40} {value:12.2f}")
