"""Verifying sealed PDFs: every signature, with pyHanko doing integrity, CMS, path building and difference
analysis, and this module adding what pyHanko does not know: SM2 (through the validator hook), trust-list
status of each CA at the signing time, the embedded `SESeal`, seal and licence status.
"""

from __future__ import annotations

import functools
import io
import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, crl, ocsp, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader, process_data_at_eof
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, extract_contents
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from gm import oids, ses
from gm.sm3 import sm3
from policies.pdf_content import PYHANKO, find_active_content
from verify import licence, names, pdf_fast, pdf_speedups, rules, seal_checks
from verify.cms import (
    check_carried_seal,
    check_signed_data,
    hygiene,
    load_signed_data,
    seal_attribute,
    timestamp_hygiene,
)
from verify.limits import WORK_LIMIT, Budget, WorkLimits, signed_length
from verify.names import describe as describe_cert
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, Check, Report, SignatureReport, format_failure
from verify.sm2_validator import SM2SignatureValidator
from verify.sources import Sources
from verify.trust import TrustStore

log = logging.getLogger("trustseal.verify")
SIGNATURE_TIMESTAMP = oids.ID_AA_SIGNATURE_TIMESTAMP
MAX_SIGNATURES = 50
# what pyHanko's reader raises on damaged input (AssertionError too: it asserts on some structures)
READ_ERRORS = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError, AssertionError,
               NotImplementedError, zlib.error)  # fmt: skip


def _subject(cert: x509.Certificate) -> dict[str, Any]:
    return dict(describe_cert(cert))


def _timestamp_time(signer_info: cms.SignerInfo) -> datetime | None:
    for attr in signer_info["unsigned_attrs"] or []:
        if attr["type"].dotted == SIGNATURE_TIMESTAMP:
            token = attr["values"][0]
            info = token["content"]["encap_content_info"]["content"].parsed
            moment: datetime = info["gen_time"].native
            return moment
    return None


def _xmp_licence(reader: PdfFileReader, revision: int) -> bytes | None:
    """The XMP packet the catalog names in `revision` (None: none, or a stream that cannot be read)."""
    try:
        metadata = reader.get_historical_root(revision).get("/Metadata")
        if metadata is None:
            return None
        data: bytes = metadata.get_object().data
        return data
    except (PdfError, KeyError, ValueError, TypeError, AttributeError):
        return None


class _Licences:
    """The licence claim of each revision of one document, read once: every signature judges the claim
    of the revision it signed, and a later revision with another claim is a modification of it."""

    def __init__(self, reader: PdfFileReader) -> None:
        self.reader = reader
        self._claims: dict[int, licence.LicenceClaim] = {}
        self._parsed: dict[bytes, licence.LicenceClaim] = {}  # revisions that keep the packet parse it once

    def at(self, revision: int) -> licence.LicenceClaim:
        claim = self._claims.get(revision)
        if claim is None:
            packet = _xmp_licence(self.reader, revision)
            claim = self._parsed.get(packet or b"")
            if claim is None:
                claim = self._parsed[packet or b""] = licence.read_claim(packet)
            self._claims[revision] = claim
        return claim

    def changed_after(self, revision: int) -> str | None:
        signed = self.at(revision)
        for later in range(revision + 1, self.reader.xrefs.total_revisions):
            why = licence.changed(signed, self.at(later))
            if why is not None:
                return why
        return None


