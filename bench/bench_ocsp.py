"""OCSP over HTTP (issue 12): responses per second against the trivial endpoint of the same server, and
whether a flood of OCSP requests starves the rest of the service.

Setup: a demo home (SQLite), one issued SM2 certificate of cn-370000-sm2, the service under uvicorn with
the per-address OCSP budget switched off (TRUSTSEAL_OCSP_RATE_PER_MINUTE=0). Two requests for it: one
CertID (SHA-256) without a nonce, answered from its stored pre-signed response (ca/ocsp.py, Boulder style:
signed on the first request, re-signed by the scheduler); and the same CertID with a nonce, signed live
on every request (the nonce is echoed, so nothing can be reused). Each is checked once: `successful`,
`good`, the pre-signed one served as the same bytes twice, the live one different each time.

- Pre-signed vs health: rounds of slices, order reversed every other round, each slice `seconds` of wrk
  with 8 connections: POST /v1/ocsp with the pre-signed request; GET /v1/ocsp/{base64url} with it (RFC
  5019's form, answered with caching headers); GET /v1/health (async, constant JSON, no thread hop);
  POST /v1/ocsp with the nonce request (each answer signed); and, in this process with the server idle,
  `ca.ocsp` on the pre-signed request (the responder without HTTP). wrk sends each request as set up
  once (no Lua function per request, like its health GET). Ratios: the median of the per-round
  OCSP / health.
- Flood: health over one connection alone, then the same while four connections POST the *nonce* request
  as fast as they can (the worst case: each answer signed, only the thread pool keeps the event loop
  free). Reported: health's rate under the flood over its rate alone (1.0 = untouched; what the GIL and
  two shared cores leave), the OCSP rate meanwhile, and health's median latency in both. With the budget
  on (the default), four connections from one address get `tryLater` after their burst.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.csrs import sm2_csr
from bench.server import served, wrk, wrk_available

CA = "cn-370000-sm2"


def _setup(home: Path) -> tuple[bytes, bytes]:
    """A demo home with one issued SM2 certificate; the DER of an OCSP request for it without and with a
    nonce."""
    os.environ["TRUSTSEAL_HOME"] = str(home)
    from asn1crypto import core, ocsp

    from api.context import open_context
    from ca.hierarchy import create_demo_hierarchy

    context = open_context(create=True)
    create_demo_hierarchy(context.ca)
    issued = context.ca.issue(sm2_csr(), "org-seal", CA)
    issuer = context.ca.ca_certificate(CA)
    context.close()
    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": issued.certificate.serial_number,
    }
    plain = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
    nonce = [{"extn_id": "nonce", "extn_value": core.OctetString(secrets.token_bytes(16))}]
    with_nonce = ocsp.OCSPRequest(
        {"tbs_request": {"request_list": [{"req_cert": cert_id}], "request_extensions": nonce}}
    ).dump()
    return plain, with_nonce


def _post_script(der: bytes) -> str:
    """One fixed POST, set up once: wrk then sends it the way it sends the health GET (no Lua call per
    request, which would cost the client CPU on these two shared cores that health's slice does not)."""
    body = "".join(f"\\{b:03d}" for b in der)  # Lua decimal escapes: the DER as it is
    return f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/ocsp-request"\n'


def _check(url: str, plain: bytes, with_nonce: bytes) -> None:
    import httpx
    from asn1crypto import ocsp

    def post(der: bytes) -> bytes:
        answer = httpx.post(url + "/v1/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
        response = ocsp.OCSPResponse.load(answer.content)
        assert response["response_status"].native == "successful", response["response_status"].native
        assert response.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name == "good"
        return answer.content

    assert post(plain) == post(plain), "the pre-signed answer should be served as stored"
    got = httpx.get(url + "/v1/ocsp/" + base64.urlsafe_b64encode(plain).decode().rstrip("="))
    assert got.content == post(plain) and "max-age" in got.headers["cache-control"]
    assert post(with_nonce) != post(with_nonce), "a nonce answer should be signed for each request"


def presigned_vs_health(home: Path, plain: bytes, with_nonce: bytes, seconds: float, rounds: int) -> dict[str, float]:
    from api.context import open_context

    presigned: list[float] = []
    presigned_get: list[float] = []
    health: list[float] = []
    live: list[float] = []
    local: list[float] = []
    with served(home, {"TRUSTSEAL_OCSP_RATE_PER_MINUTE": "0"}) as url:
        _check(url, plain, with_nonce)
        context = open_context()
        context.ca.ocsp(plain)
        scripts = {"presigned": _post_script(plain), "live": _post_script(with_nonce)}
        wrk(url + "/v1/health", 1)  # warm-up
        wrk(url + "/v1/ocsp", 1, script=scripts["presigned"])
        get_path = "/v1/ocsp/" + base64.urlsafe_b64encode(plain).decode().rstrip("=")
        order = ("presigned", "get", "health", "live", "local")
        for r in range(rounds):
            for which in order if r % 2 == 0 else tuple(reversed(order)):
                if which == "health":
                    health.append(wrk(url + "/v1/health", seconds)["rps"])
                elif which == "get":
                    presigned_get.append(wrk(url + get_path, seconds)["rps"])
                elif which == "local":
                    n, start = 0, time.perf_counter()
                    while time.perf_counter() - start < seconds:
                        context.ca.ocsp(plain)
                        n += 1
                    local.append(n / (time.perf_counter() - start))
                else:
                    rate = wrk(url + "/v1/ocsp", seconds, script=scripts[which])["rps"]
                    (presigned if which == "presigned" else live).append(rate)
        context.close()

    def paired(ours: list[float]) -> float:
        return statistics.median(o / h for o, h in zip(ours, health, strict=True))

    return {
        "ocsp_presigned_http_rps": statistics.median(presigned),
        "health_http_rps": statistics.median(health),
        "ratio_ocsp_presigned_vs_health": paired(presigned),
        "ocsp_presigned_get_http_rps": statistics.median(presigned_get),
        "ratio_ocsp_presigned_get_vs_health": paired(presigned_get),
        "ocsp_live_signed_http_rps": statistics.median(live),
        "ratio_ocsp_live_signed_vs_health": paired(live),
        "ocsp_presigned_in_process_per_s": statistics.median(local),
        "ratio_ocsp_presigned_in_process_vs_health": paired(local),
    }


def flood(home: Path, with_nonce: bytes, seconds: float, rounds: int) -> dict[str, float]:
    with served(home, {"TRUSTSEAL_OCSP_RATE_PER_MINUTE": "0"}) as url:
        script = _post_script(with_nonce)
        wrk(url + "/v1/health", 1, connections=1)  # warm-up
        check = wrk(url + "/v1/ocsp", 1, connections=1, script=script)
        assert check["rps"] > 0, base64.b64encode(with_nonce)
        alone, flooded, ocsp_rates, p50_alone, p50_flooded = [], [], [], [], []
        for _ in range(rounds):
            quiet = wrk(url + "/v1/health", seconds, connections=1)
            alone.append(quiet["rps"])
            p50_alone.append(_micros(str(quiet["p50"])))
            load: dict[str, float] = {}
            loader = threading.Thread(target=_flood, args=(load, url, seconds + 2, script))
            loader.start()
            threading.Event().wait(1.0)  # the flood is running
            busy = wrk(url + "/v1/health", seconds, connections=1)
            loader.join()
            flooded.append(busy["rps"])
            p50_flooded.append(_micros(str(busy["p50"])))
            ocsp_rates.append(load["rps"])
    return {
        "health_under_ocsp_flood_over_alone": statistics.median(f / a for f, a in zip(flooded, alone, strict=True)),
        "health_rps_alone": statistics.median(alone),
        "health_rps_under_flood": statistics.median(flooded),
        "ocsp_rps_4_connections": statistics.median(ocsp_rates),
        "health_p50_us_alone": statistics.median(p50_alone),
        "health_p50_us_under_flood": statistics.median(p50_flooded),
    }


def run(seconds: float = 3.0, rounds: int = 4) -> dict[str, float]:
    if not wrk_available():
        return {"http_skipped": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        plain, with_nonce = _setup(home)
        result = presigned_vs_health(home, plain, with_nonce, seconds, rounds)
        result.update(flood(home, with_nonce, seconds, max(2, rounds // 2)))
        return result


def _flood(into: dict[str, float], url: str, seconds: float, script: str) -> None:
    into.update(wrk(url + "/v1/ocsp", seconds, connections=4, script=script))


def _micros(text: str) -> float:
    for unit, factor in (("us", 1.0), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:42} {value:12.2f}")
