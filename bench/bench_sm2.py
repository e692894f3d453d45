"""SM2 sign / verify ops/s through gm/ against `openssl speed sm2`, measured alternately in one run.

What gm/ times is what a caller pays: the full `sign(data)` (Z value, SM3, Botan's constant-time
signer, DER) and `verify(signature, data)` from Python. OpenSSL's `speed` times its raw EC operation,
so the comparison is conservative for us. Ratios > 1 mean gm/ is faster. Targets (issue 2): >= 1x, aim 3x.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time

from gm import sm2

MESSAGE = b"trustseal benchmark message: a licence digest would be 32 bytes" * 2


def _ops(func: object, seconds: float) -> float:
    assert callable(func)
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            func()
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def gm_speed(seconds: float) -> tuple[float, float]:
    key = sm2.SM2PrivateKey.generate()
    public = key.public_key
    signature = key.sign(MESSAGE)
    sign = _ops(lambda: key.sign(MESSAGE), seconds)
    verify = _ops(lambda: public.verify(signature, MESSAGE), seconds)
    return sign, verify


def openssl_speed(seconds: float) -> tuple[float, float]:
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(max(1, round(seconds))), "sm2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    match = re.search(r"SM2 \(\w+\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"cannot read `openssl speed sm2` output:\n{out}")
    return float(match.group(1)), float(match.group(2))


def run(seconds: float = 2.0, rounds: int = 3) -> dict[str, float]:
    gm_sign, gm_verify, os_sign, os_verify = [], [], [], []
    for _ in range(rounds):  # alternate, so machine noise hits both sides alike
        s, v = gm_speed(seconds)
        gm_sign.append(s)
        gm_verify.append(v)
        s, v = openssl_speed(seconds)
        os_sign.append(s)
        os_verify.append(v)
    med = statistics.median
    return {
        "gm_sm2_sign_per_s": med(gm_sign),
        "gm_sm2_verify_per_s": med(gm_verify),
        "openssl_sm2_sign_per_s": med(os_sign),
        "openssl_sm2_verify_per_s": med(os_verify),
        "ratio_sign_gm_vs_openssl": med(gm_sign) / med(os_sign),
        "ratio_verify_gm_vs_openssl": med(gm_verify) / med(os_verify),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:32} {value:10.2f}")