class PdfVerifier:
    """`fast`: try verify/pdf_fast.py first (it proves common-layout documents valid, or gives up and
    this class's full path decides)."""

    def __init__(
        self, trust: TrustStore, sources: Sources | None = None, fast: bool = True, limits: WorkLimits | None = None
    ) -> None:
        self.trust = trust
        self.sources = sources or Sources()
        self.limits = limits or WorkLimits()
        # results of signatures made by trusted CA keys (certificates, CRLs) are remembered across
        # documents; a document's own signatures never are (their keys are not CA keys)
        self.validator = SM2SignatureValidator(cache_keys=trust.ca_keys())
        self.fast = fast
        self._fast_verified: dict[pdf_fast.VerifiedKey, bool] = {}
        self._trust_views = pdf_fast.TrustViews()
        self.fast_declined = ""  # why the fast path gave up on the last document (for tests and logs)

    def verify(self, data: bytes, at: datetime | None = None, budget: Budget | None = None) -> Report:
        """`budget`: what this verification may spend (both paths draw on it); by default a fresh one."""
        self.fast_declined = ""
        budget = budget or self.limits.budget(len(data))
        if self.fast:
            try:
                checker = pdf_fast.Checker(self.trust, self._fast_verified, self._trust_views.of(self.trust))
                return pdf_fast.verify_fast(data, self.trust, self.sources, checker, at, budget)
            except Exception as exc:  # any doubt: the full path examines the document
                self.fast_declined = f"{type(exc).__name__}: {exc}"
                log.debug("fast path declined: %s", self.fast_declined)
        return self.full(data, at, budget)

    def full(self, data: bytes, at: datetime | None = None, budget: Budget | None = None) -> Report:
        budget = budget or self.limits.budget(len(data))
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            if reader.encrypted:
                return format_failure("pdf", "the PDF is encrypted")
            signatures = _signatures(reader)
        except READ_ERRORS as exc:
            return format_failure("pdf", f"unreadable PDF: {exc}")
        report = Report(format="pdf")
        try:
            report.active_content = find_active_content(reader.root, PYHANKO)
        except READ_ERRORS as exc:
            report.active_content = [f"not fully scanned: {exc}"]
        if not signatures:
            report.code, report.detail = "NO_SIGNATURE_FOUND", "the PDF has no signature fields with a signature"
            return report
        dss_context_kwargs: dict[str, Any] = {}
        try:
            dss = DocumentSecurityStore.read_dss(reader)
            dss_crls, dss_ocsps = _dss_revinfo(dss)
            dss_context_kwargs = {
                "other_certs": _usable((pdf_speedups.intern_certificate(c) for c in dss.load_certs()), self.trust),
                "crls": dss_crls,
                "ocsps": dss_ocsps,
            }
        except (PdfError, KeyError, ValueError, TypeError, AttributeError):
            pass  # no DSS (the common case), or one we cannot read: then it simply does not help
        licences = _Licences(reader)
        for embedded, also in signatures[:MAX_SIGNATURES]:
            name = getattr(embedded, "field_name", None)
            byte_range = embedded.byte_range if isinstance(embedded, RawSignature) else _byte_range(embedded)
            why = budget.take(signed_length(byte_range, len(data)))
            if why is not None:  # hashed nothing, judged nothing
                out = SignatureReport(field_name=name)
                out.add("integrity", INDETERMINATE, WORK_LIMIT, f"not verified: {why}")
            else:
                try:
                    if isinstance(embedded, RawSignature):
                        out = self._raw(embedded, data, at, reader, licences)
                    else:
                        out = self._one(embedded, dss_context_kwargs, at, licences, budget)
                except Exception as exc:  # a verifier reports, it does not crash: the trace goes to the log
                    log.exception("verifying a PDF signature failed unexpectedly")
                    out = SignatureReport(field_name=name)
                    problem = f"the signature could not be processed: {type(exc).__name__}"
                    out.add("format", FAILED, "FORMAT_FAILURE", problem)
            out.also_fields = also
            report.signatures.append(out)
        if len(signatures) > MAX_SIGNATURES:  # never a silent PASSED for what was not looked at
            report.checks.append(Check("signatures", INDETERMINATE, WORK_LIMIT,
                                       f"{len(signatures) - MAX_SIGNATURES} signatures beyond the first "
                                       f"{MAX_SIGNATURES} were not verified"))  # fmt: skip
        return report

    def _raw(
        self, raw: RawSignature, data: bytes, at: datetime | None, reader: PdfFileReader, licences: _Licences
    ) -> SignatureReport:
        """A signature pyHanko cannot read as CMS: some vendors put a bare SES_Signature, or a CMS
        labelled with the GM/T 0010 OID, in /Contents. Checked with our own rules over the byte ranges."""
        out = SignatureReport(field_name=raw.field_name)
        content, problem = raw.signed_content(data)
        if problem:
            out.add("format", FAILED, "FORMAT_FAILURE", problem)
            return out
        try:
            ses_signature = ses.parse_ses_signature(raw.contents)
        except ses.SESFormatError:
            ses_signature = None
        if ses_signature is not None:
            out.add("format", PASSED, "OK", f"SES_Signature v{ses_signature.version} in /Contents")
            moment, _ = rules.validation_time(at, None)  # an SES timeInfo is claimed, never proven
            seal_checks.check_ses_signature(out, ses_signature, self.trust, self.sources, sm3(content), moment)
        else:
            try:
                signed = load_signed_data(raw.contents)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                out.add("format", FAILED, "FORMAT_FAILURE", f"/Contents is neither CMS nor SES_Signature: {exc}")
                return out
            out.add("format", PASSED, "OK", "CMS SignedData (GM/T 0010 content type)")
            check_signed_data(out, signed, content, at, self.trust, self.sources)
        signed_revision = _raw_modifications(out, raw, data, reader, licences)
        if signed_revision is not None:
            licence.judge(out, licences.at(signed_revision), out.signer.get("organization_identifier"), self.sources)
        return out

    def _one(
        self,
        embedded: EmbeddedPdfSignature,
        dss: dict[str, Any],
        at: datetime | None,
        licences: _Licences,
        budget: Budget | None = None,
    ) -> SignatureReport:
        out = SignatureReport(field_name=embedded.field_name)
        signer_info = embedded.signer_info
        try:
            cert = embedded.signer_cert
            out.signer = _subject(cert)
        except (ValueError, KeyError) as exc:
            out.add("format", FAILED, "FORMAT_FAILURE", f"no signer certificate: {exc}")
            return out
        out.add("format", PASSED)
        # The validation time is now (or the `at` a privileged caller gave); only a timestamp that
        # validates moves it into the past. A claimed signing time is shown, never relied on.
        stamped = _timestamp_time(signer_info)
        stamp_problem = timestamp_hygiene(signer_info)
        if stamp_problem is not None:  # a weak or malformed token proves no time
            stamped = None
        claimed = embedded.self_reported_timestamp
        shown = stamped or claimed
        out.signing_time = shown.isoformat() if shown else None
        out.signing_time_source = "timestamp" if stamped else "claimed" if claimed else None
        moment, proven = rules.validation_time(at, stamped)

        certs: list[x509.Certificate] = [*_usable(embedded.other_embedded_certs, self.trust), cert]
        crls, ocsps = self.sources.revocation(certs)
        usable_ocsps, unmatched = _matchable([*dss.get("ocsps", []), *ocsps])
        material: dict[str, Any] = {
            "trust_roots": self.trust.trust_roots(),
            "other_certs": [*certs, *dss.get("other_certs", []), *self.trust.intermediates()],
            "crls": [*dss.get("crls", []), *crls],
            "ocsps": usable_ocsps,
            "allow_fetching": self.sources.fetch,
            "fetchers": self.sources.fetchers(),
        }
        ts_context = None
        if stamped is not None:  # built only when there is a timestamp to check
            ts_context = ValidationContext(
                trust_roots=self.trust.trust_roots(),
                other_certs=material["other_certs"],
                crls=material["crls"],
                ocsps=material["ocsps"],
                allow_fetching=self.sources.fetch,
                fetchers=material["fetchers"],
                revocation_mode="soft-fail",
                signature_validator=self.validator,
            )
        problem = hygiene(signer_info, embedded.signed_data["encap_content_info"]["content_type"].dotted)
        for name, found in (("signature", problem), ("signing_time", stamp_problem)):
            if found is not None and found[0] == FAILED:  # no contentType: pyHanko would only raise
                out.add(name, *found)
                return out
        try:
            status = validate_pdf_signature(embedded, self._context(material, moment), ts_validation_context=ts_context)
            ts = status.timestamp_validity
            tsa_problem = _tsa_untrusted(ts, self.trust, rules.validation_time(at, None)[0])
            if proven and not (ts is not None and ts.intact and ts.valid and ts.trusted and tsa_problem is None):
                moment, proven = rules.validation_time(at, None)  # a timestamp that does not validate proves nothing
                status = validate_pdf_signature(
                    embedded, self._context(material, moment), ts_validation_context=ts_context
                )
        except (PdfError, ValueError, KeyError, TypeError) as exc:
            out.add("integrity", INDETERMINATE, "FORMAT_FAILURE", f"the signature could not be evaluated: {exc}")
            return out

        # integrity: digest and byte range
        if not status.intact:
            out.add("integrity", FAILED, "HASH_FAILURE", "the signed bytes do not match the messageDigest")
        elif status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION):
            out.add(
                "integrity", FAILED, "HASH_FAILURE", f"the byte range does not cover the revision ({status.coverage})"
            )
        else:
            out.add("integrity", PASSED)
        if problem is not None:  # pyHanko accepts MD5 and SHA-1
            out.add("signature", *problem)
        else:
            out.add(*(("signature", PASSED) if status.valid else ("signature", FAILED, "SIG_CRYPTO_FAILURE")))

        # signing time
        if stamp_problem is not None:
            out.add("signing_time", *stamp_problem)
        else:
            failed = None
            if stamped is not None and not proven:
                why = tsa_problem if tsa_problem is not None else _timestamp_problem(status.timestamp_validity)
                failed = f"the signature timestamp ({stamped.isoformat()}) proves nothing: {why}"
            rules.add_signing_time(out, at=at, moment=moment, proven=proven, claimed=claimed, failed_timestamp=failed)

        if _stopped(out, budget, "chain", "the chain, revocation, seal and modifications"):
            return out
        self._chain_and_revocation(out, status, moment, cert, material, proven)
        seal_checks.check_signer_role(out, cert)
        revocation = next((c for c in reversed(out.checks) if c.name == "revocation"), None)
        if unmatched and revocation is not None and revocation.status in (PASSED, SKIPPED):
            revocation.status, revocation.code = INDETERMINATE, "REVOCATION_UNKNOWN"
            revocation.detail = (
                f"an OCSP response at hand identifies certificates by {', '.join(unmatched)}, "
                "which cannot be matched: it might say revoked"
            )
        self._seal(out, signer_info, cert, moment, proven)
        if _stopped(out, budget, "modifications", "the modifications"):
            return out
        self._modifications(out, status, embedded, licences.changed_after(embedded.signed_revision))
        licence.judge(out, licences.at(embedded.signed_revision), out.signer.get("organization_identifier"),
                      self.sources)  # fmt: skip
        return out

    def _context(self, material: dict[str, Any], moment: datetime) -> ValidationContext:
        return ValidationContext(
            **material,
            revocation_mode="hard-fail",
            moment=moment,
            retroactive_revinfo=True,
            signature_validator=self.validator,
        )

    def _chain_and_revocation(
        self,
        out: SignatureReport,
        status: Any,
        moment: datetime,
        cert: x509.Certificate,
        context: dict[str, Any],
        proven: bool,
    ) -> None:
        indic = status.trust_problem_indic.name if status.trust_problem_indic is not None else None
        path = status.validation_path
        if status.trusted and path is not None:
            seal_checks.judge_path(out, path, moment, self.trust)
            listed = seal_checks.listed_before(path, [*context["crls"], *seal_checks.fetched_crls(context)], moment)
            if listed is not None:
                rules.revoked(out, listed, moment, proven)
            else:
                seal_checks.add_not_revoked(out, path, cert, context["crls"], context["ocsps"])
            return
        if indic in ("REVOKED", "REVOKED_NO_POE", "REVOKED_CA_NO_POE"):
            out.add("chain", PASSED)
            details = status.revocation_details
            when = f" on {details.revocation_date.isoformat()}" if details is not None else ""
            rules.revoked(out, f"certificate revoked{when}", moment, proven)
            return
        # pyHanko folds several causes into one indication: ask the path validator for the precise one
        seal_checks.diagnose_chain(out, cert, list(context["other_certs"]), context, moment, self.trust, proven)

    def _seal(self, out: SignatureReport, signer_info: cms.SignerInfo, cert: x509.Certificate, moment: datetime,
              proven: bool) -> None:  # fmt: skip
        der = seal_attribute(signer_info)
        if der is None:
            rules.add_no_seal(out)
            return
        check_carried_seal(out, der, None, cert.dump(), moment, self.trust, self.sources, proven)

    def _modifications(
        self, out: SignatureReport, status: Any, embedded: EmbeddedPdfSignature, licence_change: str | None
    ) -> None:
        """`licence_change`: why a later revision's licence metadata is not the signed one's (pyHanko's
        diff policy lets any XMP update pass)."""
        level = status.modification_level
        if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
            rules.add_unmodified(out)
            return
        suspicious = None
        if level is None or level == ModificationLevel.OTHER or status.docmdp_ok is False:
            suspicious = str(status.diff_result) if status.diff_result is not None else "unrecognised changes"
        suspicious = "; ".join(filter(None, (licence_change, suspicious))) or None
        _judge_later_revisions(out, embedded.reader, embedded.signed_revision, suspicious, level)


