"""Checks of a GB/T 38540 / GM/T 0031 seal and of a seal signature (`SES_Signature`), shared by the PDF,
OFD and bare-input verifiers. Signatures are SM2 with the default ID (ECDSA-SHA256 for P-256 seals)."""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, x509

from gm import oids, ses, sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from gm.sm3 import sm3
from verify import ofd_picture, pdf_speedups, x509_fast
from verify.names import describe as describe_cert
from verify.names import parse_fully
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, SignatureReport
from verify.sources import Sources
from verify.trust import TrustStore

SEAL_TYPE_NAMES = {1: "official 公章", 2: "personal 个人章", 3: "finance 财务章", 4: "contract 合同章",
                   5: "invoice 发票章", 6: "licence 证照章"}  # fmt: skip


def describe(seal: ses.Seal) -> dict[str, Any]:
    picture = None
    kind = seal.picture_type.lower()
    if kind in ("png", "gif", "bmp", "jpg", "jpeg"):
        mime = {"jpg": "jpeg"}.get(kind, kind)
        picture = f"data:image/{mime};base64,{base64.b64encode(seal.picture).decode()}"
    elif kind == "ofd":
        png = ofd_picture.render_png(seal.picture)
        picture = None if png is None else f"data:image/png;base64,{base64.b64encode(png).decode()}"
    return {
        "name": seal.name,
        "es_id": seal.es_id,
        "version": seal.version,
        "vendor": seal.vendor_id,
        "type": SEAL_TYPE_NAMES.get(seal.seal_type, str(seal.seal_type)),
        "valid_start": seal.valid_start.isoformat(),
        "valid_end": seal.valid_end.isoformat(),
        "picture_type": seal.picture_type,
        "picture": picture,  # a data: URL; None when the picture cannot be drawn (shown as a placeholder)
        "size_mm": [seal.width_mm, seal.height_mm],
    }


def _algorithm(oid: str) -> algos.SignedDigestAlgorithm:
    return algos.SignedDigestAlgorithm({"algorithm": oid})


def signature_ok(cert_der: bytes, algorithm_oid: str, signature: bytes, signed: bytes) -> tuple[bool, str]:
    """(valid, detail) for a raw SES signature by the key of `cert_der`."""
    if algorithm_oid == oids.SM2_WITH_SM3:  # the common case, without asn1crypto
        try:
            view = x509_fast.certificate(cert_der)
        except (x509_fast.Unsupported, ValueError):
            view = None
        if view is not None and view.key_family == "sm2":
            try:
                return sm2.public_key(view.public_key_bits).verify(signature, signed), "SM2 with the default ID"
            except sm2.InvalidKey as exc:
                return False, f"cannot check: {exc}"
    try:
        cert = x509.Certificate.load(cert_der)
        spki = cert.public_key.dump()
        if algorithm_oid == oids.SM2_WITH_SM3 and sm2.is_sm2_spki(cert.public_key):
            return sm2.SM2PublicKey.from_spki(spki).verify(signature, signed), "SM2 with the default ID"
        return verify_signature(spki, _algorithm(algorithm_oid), signature, signed), algorithm_oid
    except (ValueError, TypeError, KeyError, UnsupportedSignatureAlgorithm, sm2.InvalidKey) as exc:
        return False, f"cannot check: {exc}"


# A seal is the same bytes in every document it seals, as a certificate is: parsing it and checking
# its maker's signature are not per-document work, so both are remembered, bounded in count and in
# size (anyone may upload seals: at most ~4 MB parsed, a few hundred bytes per remembered signature).
_SEAL_CACHE_MAX_BYTES = 64 * 1024
_MAKER_VERIFIED: dict[tuple[str, bytes, bytes, bytes], str] = {}
_MAKER_VERIFIED_MAX = 1024


@functools.lru_cache(maxsize=64)
def _parsed_seal(der: bytes) -> ses.Seal:
    return ses.parse_seal(der)


def parsed_seal(der: bytes) -> ses.Seal:
    """ses.parse_seal, remembered for seals of ordinary size (ses.Seal is immutable)."""
    return _parsed_seal(der) if len(der) <= _SEAL_CACHE_MAX_BYTES else ses.parse_seal(der)


