"""Full verifications per second of a 100 KB sealed PDF (SM2 seal, B-LT: chain + revocation from the
embedded DSS + seal checks + modification analysis), against pyHanko's `validate_pdf_signature` of a P-256
PDF with no revocation checks, in the same run; and OFD verifications per second of a vendor file.

The anchor runs in a process of its own (bench/baseline_pyhanko.py), alternating with ours round by
round: trustseal's process-wide speed-ups of asn1crypto and pyHanko must not speed up the anchor.
Ours goes through `Verifier.verify` as a caller would: the fast path (verify/pdf_fast.py) when the
document allows it. Also shown: our full pyHanko-based path alone (`full_path_per_s`), for context.
Caching parsed CA certificates / CRLs and verified CA signatures across documents is fair; nothing per
document is cached. Target (issue 4): >= 2x the anchor, aim 4x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.documents import make_pdf

INTEROP = Path(__file__).resolve().parents[1].parent / "shared" / "interop" / "ofd" / "1.ofd"


def _rate(func: Callable[[], object], seconds: float) -> float:
    func()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        func()
        n += 1
    return n / (time.perf_counter() - start)


def _baseline(seconds: float) -> float:
    """pyHanko's rate in a fresh process (see bench/baseline_pyhanko.py)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "bench.baseline_pyhanko", str(seconds)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    rate: float = json.loads(done.stdout.strip().splitlines()[-1])["per_s"]
    return rate


def run(seconds: float = 3.0, rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRUSTSEAL_HOME"] = tmp
        from api.context import open_context
        from ca.hierarchy import create_demo_hierarchy
        from seal.demo import create_demo_seals
        from signing.pdf import Placement
        from signing.service import Caller
        from verify.service import Verifier
        from verify.trust import TrustStore

        context = open_context(create=True)
        create_demo_hierarchy(context.ca)
        create_demo_seals(context.seals)
        document = make_pdf(pad_to=100_000)
        caller = Caller(role="issuer", name="bench", seal_ids=("*",))
        sealed = context.signing.seal_pdf(
            document, seal_id="demo-370000-sm2", caller=caller, placement=Placement(), level="B-LT"
        ).pdf
        store = TrustStore()
        store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
        verifier = Verifier(store)  # offline: the DSS is the only revocation source
        assert verifier.verify(sealed).result == "PASSED"

        verifier.verify(sealed)
        assert verifier.pdf.fast_declined == "", verifier.pdf.fast_declined

        ours_rates, base_rates, full_rates, ofd_rates = [], [], [], []
        ofd = INTEROP.read_bytes() if INTEROP.exists() else None
        for _ in range(rounds):
            base_rates.append(_baseline(seconds))
            ours_rates.append(_rate(lambda: verifier.verify(sealed), seconds))
            full_rates.append(_rate(lambda: verifier.pdf.full(sealed), seconds))
            if ofd is not None:
                ofd_rates.append(_rate(lambda: verifier.verify(ofd), seconds))
        context.close()
    med = statistics.median
    result = {
        "pyhanko_p256_no_revocation_per_s": med(base_rates),
        "sm2_b_lt_full_verify_per_s": med(ours_rates),
        "ratio_full_verify_vs_pyhanko": med(ours_rates) / med(base_rates),
        "full_path_only_per_s": med(full_rates),
    }
    if ofd_rates:
        result["ofd_vendor_verify_per_s"] = med(ofd_rates)
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40} {value:10.2f}")
