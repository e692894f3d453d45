"""The pyHanko B-LT anchor of bench/bench_verify.py really checks revocation, from the DSS, hard-fail.

Each document below is validated by the very function the anchor times (`validate_b_lt`); only the
document's DSS differs. If the anchor ever stopped checking revocation, the revoked and the missing-CRL
cases would pass and the benchmark would be comparing us with less work than it claims.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.baseline_pyhanko import Pki, make_crl, make_pki, sign_b_lt, sign_b_t, validate_b_lt
from bench.documents import make_pdf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def _with_dss(pki: Pki, crls: list[Any]) -> bytes:
    """Signed and timestamped like the anchor's document, then a DSS with the chain and `crls` only."""
    from pyhanko.sign.validation import DocumentSecurityStore

    out = io.BytesIO(sign_b_t(make_pdf(), pki))
    DocumentSecurityStore.add_dss(out, None, certs=[pki.signer, pki.tsa, pki.root], crls=crls, force_write=True)
    return out.getvalue()


def test_the_anchor_document_is_b_lt_and_valid(pki: Pki) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import DocumentSecurityStore

    pdf = sign_b_lt(make_pdf(pad_to=100_000), pki, make_crl(pki))
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    assert len(dss.crls) == 1 and len(dss.certs) >= 2
    status = validate_b_lt(pdf, pki.root)
    assert status.bottom_line and not status.revoked
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    assert status.coverage.name == "ENTIRE_REVISION"  # the DSS update after the signature was analysed


def test_a_good_crl_added_by_hand_passes_too(pki: Pki) -> None:
    assert validate_b_lt(_with_dss(pki, [make_crl(pki)]), pki.root).bottom_line


def test_signer_revoked_on_the_dss_crl_fails(pki: Pki) -> None:
    status = validate_b_lt(_with_dss(pki, [make_crl(pki, revoked=[pki.signer])]), pki.root)
    assert not status.bottom_line
    assert status.revoked and not status.trusted


def test_tsa_revoked_on_the_dss_crl_fails(pki: Pki) -> None:
    status = validate_b_lt(_with_dss(pki, [make_crl(pki, revoked=[pki.tsa])]), pki.root)
    assert not status.bottom_line
    assert status.timestamp_validity is not None and status.timestamp_validity.revoked


def test_no_crl_in_the_dss_fails_hard(pki: Pki) -> None:
    """Hard-fail: the certificates name a CRL, none is at hand and nothing is fetched. The same document
    passes with pyHanko's default soft-fail: the anchor's setting is what makes the CRL matter."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature

    pdf = _with_dss(pki, [])
    status = validate_b_lt(pdf, pki.root)
    assert not status.bottom_line and not status.trusted
    reader = PdfFileReader(io.BytesIO(pdf))
    soft = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [pki.root], "allow_fetching": False, "revocation_mode": "soft-fail"}
    )
    assert validate_pdf_signature(reader.embedded_signatures[0], soft).bottom_line


def test_the_anchor_process_holds_nothing_of_ours() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "bench.baseline_pyhanko", "0.1", "b_lt_hardfail"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(answer.stdout)["per_s"] > 0
