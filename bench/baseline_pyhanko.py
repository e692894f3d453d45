"""pyHanko as shipped, timed in a process of its own, so that nothing trustseal installs in its own process
(verify/asn1_speedups.py, verify/pdf_speedups.py) speeds up the anchors. Imports only pyHanko,
pyhanko-certvalidator, asn1crypto, cryptography and bench helpers that import only those. Two anchors:

`no_revocation` (issue 4's anchor, kept so that figures stay comparable): `validate_pdf_signature` of a
100 KB PDF signed with a self-signed P-256 certificate, no timestamp, no DSS, soft-fail revocation with
nothing to check.

`b_lt_hardfail` (issue 10's like-for-like anchor): a genuine P-256 PAdES B-LT document made by pyHanko alone.
A P-256 root CA and signer, and an RSA-2048 TSA (pyHanko's in-process `DummyTimeStamper` signs RSA only)
under the same root, made with `cryptography`; the signer and the TSA carry a CRL distribution point
(never fetched). Signed with subfilter ETSI.CAdES.detached, a signature timestamp, and
`embed_validation_info=True`: pyHanko validates both chains against the root's CRL and writes the
certificates, the CRL and a VRI entry into the DSS. Each timed iteration validates it the way pyHanko 0.38
offers for B-LT (`validate_pdf_ltv_signature` is gone since 0.38; it was deprecated in 0.31): parse the
PDF, read its DSS into a `ValidationContext` (trust root given, `allow_fetching=False`,
`revocation_mode="hard-fail"`) with `DocumentSecurityStore.as_validation_context`, then
`validate_pdf_signature`: integrity, CMS signature, signer chain with revocation from the DSS, the
timestamp token with its TSA chain and revocation from the same DSS, modification analysis of the DSS
revision. tests/bench/test_baseline.py proves that revocation is checked: the signer or the TSA listed on
the CRL, or a DSS without the CRL, makes the same validation fail.

`python -m bench.baseline_pyhanko SECONDS [KIND]` prints one JSON object {"per_s": rate}. With `--serve`
it prepares both anchors once, then answers each line of standard input ("KIND SECONDS", or "SECONDS" for
no_revocation) with such an object: the caller alternates short slices of the anchors and of its own
code, so that all see the same noise.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CRL_URL = "http://crl.bench.invalid/root.crl"  # never fetched: allow_fetching=False everywhere


def prepare() -> Callable[[], None]:
    """The `no_revocation` anchor: one timed iteration."""
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


@dataclass(frozen=True)
class Pki:
    """A P-256 root, a P-256 signer and an RSA TSA under it, as asn1crypto objects plus the keys."""

    root: Any  # asn1crypto.x509.Certificate
    root_key: Any  # cryptography EllipticCurvePrivateKey
    signer: Any
    signer_key: Any  # asn1crypto.keys.PrivateKeyInfo
    tsa: Any
    tsa_key: Any  # asn1crypto.keys.PrivateKeyInfo


def make_pki(now: datetime | None = None) -> Pki:
    from asn1crypto import keys, x509
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or datetime.now(UTC)

    def name(cn: str) -> cx.Name:
        organisation = cx.NameAttribute(NameOID.ORGANIZATION_NAME, "pyHanko bench")
        return cx.Name([organisation, cx.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(**on: bool) -> cx.KeyUsage:
        flags = "digital_signature content_commitment key_encipherment data_encipherment key_agreement"
        flags += " key_cert_sign crl_sign encipher_only decipher_only"
        return cx.KeyUsage(**{flag: on.get(flag, False) for flag in flags.split()})

    def pkcs8(key: Any) -> Any:
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return keys.PrivateKeyInfo.load(der)

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        cx.CertificateBuilder()
        .subject_name(name("bench P-256 root"))
        .issuer_name(name("bench P-256 root"))
        .public_key(root_key.public_key())
        .serial_number(cx.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(cx.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(cx.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def leaf(cn: str, public_key: Any, key_usage: cx.KeyUsage, eku: cx.ExtendedKeyUsage | None) -> Any:
        builder = (
            cx.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(root.subject)
            .public_key(public_key)
            .serial_number(cx.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(cx.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(cx.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(cx.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .add_extension(
                cx.CRLDistributionPoints(
                    [cx.DistributionPoint([cx.UniformResourceIdentifier(CRL_URL)], None, None, None)]
                ),
                critical=False,
            )
        )
        if eku is not None:
            builder = builder.add_extension(eku, critical=True)
        return x509.Certificate.load(builder.sign(root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))

    signer_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Pki(
        root=x509.Certificate.load(root.public_bytes(serialization.Encoding.DER)),
        root_key=root_key,
        signer=leaf(
            "bench P-256 signer", signer_key.public_key(), usage(digital_signature=True, content_commitment=True), None
        ),
        signer_key=pkcs8(signer_key),
        tsa=leaf(
            "bench TSA",
            tsa_key.public_key(),
            usage(digital_signature=True),
            cx.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
        ),
        tsa_key=pkcs8(tsa_key),
    )


def make_crl(pki: Pki, revoked: Sequence[Any] = (), now: datetime | None = None) -> Any:
    """The root's CRL (asn1crypto CertificateList), listing `revoked` (certificates) as of an hour ago."""
    from asn1crypto import crl
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization

    now = now or datetime.now(UTC)
    builder = (
        cx.CertificateRevocationListBuilder()
        .issuer_name(cx.load_der_x509_certificate(pki.root.dump()).subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=7))
        .add_extension(cx.CRLNumber(1), critical=False)
        .add_extension(cx.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()), critical=False)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            cx.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - timedelta(hours=2))
            .add_extension(cx.CRLReason(cx.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    der = builder.sign(pki.root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return crl.CertificateList.load(der)


def _signer(pki: Pki) -> Any:
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return signers.SimpleSigner(
        signing_cert=pki.signer, signing_key=pki.signer_key, cert_registry=SimpleCertificateStore()
    )


def _timestamper(pki: Pki) -> Any:
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    return DummyTimeStamper(tsa_cert=pki.tsa, tsa_key=pki.tsa_key)


def sign_b_lt(document: bytes, pki: Pki, crl: Any) -> bytes:
    """PAdES B-LT by pyHanko alone: signature, signature timestamp, DSS with what validation needs."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(trust_roots=[pki.root], crls=[crl], allow_fetching=False, revocation_mode="hard-fail")
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1",
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=True,
        validation_context=context,
    )
    out = io.BytesIO()
    quiet = logging.getLogger("pyhanko.sign.signers.pdf_signer")  # "... fetching is not allowed": intended
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(document)),
            meta,
            signer=_signer(pki),
            timestamper=_timestamper(pki),
            output=out,
        )
    finally:
        quiet.setLevel(level)
    return out.getvalue()


def sign_b_t(document: bytes, pki: Pki) -> bytes:
    """The same signature and timestamp without validation information (tests add their own DSS)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES)
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(document)),
        meta,
        signer=_signer(pki),
        timestamper=_timestamper(pki),
        output=out,
    )
    return out.getvalue()