def maker_signature_ok(seal: ses.Seal) -> tuple[bool, str]:
    """signature_ok for the maker's signature over the seal; a valid one is remembered by everything the
    answer depends on, the large parts by digest (the algorithm is outside the signed bytes in v4 seals)."""
    key = (
        seal.signature_algorithm,
        hashlib.sha256(seal.maker_cert).digest(),
        seal.signature,
        hashlib.sha256(seal.signed_bytes).digest(),
    )
    how = _MAKER_VERIFIED.get(key)
    if how is not None:
        return True, how
    ok, how = signature_ok(seal.maker_cert, seal.signature_algorithm, seal.signature, seal.signed_bytes)
    if ok:
        if len(_MAKER_VERIFIED) >= _MAKER_VERIFIED_MAX:
            _MAKER_VERIFIED.clear()
        _MAKER_VERIFIED[key] = how
    return ok, how


def _digest_matches(kind: str, value: bytes, cert_der: bytes) -> bool:
    name = kind.strip().lower()
    if name in ("sm3", oids.SM3):
        return sm3(cert_der) == value
    if name in ("sha1", "sha256", "sha384", "sha512"):
        return hashlib.new(name, cert_der).digest() == value
    return False


def check_seal(
    out: SignatureReport,
    seal: ses.Seal,
    signer_cert: bytes | None,
    moment: datetime,
    trust: TrustStore,
    sources: Sources,
) -> None:
    """`seal` (maker signature, maker in a trusted hierarchy, signer listed) and `seal_validity`."""
    ok, how = maker_signature_ok(seal)
    if not ok:
        out.add(
            "seal", FAILED, "SEAL_SIGNATURE_FAILURE", f"the maker's signature over the seal does not verify ({how})"
        )
    elif signer_cert is not None and not _lists(seal, signer_cert):
        out.add("seal", FAILED, "SEAL_CERT_MISMATCH", "the signer's certificate is not in the seal's certificate list")
    else:
        maker = pdf_speedups.intern_certificate(x509.Certificate.load(seal.maker_cert))
        issuer_known = any(ca.subject == maker.issuer for ca in [*trust.trust_roots(), *trust.intermediates()])
        detail = (
            f"seal v{seal.version} by {maker.subject.native.get('common_name', '?')}, maker signature valid ({how})"
        )
        if not issuer_known:
            detail += "; the seal maker's issuer is not among the trusted anchors"
        out.add("seal", PASSED, "OK", detail)
    start, end = seal.valid_start, seal.valid_end
    when = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    state = sources.seal_status(seal.es_id)
    if state == "revoked":
        out.add("seal_validity", FAILED, "SEAL_REVOKED", f"seal {seal.es_id} is revoked")
    elif not start <= when <= end:
        out.add("seal_validity", FAILED, "SEAL_EXPIRED",
                f"used {when.isoformat()}, valid {start.isoformat()} to {end.isoformat()}")  # fmt: skip
    elif state == "suspended":
        out.add("seal_validity", INDETERMINATE, "SEAL_SUSPENDED", f"seal {seal.es_id} is suspended now")
    else:
        out.add("seal_validity", PASSED, "OK", f"valid {start.date()} to {end.date()}")


def _lists(seal: ses.Seal, cert_der: bytes) -> bool:
    if seal.cert_list_type == 1 and seal.certs:
        return cert_der in seal.certs
    if seal.cert_list_type == 2:
        return any(_digest_matches(kind, value, cert_der) for kind, value in seal.cert_digests)
    return True  # v1 seals from some vendors carry no usable list: nothing to compare against


