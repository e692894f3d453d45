"""Verifying sealed PDFs: every signature, with pyHanko doing integrity, CMS, path building and difference
analysis, and this module adding what pyHanko does not know: SM2 (through the validator hook), trust-list
status of each CA at the signing time, the embedded `SESeal`, seal and licence status.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, core, crl, ocsp, x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from gm import ses
from verify import seal_checks
from verify.names import describe as describe_cert
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, Report, SignatureReport, format_failure
from verify.sm2_validator import SM2SignatureValidator
from verify.sources import Sources
from verify.trust import TrustStore

log = logging.getLogger("trustseal.verify")
SESEAL_ATTRIBUTE = "1.3.6.1.4.1.32473.2.1"
SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"
MAX_SIGNATURES = 50


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


def _seal_attribute(signer_info: cms.SignerInfo) -> bytes | None:
    for attr in signer_info["signed_attrs"] or []:
        if attr["type"].dotted == SESEAL_ATTRIBUTE:
            value = attr["values"][0]
            der: bytes = value.native if isinstance(value, core.OctetString) else value.contents
            return der
    return None


def _xmp_licence(reader: PdfFileReader) -> str | None:
    try:
        metadata = reader.root.get("/Metadata")
        if metadata is None:
            return None
        text = metadata.get_object().data.decode("utf-8", "replace")
    except (PdfError, KeyError, ValueError, AttributeError):
        return None
    import re

    match = re.search(r'dc:identifier="(1\.2\.156\.3005\.2\.[0-9A-Z.]+)"', text) or re.search(
        r"<dc:identifier>(1\.2\.156\.3005\.2\.[0-9A-Z.]+)</dc:identifier>", text
    )
    return match.group(1) if match else None


class PdfVerifier:
    def __init__(self, trust: TrustStore, sources: Sources | None = None) -> None:
        self.trust = trust
        self.sources = sources or Sources()

    def verify(self, data: bytes, at: datetime | None = None) -> Report:
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            if reader.encrypted:
                return format_failure("pdf", "the PDF is encrypted")
            signatures = reader.embedded_signatures
        except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            return format_failure("pdf", f"unreadable PDF: {exc}")
        report = Report(format="pdf")
        if not signatures:
            report.code, report.detail = "NO_SIGNATURE_FOUND", "the PDF has no signature fields with a signature"
            return report
        dss_context_kwargs: dict[str, Any] = {}
        try:
            dss = DocumentSecurityStore.read_dss(reader)
            dss_crls, dss_ocsps = _dss_revinfo(dss)
            dss_context_kwargs = {"other_certs": list(dss.load_certs()), "crls": dss_crls, "ocsps": dss_ocsps}
        except (PdfError, KeyError, ValueError, TypeError, AttributeError):
            pass  # no DSS (the common case), or one we cannot read: then it simply does not help
        licence_id = _xmp_licence(reader)
        for embedded in signatures[:MAX_SIGNATURES]:
            try:
                report.signatures.append(self._one(embedded, dss_context_kwargs, at, licence_id))
            except Exception as exc:  # a verifier reports, it does not crash: the trace goes to the log
                log.exception("verifying a PDF signature failed unexpectedly")
                broken = SignatureReport(field_name=getattr(embedded, "field_name", None))
                broken.add(
                    "format", FAILED, "FORMAT_FAILURE", f"the signature could not be processed: {type(exc).__name__}"
                )
                report.signatures.append(broken)
        return report

    def _one(
        self, embedded: EmbeddedPdfSignature, dss: dict[str, Any], at: datetime | None, licence_id: str | None
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
        stamped = _timestamp_time(signer_info)
        claimed = embedded.self_reported_timestamp
        moment = at or stamped or claimed or datetime.now(UTC)
        out.signing_time = moment.isoformat()
        out.signing_time_source = "given" if at else "timestamp" if stamped else "claimed"

        certs: list[x509.Certificate] = [*list(embedded.other_embedded_certs), cert]
        crls, ocsps = self.sources.revocation(certs)
        material: dict[str, Any] = {
            "trust_roots": self.trust.trust_roots(),
            "other_certs": [*certs, *dss.get("other_certs", []), *self.trust.intermediates()],
            "crls": [*dss.get("crls", []), *crls],
            "ocsps": [*dss.get("ocsps", []), *ocsps],
            "allow_fetching": self.sources.fetch,
        }
        context = ValidationContext(
            **material,
            revocation_mode="hard-fail",
            moment=moment,
            retroactive_revinfo=True,
            signature_validator=SM2SignatureValidator(),
        )
        ts_context = ValidationContext(
            trust_roots=self.trust.trust_roots(),
            other_certs=[*certs, *dss.get("other_certs", []), *self.trust.intermediates()],
            crls=[*dss.get("crls", []), *crls],
            ocsps=[*dss.get("ocsps", []), *ocsps],
            allow_fetching=self.sources.fetch,
            revocation_mode="soft-fail",
            signature_validator=SM2SignatureValidator(),
        )
        try:
            status = validate_pdf_signature(embedded, context, ts_validation_context=ts_context)
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
        out.add(*(("signature", PASSED) if status.valid else ("signature", FAILED, "SIG_CRYPTO_FAILURE")))

        # signing time
        if stamped and at is None:
            ts = status.timestamp_validity
            if ts is not None and ts.intact and ts.valid and ts.trusted:
                out.add("signing_time", PASSED, "TIMESTAMP", f"timestamped {stamped.isoformat()}")
            else:
                out.add("signing_time", FAILED, "TIMESTAMP_FAILURE", "the signature timestamp does not validate")
        elif at is not None:
            out.add("signing_time", PASSED, "OK", f"validated as of {at.isoformat()} (given)")
        else:
            out.add("signing_time", PASSED, "CLAIMED_TIME", f"claimed {moment.isoformat()}, no timestamp")

        self._chain_and_revocation(out, status, moment, cert, material)
        self._seal(out, signer_info, cert, moment, status)
        self._modifications(out, status)
        self._licence(out, licence_id)
        return out

    def _chain_and_revocation(
        self, out: SignatureReport, status: Any, moment: datetime, cert: x509.Certificate, context: dict[str, Any]
    ) -> None:
        indic = status.trust_problem_indic.name if status.trust_problem_indic is not None else None
        path = status.validation_path
        if status.trusted and path is not None:
            seal_checks.judge_path(out, path, moment, self.trust)
            out.add("revocation", PASSED, "OK", "not revoked at the signing time")
            return
        if indic in ("REVOKED", "REVOKED_NO_POE", "REVOKED_CA_NO_POE"):
            out.add("chain", PASSED)
            details = status.revocation_details
            when = f" on {details.revocation_date.isoformat()}" if details is not None else ""
            out.add("revocation", FAILED, "REVOKED", f"certificate revoked{when}")
            return
        # pyHanko folds several causes into one indication: ask the path validator for the precise one
        seal_checks.diagnose_chain(out, cert, list(context["other_certs"]), context, moment, self.trust)

    def _seal(self, out: SignatureReport, signer_info: cms.SignerInfo, cert: x509.Certificate, moment: datetime,
              status: Any) -> None:  # fmt: skip
        der = _seal_attribute(signer_info)
        if der is None:
            out.add("seal", SKIPPED, "SEAL_ABSENT", "a plain digital signature (no electronic seal attached)")
            out.add("seal_validity", SKIPPED)
            return
        try:
            seal = ses.parse_seal(der)
        except ses.SESFormatError as exc:
            out.add("seal", FAILED, "FORMAT_FAILURE", str(exc))
            return
        out.seal = seal_checks.describe(seal)
        seal_checks.check_seal(out, seal, cert.dump(), moment, self.trust, self.sources)

    def _modifications(self, out: SignatureReport, status: Any) -> None:
        level = status.modification_level
        if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
            out.add("modifications", PASSED, "OK", "nothing was added after this signature")
        elif level is None or level == ModificationLevel.OTHER or status.docmdp_ok is False:
            detail = str(status.diff_result) if status.diff_result is not None else "unrecognised changes"
            out.modifications.append(detail)
            out.add("modifications", FAILED, "MODIFIED_AFTER_SIGNING", detail)
        else:
            out.modifications.append(level.name.lower())
            out.add("modifications", PASSED, "LATER_SIGNATURES_ONLY", f"later changes: {level.name.lower()}")

    def _licence(self, out: SignatureReport, licence_id: str | None) -> None:
        if licence_id is None:
            return
        state = self.sources.licence_status(licence_id)
        if state is None:
            out.add("licence_status", INDETERMINATE, "LICENCE_UNKNOWN", licence_id)
        elif state == "01":
            out.add("licence_status", PASSED, "OK", f"{licence_id} valid")
        else:
            code = "LICENCE_SUSPENDED" if state == "02" else "LICENCE_REVOKED"
            out.add("licence_status", FAILED, code, licence_id)


def _dss_revinfo(dss: DocumentSecurityStore) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
    crls, ocsps = [], []
    for ref in dss.crls:
        crls.append(crl.CertificateList.load(ref.get_object().data))
    for ref in dss.ocsps:
        ocsps.append(ocsp.OCSPResponse.load(ref.get_object().data))
    return crls, ocsps
