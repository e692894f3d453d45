"""Checks of a GB/T 38540 / GM/T 0031 seal and of a seal signature (`SES_Signature`), shared by the PDF,
OFD and bare-input verifiers. Signatures are SM2 with the default ID (ECDSA-SHA256 for P-256 seals)."""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, crl, x509

from gm import oids, ses, sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from gm.sm3 import sm3
from verify import ofd_picture, pdf_speedups, revocation_time, rules, x509_fast
from verify.crl_scope import covers, may_list
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


def _digest_kind(kind: str) -> str | None:
    """The digest a certDigestList entry names (SHA-1 is not accepted: a second preimage of a
    certificate is not needed, but a weak digest is no binding to rely on)."""
    name = kind.strip().lower().replace("-", "")
    if name in ("sm3", oids.SM3):
        return "sm3"
    return name if name in ("sha256", "sha384", "sha512") else None


def _digest_matches(kind: str, value: bytes, cert_der: bytes) -> bool:
    name = _digest_kind(kind)
    if name == "sm3":
        return sm3(cert_der) == value
    return name is not None and hashlib.new(name, cert_der).digest() == value


def check_seal(
    out: SignatureReport,
    seal: ses.Seal,
    signer_cert: bytes | None,
    moment: datetime,
    trust: TrustStore,
    sources: Sources,
    proven: bool = False,
) -> None:
    """`seal` (maker signature, maker trusted in its role and region, signer listed, the registered
    seal under its esID) and `seal_validity` at `moment` (`proven`: a timestamp proves the signature
    existed then; otherwise `moment` is the validation time and nothing the document claims counts)."""
    ok, how = maker_signature_ok(seal)
    if not ok:
        out.add(
            "seal", FAILED, "SEAL_SIGNATURE_FAILURE", f"the maker's signature over the seal does not verify ({how})"
        )
    elif signer_cert is not None and (listed := _lists(seal, signer_cert)) is not True:
        made = f"seal v{seal.version}, maker signature valid ({how})"
        if listed is False:
            detail = f"{made}; the signer's certificate is not in the seal's certificate list"
            out.add("seal", FAILED, "SEAL_CERT_MISMATCH", detail)
        else:
            out.add("seal", INDETERMINATE, "SEAL_CERT_LIST_UNUSABLE", f"{made}; {listed}")
    else:
        status, code, detail = _maker_trust(seal, moment, trust, sources)
        out.add("seal", status, code, f"seal v{seal.version}, maker signature valid ({how}); {detail}")
    registered = sources.seal_status(seal.es_id)
    digest = sm3(seal.der)
    if registered is not None and registered.sm3 is not None and digest not in {registered.sm3, *registered.previous}:
        out.add("seal_validity", FAILED, "SEAL_NOT_REGISTERED",
                f"another seal is registered under esID {seal.es_id}: this one is not it")  # fmt: skip
        return
    start, end = seal.valid_start, seal.valid_end
    when = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    state = registered.status if registered is not None else None
    since = registered.since if registered is not None else None
    if state in ("revoked", "suspended") and proven and since is not None and when < since:
        state = None  # a timestamp proves the seal was applied before the change
    if state == "revoked":
        out.add("seal_validity", INDETERMINATE, "SEAL_REVOKED",
                f"seal {seal.es_id} is revoked, and no timestamp proves it was applied before that")  # fmt: skip
    elif when < start and proven:
        out.add("seal_validity", FAILED, "SEAL_EXPIRED",
                f"timestamped {when.isoformat()}, before the seal's validity began ({start.isoformat()})")  # fmt: skip
    elif not start <= when <= end:
        out.add("seal_validity", INDETERMINATE, "SEAL_EXPIRED",
                f"outside the seal's validity ({start.isoformat()} to {end.isoformat()}) at the validation time, "
                "and no timestamp proves the seal was applied within it")  # fmt: skip
    elif state == "suspended":
        out.add("seal_validity", INDETERMINATE, "SEAL_SUSPENDED", f"seal {seal.es_id} is suspended now")
    else:
        out.add("seal_validity", PASSED, "OK", f"valid {start.date()} to {end.date()}")