def check_ses_signature(
    out: SignatureReport,
    signature: ses.SealSignature,
    trust: TrustStore,
    sources: Sources,
    data_hash: bytes | None,
) -> None:
    """A `SES_Signature`: signature over TBS_Sign, the seal, the signer listed, dataHash if data given."""
    ok, how = signature_ok(signature.signer_cert, signature.signature_algorithm, signature.signature,
                           signature.signed_bytes)  # fmt: skip
    if ok:
        out.add("signature", PASSED, "OK", f"signature over TBS_Sign valid ({how})")
    else:
        rule = "DER(TBS_Sign)" if signature.version == 4 else "DER(TBS_Sign) per GM/T 0031-2014"
        out.add("signature", FAILED, "SIG_CRYPTO_FAILURE", f"the signature over {rule} does not verify ({how})")
    if data_hash is None:
        out.add("integrity", SKIPPED, "OK", "no signed data given")
    elif data_hash == signature.data_hash:
        out.add("integrity", PASSED, "OK", "dataHash matches")
    else:
        out.add("integrity", FAILED, "DATA_HASH_FAILURE",
                f"dataHash {signature.data_hash.hex()[:16]}… != computed {data_hash.hex()[:16]}…")  # fmt: skip
    moment = signature.time_info if isinstance(signature.time_info, datetime) else None
    out.signing_time = moment.isoformat() if moment else signature.time_info.decode("ascii", "replace")  # type: ignore[union-attr]
    out.signing_time_source = "claimed"
    try:
        out.signer = dict(describe_cert(x509.Certificate.load(signature.signer_cert)))
    except (ValueError, TypeError) as exc:
        out.signer = {"error": f"unreadable certificate: {exc}"}
    out.seal = describe(signature.seal)
    check_seal(out, signature.seal, signature.signer_cert, moment or _v1_time(signature.time_info), trust, sources)


def _v1_time(value: datetime | bytes) -> datetime:
    if isinstance(value, datetime):
        return value
    text = value.decode("ascii", "replace").strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_chain(
    out: SignatureReport,
    cert_der: bytes,
    extra: list[bytes],
    moment: datetime,
    trust: TrustStore,
    sources: Sources,
) -> None:
    """`chain` and `revocation` for a certificate outside a CMS (OFD and bare seal signatures)."""
    try:
        cert = x509.Certificate.load(cert_der)
        others = [x509.Certificate.load(c) for c in extra]
        for item in (cert, *others):
            parse_fully(item)  # malformed extensions: find out now (GBK in names is no reason to stop)
    except (ValueError, TypeError, KeyError) as exc:
        out.add("chain", INDETERMINATE, "FORMAT_FAILURE", f"a certificate cannot be parsed: {str(exc)[:200]}")
        out.add("revocation", SKIPPED)
        return
    crls, ocsps = sources.revocation([cert, *others])
    context = {
        "trust_roots": trust.trust_roots(),
        "other_certs": [*others, *trust.intermediates()],
        "crls": crls,
        "ocsps": ocsps,
        "allow_fetching": sources.fetch,
        "fetchers": sources.fetchers(),
    }
    diagnose_chain(out, cert, others, context, moment, trust)