def validate_b_lt(pdf: bytes, root: Any) -> Any:
    """One anchor validation: revocation from the document's DSS, hard-fail, nothing fetched."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature

    reader = PdfFileReader(io.BytesIO(pdf))
    embedded = reader.embedded_signatures[0]
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"}
    )
    return validate_pdf_signature(embedded, context)


def prepare_b_lt() -> Callable[[], None]:
    """The `b_lt_hardfail` anchor: one timed iteration."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import DocumentSecurityStore

    from bench.documents import make_pdf

    pki = make_pki()
    pdf = sign_b_lt(make_pdf(pad_to=100_000), pki, make_crl(pki))
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    assert len(dss.crls) >= 1 and len(dss.certs) >= 2, "the DSS lacks the CRL or the certificates"
    root = pki.root

    def once() -> None:
        status = validate_b_lt(pdf, root)
        assert status.bottom_line and status.timestamp_validity is not None, status.pretty_print_details()

    once()
    return once


KINDS: dict[str, Callable[[], Callable[[], None]]] = {"no_revocation": prepare, "b_lt_hardfail": prepare_b_lt}


def rate(once: Callable[[], None], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        n += 1
    return n / (time.perf_counter() - start)


def measure(seconds: float, kind: str = "no_revocation") -> float:
    return rate(KINDS[kind](), seconds)


def _isolated() -> None:
    assert "verify.pdf_speedups" not in sys.modules and "verify.asn1_speedups" not in sys.modules
    ours = ("gm", "keys", "store", "ledger", "ca", "seal", "signing", "verify", "policies", "api")
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ours)
    assert not loaded, f"trustseal modules in the anchor's process: {loaded}"


def _serve() -> None:
    prepared = {kind: make() for kind, make in KINDS.items()}
    _isolated()
    print(json.dumps({"ready": True, "kinds": sorted(prepared)}), flush=True)
    for line in sys.stdin:
        words = line.split()
        kind, seconds = ("no_revocation", words[0]) if len(words) == 1 else (words[0], words[1])
        print(json.dumps({"per_s": rate(prepared[kind], float(seconds))}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve()
    else:
        per_s = measure(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0, *sys.argv[2:3])
        _isolated()
        print(json.dumps({"per_s": per_s}))