def _usable(certs: Iterable[x509.Certificate], trust: TrustStore) -> list[x509.Certificate]:
    """Path material from the document (the CMS certificate set, the DSS) that may help build a path:
    not a certificate whose names or key cannot be parsed (it can be on no path), and not a look-alike
    of a trusted CA — its key, another DER — which pyHanko may try first and then give up on. Neither
    is signed material, so dropping them changes nothing the signature says (both found by fuzzing:
    one byte changed in an embedded CA certificate made the full path INDETERMINATE)."""
    trusted = trust.ca_keys()
    out = []
    for cert in certs:
        if not _parses(cert.dump()):
            continue
        if cert.public_key.dump() in trusted and not trust.is_ca_certificate(cert.dump()):
            continue
        out.append(cert)
    return out


@functools.lru_cache(maxsize=1024)
def _parses(der: bytes) -> bool:
    """Whether every part of a certificate parses (names leniently): pyHanko reads extensions such as
    the key identifiers when it registers path material, and a malformed one raised out of the
    validation (found by fuzzing). Remembered by DER: the same certificates come in every document."""
    try:
        cert = x509.Certificate.load(der)
        names.parse_fully(cert)
        cert.subject.hashable, cert.issuer.hashable  # noqa: B018
    except (ValueError, TypeError, KeyError):
        return False
    return True