def _maker_trust(seal: ses.Seal, moment: datetime, trust: TrustStore, sources: Sources) -> tuple[str, str, str]:
    """Whether the seal's maker may vouch for this seal: named under `seal_makers` by an accepted trust
    list (or --maker) for the seal's region, or certified for the seal-maker role (its EKU) by a
    granted CA of the seal's region, on a valid, unrevoked chain. The seal itself names the maker, so
    nothing about the maker is taken from the seal."""
    listed = trust.listed_maker(seal.maker_cert)
    if listed:
        regional = [m for m in listed if m.vouches_for(seal.es_id)]
        if not regional:
            regions = ", ".join(sorted({str(m.region_code) for m in listed}))
            why = f"a seal maker of region {regions} cannot vouch for esID {seal.es_id}"
            return INDETERMINATE, "SEAL_MAKER_REGION", why
        if not any(m.status_at(moment) == "granted" for m in regional):
            why = f"the seal maker is not granted on the trust list at {moment.isoformat()}"
            return INDETERMINATE, "SEAL_MAKER_INVALID", why
        stale = next((m.stale_since for m in regional if m.stale_since is not None), None)
        if stale is not None:
            return INDETERMINATE, "TRY_LATER", f"the trust list naming the seal maker expired at {stale.isoformat()}"
        return PASSED, "OK", f"maker {regional[0].name} is a trusted seal maker"
    try:
        maker = pdf_speedups.intern_certificate(x509.Certificate.load(seal.maker_cert))
        ekus = set(maker.extended_key_usage_value.native or []) if maker.extended_key_usage_value else set()
        name = maker.subject.human_friendly
    except (ValueError, TypeError, KeyError) as exc:
        return INDETERMINATE, "SEAL_MAKER_UNTRUSTED", f"the maker's certificate cannot be read: {str(exc)[:200]}"
    if not ekus & oids.EKU_SEAL_MAKERS:
        return (
            INDETERMINATE,
            "SEAL_MAKER_UNTRUSTED",
            (f"the maker ({name}) is on no trust list and its certificate is not certified for making seals"),
        )
    scratch = SignatureReport()
    check_chain(scratch, seal.maker_cert, [], moment, trust, sources)
    problems = [c for c in scratch.checks if c.status not in (PASSED, SKIPPED) or c.code == "NO_REVOCATION_SOURCE"]
    if problems:
        why = "; ".join(f"{c.name}: {c.code} {c.detail}".strip() for c in problems)
        return INDETERMINATE, "SEAL_MAKER_INVALID", f"the maker's certificate ({name}) does not validate: {why[:400]}"
    region = (scratch.region or "").split(" ")[0]
    if not region or not seal.es_id.startswith(region):
        return (
            INDETERMINATE,
            "SEAL_MAKER_REGION",
            (f"the maker is certified in region {region or '?'}, which cannot vouch for esID {seal.es_id}"),
        )
    return PASSED, "OK", f"maker {name} certified for seal making in region {region}"


def _lists(seal: ses.Seal, cert_der: bytes) -> bool | str:
    """True if the seal's certificate list names the signer, False if it names others, else why it
    cannot tell (an empty list, an unknown list type, a v1 seal without a list)."""
    if seal.cert_list_type == 1 and seal.certs:
        return cert_der in seal.certs
    if seal.cert_list_type == 2 and seal.cert_digests:
        known = [(k, v) for k, v in seal.cert_digests if _digest_kind(k) is not None]
        if not known:
            return "the seal's certificate digests use no known digest algorithm"
        return any(_digest_matches(kind, value, cert_der) for kind, value in known)
    if seal.cert_list_type in (1, 2):
        return "the seal's certificate list is empty"
    return f"the seal has no usable certificate list (type {seal.cert_list_type})"


def check_ses_signature(
    out: SignatureReport,
    signature: ses.SealSignature,
    trust: TrustStore,
    sources: Sources,
    data_hash: bytes | None,
    moment: datetime,
) -> None:
    """A `SES_Signature`: signature over TBS_Sign, dataHash over the signed data (INDETERMINATE
    SIGNED_DATA_NOT_FOUND without it: a signature bound to nothing proves nothing), the seal, the
    signer listed, the signer's chain. `moment` is the validation time: the signature's timeInfo is
    the signer's claim, shown and never relied on."""
    ok, how = signature_ok(signature.signer_cert, signature.signature_algorithm, signature.signature,
                           signature.signed_bytes)  # fmt: skip
    if ok:
        out.add("signature", PASSED, "OK", f"signature over TBS_Sign valid ({how})")
    else:
        rule = "DER(TBS_Sign)" if signature.version == 4 else "DER(TBS_Sign) per GM/T 0031-2014"
        out.add("signature", FAILED, "SIG_CRYPTO_FAILURE", f"the signature over {rule} does not verify ({how})")
    if data_hash is None:
        detail = "the signed data was not given: dataHash not checked"
        out.add("integrity", INDETERMINATE, "SIGNED_DATA_NOT_FOUND", detail)
    elif data_hash == signature.data_hash:
        out.add("integrity", PASSED, "OK", "dataHash matches")
    else:
        out.add("integrity", FAILED, "DATA_HASH_FAILURE",
                f"dataHash {signature.data_hash.hex()[:16]}… != computed {data_hash.hex()[:16]}…")  # fmt: skip
    claimed = signature.time_info if isinstance(signature.time_info, datetime) else None
    out.signing_time = claimed.isoformat() if claimed else signature.time_info.decode("ascii", "replace")  # type: ignore[union-attr]
    out.signing_time_source = "claimed"
    rules.add_claimed_time(out, out.signing_time)
    signer = None
    try:
        signer = x509.Certificate.load(signature.signer_cert)
        out.signer = dict(describe_cert(signer))
    except (ValueError, TypeError) as exc:
        out.signer = {"error": f"unreadable certificate: {exc}"}
    out.seal = describe(signature.seal)
    check_seal(out, signature.seal, signature.signer_cert, moment, trust, sources)
    check_chain(out, signature.signer_cert, [], moment, trust, sources)
    if signer is not None:
        check_signer_role(out, signer)


