"""pyHanko as shipped: `validate_pdf_signature` of a P-256 PDF with no revocation checks, timed in a
process of its own (`python -m bench.baseline_pyhanko SECONDS`), so that nothing trustseal installs
in its own process (verify/asn1_speedups.py, verify/pdf_speedups.py) speeds up the anchor. Prints one
JSON object: {"per_s": rate}. Imports only pyHanko, asn1crypto, cryptography and bench.documents.
"""

from __future__ import annotations

import io
import json
import sys
import time


def measure(seconds: float) -> float:
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
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        n += 1
    return n / (time.perf_counter() - start)


if __name__ == "__main__":
    rate = measure(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
    assert "verify.pdf_speedups" not in sys.modules and "verify.asn1_speedups" not in sys.modules
    print(json.dumps({"per_s": rate}))