def diagnose_chain(
    out: SignatureReport,
    cert: x509.Certificate,
    others: list[x509.Certificate],
    context_kwargs: dict[str, Any],
    moment: datetime,
    trust: TrustStore,
) -> None:
    """Validate `cert` at `moment` (hard-fail revocation) and add `chain` and `revocation` checks with
    the precise reason; then judge each CA on the path by its trust-list status at `moment`."""
    import asyncio

    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator import errors as cv

    from verify.sm2_validator import SM2SignatureValidator

    context = ValidationContext(
        **context_kwargs,
        revocation_mode="hard-fail",
        moment=moment,
        retroactive_revinfo=True,
        signature_validator=SM2SignatureValidator(),
    )
    validator = CertificateValidator(cert, intermediate_certs=others, validation_context=context)
    try:
        path = asyncio.run(validator.async_validate_usage(set()))  # type: ignore[no-untyped-call]
    except cv.RevokedError as exc:
        out.add("chain", PASSED)
        out.add("revocation", FAILED, "REVOKED", str(exc))
        return
    except cv.InsufficientRevinfoError as exc:
        out.add("chain", PASSED)
        out.add("revocation", INDETERMINATE, "REVOCATION_UNKNOWN", str(exc))
        return
    except cv.ExpiredError as exc:
        out.add("chain", FAILED, "EXPIRED", str(exc))
        out.add("revocation", SKIPPED)
        return
    except cv.NotYetValidError as exc:
        out.add("chain", FAILED, "NOT_YET_VALID", str(exc))
        out.add("revocation", SKIPPED)
        return
    except (cv.PathBuildingError, cv.PathValidationError, cv.ValidationError, ValueError) as exc:
        out.add("chain", INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", str(exc)[:300])
        out.add("revocation", SKIPPED)
        return
    judge_path(out, path, moment, trust)
    add_not_revoked(out, path, cert, list(context_kwargs.get("crls", [])), list(context_kwargs.get("ocsps", [])))


def without_revocation_source(path: Any, crls: list[Any], ocsps: list[Any]) -> list[x509.Certificate]:
    """Certificates on `path` (leaf first, anchor excluded) whose revocation nobody checked: they name
    no CRL distribution point and no OCSP responder, and no CRL from their issuer nor OCSP response
    about their serial was at hand. pyhanko-certvalidator's hard-fail accepts them silently (X.509
    allows such certificates); the report says so instead of "not revoked"."""
    certs = list(path.iter_certs(include_root=True))
    out: list[x509.Certificate] = []
    for child, parent in reversed(list(zip(certs[1:], certs, strict=False))):
        if child.crl_distribution_points_value is not None or child.ocsp_urls:
            continue
        if any(listing["tbs_cert_list"]["issuer"] == parent.subject for listing in crls):
            continue
        if any(_ocsp_about(response, child.serial_number) for response in ocsps):
            continue
        out.append(child)
    return out


def _ocsp_about(response: Any, serial: int) -> bool:
    try:
        basic = response["response_bytes"]["response"].parsed
        return any(r["cert_id"]["serial_number"].native == serial for r in basic["tbs_response_data"]["responses"])
    except (ValueError, TypeError, KeyError):
        return False


def add_not_revoked(out: SignatureReport, path: Any, cert: x509.Certificate, crls: list[Any], ocsps: list[Any]) -> None:
    """The `revocation` check of a path the validator accepted: "not revoked", unless nobody could
    check the signer's certificate (SKIPPED, NO_REVOCATION_SOURCE) or a CA's (named in the detail)."""
    unchecked = without_revocation_source(path, crls, ocsps)
    names = "; ".join(c.subject.human_friendly for c in unchecked)
    if unchecked and unchecked[0].dump() == cert.dump():
        detail = f"not checked: {names} names no CRL or OCSP service, and no revocation data about it was at hand"
        out.add("revocation", SKIPPED, "NO_REVOCATION_SOURCE", detail)
    elif unchecked:
        out.add("revocation", PASSED, "OK", "not revoked at the signing time; not checked (no CRL or OCSP service "
                f"named, no data at hand): {names}")  # fmt: skip
    else:
        out.add("revocation", PASSED, "OK", "not revoked at the signing time")


def judge_path(out: SignatureReport, path: Any, moment: datetime, trust: TrustStore) -> None:
    """`chain` for a path pyHanko built (see judge_cas)."""
    judge_cas(out, [path.trust_anchor.certificate, *path.iter_certs(include_root=False)], moment, trust)


def judge_cas(out: SignatureReport, certs: list[Any], moment: datetime, trust: TrustStore) -> None:
    """`chain`: every CA on the path (anchor first) must be granted in the trust list at `moment`; the
    region is the issuing CA's (the listed CA nearest the signer). A path whose anchor comes from a list
    past its next_update is INDETERMINATE (TRY_LATER): the list may since have withdrawn a CA. An
    explicit anchor (--anchor) is the user's own decision and rests on no list."""
    withdrawn = []
    stale = None
    anchored = bool(certs) and certs[0] is not None and trust.is_anchor(certs[0])
    for ca_cert in certs:
        if ca_cert is None or not getattr(ca_cert, "ca", False):
            continue
        listed = trust.listed(ca_cert)
        if listed is not None:
            out.region = f"{listed.region_code} {listed.region_name}".strip()  # nearest to the signer wins
            if listed.status_at(moment) != "granted":
                withdrawn.append(listed.name)
            if listed.stale_since is not None and not anchored:
                stale = listed.stale_since
    if withdrawn:
        out.add("chain", FAILED, "CA_WITHDRAWN", f"{', '.join(withdrawn)} not trusted at {moment.isoformat()}")
    elif stale is not None:
        out.add("chain", INDETERMINATE, "TRY_LATER",
                f"the trust list naming this path's CAs expired at {stale.isoformat()}: fetch a fresh one")  # fmt: skip
    else:
        out.add("chain", PASSED)