# EKUs under which a certificate may sign documents (RFC 9336 documentSigning, emailProtection as S/MIME and
# many vendors' signing certificates carry it, anyExtendedKeyUsage, Adobe's and Microsoft's document signing)
DOCUMENT_SIGNING_EKUS = frozenset({"1.3.6.1.5.5.7.3.36", "1.3.6.1.5.5.7.3.4", "2.5.29.37.0",
                                   "1.2.840.113583.1.1.5", "1.3.6.1.4.1.311.10.3.12"})  # fmt: skip


def signer_role_problem(cert: x509.Certificate) -> str | None:
    """Why `cert` is not certified for signing documents, else None. A certificate that names its
    purposes (RFC 5280 §4.2.1.12) is used for those only: a TLS server or client certificate, a TSA's,
    an OCSP responder's or a seal maker's signs no document, whoever holds it and whatever its subject
    says (tried: a tls-client certificate carrying an organisation's USCC signed a PDF: PASSED). Without
    the extension, a key usage must allow digitalSignature or nonRepudiation."""
    try:
        usages = cert.extended_key_usage_value
        key_usage = cert.key_usage_value
    except (ValueError, TypeError, KeyError) as exc:
        return f"the signer's certificate extensions cannot be read: {str(exc)[:200]}"
    if usages is not None and not {usage.dotted for usage in usages} & DOCUMENT_SIGNING_EKUS:
        names = ", ".join(sorted(str(usage.native) for usage in usages))
        return f"the signer's certificate is certified for {names}, not for signing documents"
    if key_usage is not None and not {"digital_signature", "non_repudiation"} & set(key_usage.native):
        return "the signer's certificate's key usage allows neither digitalSignature nor nonRepudiation"
    return None


