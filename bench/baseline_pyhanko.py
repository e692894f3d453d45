"""pyHanko as shipped: `validate_pdf_signature` of a P-256 PDF with no revocation checks, timed in a
process of its own, so that nothing trustseal installs in its own process (verify/asn1_speedups.py,
verify/pdf_speedups.py) speeds up the anchor. Imports only pyHanko, asn1crypto, cryptography and
bench.documents.

`python -m bench.baseline_pyhanko SECONDS` prints one JSON object {"per_s": rate}. With `--serve` it
prepares once, then answers each line of standard input (seconds to run) with such an object: the
caller alternates short slices of the anchor and of its own code, so that both see the same noise.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable


def prepare() -> Callable[[], None]:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from bench.bench_sealing import _baseline_signer
    from bench.documents import make_pdf

    document = make_pdf(pad_to=100_000)
    signer = _baseline_signer()
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(document)), signers.PdfSignatureMetadata(
        field_name="Signature1"), signer=signer, output=out)  # type: ignore[arg-type]  # fmt: skip
    pdf = out.getvalue()
    root = signer.signing_cert  # type: ignore[attr-defined]

    def once() -> None:
        embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
        context = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
        assert validate_pdf_signature(embedded, context).bottom_line

    once()
    return once


def rate(once: Callable[[], None], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        n += 1
    return n / (time.perf_counter() - start)


def measure(seconds: float) -> float:
    return rate(prepare(), seconds)


def _isolated() -> None:
    assert "verify.pdf_speedups" not in sys.modules and "verify.asn1_speedups" not in sys.modules


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        once = prepare()
        _isolated()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            print(json.dumps({"per_s": rate(once, float(line))}), flush=True)
    else:
        per_s = measure(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
        _isolated()
        print(json.dumps({"per_s": per_s}))