def _matchable(responses: list[ocsp.OCSPResponse]) -> tuple[list[ocsp.OCSPResponse], list[str]]:
    """The OCSP responses whose CertIDs pyhanko-certvalidator can match, and the hashes of those it
    cannot: it looks the hash up as an attribute of asn1crypto's Name and key (only sha1 and sha256
    exist), and any other hash raised out of the validation. An unmatchable response may still say
    "revoked": the revocation check then stays open (see _one), it is never dropped into a PASSED."""
    usable, unmatched = [], []
    for response in responses:
        try:
            basic = response["response_bytes"]["response"].parsed
            singles = basic["tbs_response_data"]["responses"]
            hashes = {single["cert_id"]["hash_algorithm"]["algorithm"].native for single in singles}
            for cert in basic["certs"] or []:  # pyHanko reads these when the context is built
                cert.subject.hashable, cert.issuer.hashable  # noqa: B018
        except (ValueError, TypeError, KeyError):
            continue  # unreadable, and unsigned material: it says nothing (found by fuzzing)
        if hashes <= {"sha1", "sha256"}:
            usable.append(response)
        else:
            unmatched.extend(sorted(hashes - {"sha1", "sha256"}))
    return usable, unmatched


def _tsa_untrusted(ts: Any, trust: TrustStore, now: datetime) -> str | None:
    """seal_checks.tsa_untrusted for a timestamp pyHanko validated (None when it did not: then
    _timestamp_problem says why)."""
    path = getattr(ts, "validation_path", None) if ts is not None and ts.trusted else None
    if path is None:
        return None
    return seal_checks.tsa_untrusted([path.trust_anchor.certificate, *path.iter_certs(include_root=False)], trust, now)