def check_signer_role(out: SignatureReport, cert: x509.Certificate) -> None:
    """A `chain` check INDETERMINATE CHAIN_CONSTRAINTS_FAILURE when signer_role_problem finds one."""
    problem = signer_role_problem(cert)
    if problem is not None:
        out.add("chain", INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE", problem)


def check_chain(
    out: SignatureReport,
    cert_der: bytes,
    extra: list[bytes],
    moment: datetime,
    trust: TrustStore,
    sources: Sources,
    proven: bool = False,
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
    diagnose_chain(out, cert, others, context, moment, trust, proven)


def fetched_crls(context: dict[str, Any]) -> list[crl.CertificateList]:
    """The CRLs pyHanko fetched itself for this validation (a standalone verifier, `Sources(fetch=True)`):
    they go through `listed_before` too, or a revocation with an earlier invalidityDate on a fetched list
    would never be seen (pyHanko reads revocationDate only; a review found such a document PASSED)."""
    fetchers = context.get("fetchers")
    if fetchers is None:
        return []
    return list(fetchers.crl_fetcher.fetched_crls())


def listed_before(path: Any, crls: list[crl.CertificateList], moment: datetime) -> str | None:
    """A certificate on `path` that a CRL at hand (the DSS's, the service's or fetched, signed by its issuer)
    lists as revoked at or before `moment` — or unfit from an earlier invalidityDate — described; else
    None. One rule for every format: PDF (verify/pdf.py) and the rest (`diagnose_chain`).

    pyhanko-certvalidator stops at the first revocation source that answers: a B-LT document's
    embedded OCSP response saying "good" at the signing time hides a newer CRL on which the
    certificate was revoked with an earlier date (keyCompromise found later). The newest word wins."""
    certs = list(path.iter_certs(include_root=True))
    for child, parent in zip(certs[1:], certs, strict=False):
        serial = child.serial_number
        for listing in crls:
            tbs = listing["tbs_cert_list"]
            if tbs["issuer"] != parent.subject or not may_list(listing):  # an entry revokes, whatever the scope
                continue
            entries = tbs["revoked_certificates"]
            hit = next((e for e in entries if e["user_certificate"].native == serial), None) if entries else None
            if hit is None:
                continue
            when = revocation_time.crl_entry(hit)  # an earlier invalidityDate counts (a compromise found late)
            if when is None or when > moment:
                continue
            if not verify_signature(parent.public_key.dump(), listing["signature_algorithm"],
                                    listing["signature"].native, tbs.dump()):  # fmt: skip
                continue
            reason = None
            for extension in hit["crl_entry_extensions"] or []:
                if extension["extn_id"].native == "crl_reason":
                    reason = extension["extn_value"].native
            because = f" ({reason})" if reason else ""
            revoked_on = hit["revocation_date"].native
            since = "" if when == revoked_on else f", its key invalid from {when.isoformat()} (invalidityDate)"
            return f"{child.subject.human_friendly} revoked on {revoked_on.isoformat()}{because}{since}"
    return None


def diagnose_chain(
    out: SignatureReport,
    cert: x509.Certificate,
    others: list[x509.Certificate],
    context_kwargs: dict[str, Any],
    moment: datetime,
    trust: TrustStore,
    proven: bool = False,
) -> None:
    """Validate `cert` at `moment` (hard-fail revocation) and add `chain` and `revocation` checks with
    the precise reason; then judge each CA on the path by its trust-list status at `moment`.
    `proven`: a timestamp proves the signature existed at `moment` (else `moment` is the validation
    time). Time rules per EN 319 102-1: see revoked() and out_of_bounds()."""
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
        rules.revoked(out, str(exc), moment, proven)
        return
    except cv.InsufficientRevinfoError as exc:
        out.add("chain", PASSED)
        out.add("revocation", INDETERMINATE, "REVOCATION_UNKNOWN", str(exc))
        return
    except cv.ExpiredError as exc:
        rules.out_of_bounds(out, "EXPIRED", str(exc), moment, proven)
        return
    except cv.NotYetValidError as exc:
        rules.out_of_bounds(out, "NOT_YET_VALID", str(exc), moment, proven)
        return
    except (cv.PathBuildingError, cv.PathValidationError, cv.ValidationError, ValueError) as exc:
        out.add("chain", INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", str(exc)[:300])
        out.add("revocation", SKIPPED)
        return
    judge_path(out, path, moment, trust)
    crls = list(context_kwargs.get("crls", []))
    listed = listed_before(path, [*crls, *fetched_crls(context_kwargs)], moment)
    if listed is not None:
        rules.revoked(out, listed, moment, proven)
        return
    add_not_revoked(out, path, cert, crls, list(context_kwargs.get("ocsps", [])))


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
        if any(listing["tbs_cert_list"]["issuer"] == parent.subject and covers(listing, child) for listing in crls):
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
    else:
        rules.not_revoked(out, names)


def tsa_untrusted(certs: list[Any], trust: TrustStore, now: datetime) -> str | None:
    """Why a timestamp whose TSA path is `certs` (anchor first, as judge_cas takes them) proves no
    time, else None. A timestamp moves validation into the past only if its TSA is trusted *now*
    (EN 319 102-1: the proof of existence is itself validated at the current time): every CA on its
    path granted by a fresh trust list now. A TSA below a CA withdrawn since — e.g. for a key
    compromise — proves nothing, or whoever holds that key dates any signature back before the
    withdrawal and gets the CA judged "granted" at that time. Both PDF paths ask this."""
    scratch = SignatureReport()
    judge_cas(scratch, certs, now, trust)
    check = scratch.checks[-1]
    return None if check.status == PASSED else f"its TSA's path is not trusted now: {check.code} {check.detail}"


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
        out.add("chain", INDETERMINATE, "CA_WITHDRAWN",
                f"{', '.join(withdrawn)} not trusted at {moment.isoformat()}, and nothing proves the "
                "signature existed while it was")  # fmt: skip
    elif stale is not None:
        out.add("chain", INDETERMINATE, "TRY_LATER",
                f"the trust list naming this path's CAs expired at {stale.isoformat()}: fetch a fresh one")  # fmt: skip
    else:
        out.add("chain", PASSED)