def _timestamp_problem(ts: Any) -> str:
    """Why a signature timestamp does not validate, in words (every failed check explains itself)."""
    if ts is None:
        return "the timestamp token cannot be read"
    if not ts.intact:
        return "its message imprint does not match the signature value"
    if not ts.valid:
        return "the TSA's signature over it does not verify"
    indic = ts.trust_problem_indic.name if ts.trust_problem_indic is not None else "no trusted path"
    subject = ts.signing_cert.subject.human_friendly if ts.signing_cert is not None else "unknown TSA"
    return f"the TSA certificate ({subject}) does not validate now: {indic}"


def _stopped(out: SignatureReport, budget: Budget | None, check: str, what: str) -> bool:
    """Between expensive steps: once the budget is spent, `check` is INDETERMINATE and the rest undone."""
    why = budget.spent() if budget is not None else None
    if why is not None:
        out.add(check, INDETERMINATE, WORK_LIMIT, f"{what} not checked: {why}")
    return why is not None


def _byte_range(embedded: EmbeddedPdfSignature) -> object:
    try:
        return embedded.sig_object.get("/ByteRange")
    except (PdfError, KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RawSignature:
    field_name: str
    byte_range: tuple[int, int, int, int]
    contents: bytes  # /Contents without the zero padding
    reference: generic.Reference | None = None  # the signature dictionary's object, when indirect

    def signed_content(self, data: bytes) -> tuple[bytes, str | None]:
        a, b, c, d = self.byte_range
        if a != 0 or b <= 0 or c <= b or d < 0 or c + d > len(data):
            return b"", f"the /ByteRange {self.byte_range} does not describe two ranges around /Contents"
        hole = data[b:c]
        if not (hole.startswith(b"<") and hole.rstrip().endswith(b">")):
            return b"", "the /ByteRange gap is not exactly the /Contents string"
        return data[a:b] + data[c : c + d], None


PdfSignature = EmbeddedPdfSignature | RawSignature


def _signatures(reader: PdfFileReader) -> list[tuple[PdfSignature, list[str]]]:
    """Every filled signature field: pyHanko's view when it can read the CMS, a raw view otherwise,
    with the names of the other fields whose /V is the same signature dictionary (the same object, or
    one with the same /ByteRange and /Contents): one signature is verified once, however many fields
    name it (tried: 49 such fields on a 19 MB PDF cost 4.4 s of CPU)."""
    out: list[tuple[PdfSignature, list[str]]] = []
    seen: dict[object, tuple[str, list[str]]] = {}  # identity of a signature -> (its field, other fields)
    for fq_name, sig_obj, sig_field in enumerate_sig_fields(reader, filled_status=True):
        keys = _identities(sig_field, sig_obj)
        known = next((seen[key] for key in keys if key in seen), None)
        if known is not None:
            first, also = known
            if fq_name != first and fq_name not in also:
                also.append(fq_name)
            for key in keys:
                seen.setdefault(key, known)
            continue
        also = []
        for key in keys:
            seen[key] = (fq_name, also)
        out.append((_signature(reader, fq_name, sig_obj, sig_field), also))
    return out


def _identities(sig_field: Any, value: Any) -> list[object]:
    """What makes two fields' signatures the same: the /V object, and its /ByteRange with /Contents."""
    keys: list[object] = []
    try:
        raw = sig_field.get_object().raw_get("/V")
        if isinstance(raw, generic.IndirectObject):
            keys.append(("object", raw.idnum, raw.generation))
        dictionary = value.get_object()
        keys.append(("bytes", tuple(int(v) for v in dictionary["/ByteRange"]), bytes(dictionary["/Contents"])))
    except (PdfError, KeyError, TypeError, ValueError, AttributeError):
        pass  # an unreadable signature stays on its own (and fails as such)
    return keys


def _signature(reader: PdfFileReader, fq_name: str, sig_obj: Any, sig_field: Any) -> PdfSignature:
    try:
        return EmbeddedPdfSignature(reader, sig_field, fq_name)
    except (ValueError, TypeError, KeyError, PdfError, AttributeError):
        value = sig_obj.get_object()
        try:
            byte_range = tuple(int(v) for v in value["/ByteRange"])
            contents = extract_contents(value)
        except (ValueError, TypeError, KeyError, PdfError):
            byte_range, contents = (0, 0, 0, 0), b""
        if len(byte_range) != 4:
            byte_range = (0, 0, 0, 0)
        value_ref = sig_field.get_object().raw_get("/V")
        reference = value_ref.reference if isinstance(value_ref, generic.IndirectObject) else None
        return RawSignature(fq_name, byte_range, _first_element(contents), reference)


MAX_WALK = 100_000


def _prepared_references(reader: PdfFileReader, signed_revision: int) -> list[int]:
    """Object numbers that the signed revision already refers to but that only a later revision
    defines: a reference prepared before signing and filled afterwards changes what the signed
    revision shows (a shadow attack), which pyHanko's difference analysis lets pass as an "orphaned"
    new object. Walks everything reachable from the signed revision's trailer."""
    xrefs = reader.xrefs
    later = {
        ref.idnum
        for revision in range(signed_revision + 1, xrefs.total_revisions)
        for ref in xrefs.explicit_refs_in_revision(revision)
        if xrefs.get_historical_ref(ref, signed_revision) is None
    }
    if not later:
        return []
    resolver = reader.get_historical_resolver(signed_revision)
    hits: set[int] = set()
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [resolver.trailer_view]
    while stack:
        value = stack.pop()
        if isinstance(value, generic.IndirectObject):
            if value.idnum in later:
                hits.add(value.idnum)
                continue
            key = (value.idnum, value.generation)
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > MAX_WALK:
                raise ValueError(f"more than {MAX_WALK} objects in the signed revision")
            value = resolver(value.reference)
        if isinstance(value, generic.DictionaryObject):  # streams too
            stack.extend(value.values())
        elif isinstance(value, generic.ArrayObject):
            stack.extend(value)
    return sorted(hits)


def _raw_modifications(
    out: SignatureReport, raw: RawSignature, data: bytes, reader: PdfFileReader, licences: _Licences
) -> int | None:
    """pyHanko's difference analysis after a signature it cannot read as CMS. The same preconditions
    as for its own signatures: the signed bytes end exactly where the revision holding the signature
    dictionary ends (startxref and %%EOF there, every earlier xref section inside), so each later
    revision can be judged on its own: adding a seal or DSS passes, changing page content does not.
    Returns the signed revision (None: it cannot be placed), whose licence claim later ones must keep."""
    covered_to = raw.byte_range[2] + raw.byte_range[3]
    if covered_to == len(data):
        rules.add_unmodified(out)
        return reader.xrefs.total_revisions - 1
    if raw.reference is None:
        out.add("modifications", INDETERMINATE, "UNSUPPORTED", "a direct signature dictionary cannot be placed")
        return None
    try:
        xrefs = reader.xrefs
        revision = xrefs.get_last_change(raw.reference)
        stream = reader.stream
        stream.seek(covered_to)
        ends_revision = process_data_at_eof(stream) == xrefs.get_startxref_for_revision(revision)
        inside = all(xrefs.get_xref_container_info(r).end_location <= covered_to for r in range(revision + 1))
        if not (ends_revision and inside):
            out.add("modifications", FAILED, "MODIFIED_AFTER_SIGNING",
                    "the signed bytes do not end with the revision that holds the signature")  # fmt: skip
            return None
        result = DEFAULT_DIFF_POLICY.review_file(reader, revision)
    except (PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        out.add("modifications", INDETERMINATE, "UNSUPPORTED", f"later revisions cannot be analysed: {exc}")
        return None
    licence_change = licences.changed_after(revision)
    if isinstance(result, SuspiciousModification):
        _judge_later_revisions(out, reader, revision, "; ".join(filter(None, (licence_change, str(result)))), None)
    else:
        level = result.modification_level
        objection = str(result) if level == ModificationLevel.OTHER else None
        _judge_later_revisions(out, reader, revision, "; ".join(filter(None, (licence_change, objection))) or None,
                               level)  # fmt: skip
    return revision


def _judge_later_revisions(
    out: SignatureReport,
    reader: PdfFileReader,
    signed_revision: int,
    suspicious: str | None,
    level: ModificationLevel | None,
) -> None:
    """The modifications check after a signature whose later revisions pyHanko's diff policy judged
    (`suspicious`: its objection, else `level`), plus the prepared references it does not look for."""
    if suspicious is None:
        try:
            prepared = _prepared_references(reader, signed_revision)
        except (PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
            out.add("modifications", INDETERMINATE, "UNSUPPORTED", f"later revisions cannot be analysed: {exc}")
            return
        if prepared:
            numbers = ", ".join(str(n) for n in prepared[:10])
            suspicious = (
                f"objects {numbers} were referred to when signed and defined only afterwards (content revealed later)"
            )
    rules.add_later_changes(out, suspicious, level.name.lower() if level is not None else "none")


def _first_element(data: bytes) -> bytes:
    """The leading DER element of /Contents (which is zero-padded to its reserved size)."""
    if len(data) < 2 or data[0] != 0x30:
        return data
    first = data[1]
    if first < 0x80:
        return data[: 2 + first]
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return data
    length = int.from_bytes(data[2 : 2 + count], "big")
    return data[: 2 + count + length]


def _dss_revinfo(dss: DocumentSecurityStore) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
    crls, ocsps = [], []
    for ref in dss.crls:
        crls.append(pdf_speedups.load_interned(crl.CertificateList, ref.get_object().data))
    for ref in dss.ocsps:
        ocsps.append(pdf_speedups.load_interned(ocsp.OCSPResponse, ref.get_object().data))
    return crls, ocsps
