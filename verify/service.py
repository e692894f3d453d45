"""One entry point for any input: PDF, OFD, a bare seal (.esl), a bare SES_Signature, or CMS with its
detached content. Anything unreadable is a FAILED report with FORMAT_FAILURE, never an exception."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from gm import ses
from gm.sm3 import sm3
from verify import rules, seal_checks
from verify.cms import check_signed_data, load_signed_data
from verify.limits import WorkLimits
from verify.ofd import OfdVerifier
from verify.pdf import PdfVerifier
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, Report, SignatureReport, format_failure
from verify.sources import Sources
from verify.trust import TrustStore

log = logging.getLogger("trustseal.verify")


class Verifier:
    """`limits`: the work one `verify` call may do (verify/limits.py); what is left past them is
    INDETERMINATE WORK_LIMIT."""

    def __init__(self, trust: TrustStore, sources: Sources | None = None, limits: WorkLimits | None = None) -> None:
        self.trust = trust
        self.sources = sources or Sources()
        self.limits = limits or WorkLimits()
        self.pdf = PdfVerifier(trust, self.sources, limits=self.limits)
        self.ofd = OfdVerifier(trust, self.sources)

    def verify(self, data: bytes, *, content: bytes | None = None, at: datetime | None = None) -> Report:
        """`at`: validate as of that time instead of now (a privileged question: the API allows it to
        verifier, officer, auditor and admin tokens); the report then says "as of" prominently."""
        now = datetime.now(UTC)
        report = self._verify(data, content, at)
        report.validation_time, report.as_of = (at or now).isoformat(), at is not None
        if self.sources.fetch and any(
            check.name in ("revocation", "chain") and check.status == INDETERMINATE
            for signature in report.signatures
            for check in signature.checks
        ):
            # revocation or the path left open: perhaps by a failed fetch (a CRL, an OCSP answer, an
            # issuer certificate), which the next document must not inherit
            self.sources.forget_fetched()
        return report

    def _verify(self, data: bytes, content: bytes | None, at: datetime | None) -> Report:
        try:
            head = data[:1024].lstrip()
            if head.startswith(b"%PDF-"):
                return self.pdf.verify(data, at, self.limits.budget(len(data)))
            if data.startswith(b"PK\x03\x04"):
                return self.ofd.verify(data, at)
            if data[:1] == b"\x30":
                return self._asn1(data, content, at)
            return format_failure("unknown", "neither PDF, OFD, seal, SES_Signature nor CMS")
        except Exception as exc:  # the last line of defence: a report, never a 500
            log.exception("verification failed unexpectedly")
            return format_failure("unknown", f"the document could not be processed: {type(exc).__name__}")

    def _asn1(self, data: bytes, content: bytes | None, at: datetime | None) -> Report:
        try:
            signature = ses.parse_ses_signature(data)
        except ses.SESFormatError:
            signature = None
        if signature is not None:
            report = Report(format="ses-signature")
            out = SignatureReport()
            out.add("format", PASSED, "OK", f"SES_Signature v{signature.version}")
            digest = sm3(content) if content is not None else None  # b"" is content too
            moment, _ = rules.validation_time(at, None)  # an SES timeInfo is claimed, never proven
            seal_checks.check_ses_signature(out, signature, self.trust, self.sources, digest, moment)
            report.signatures.append(out)
            return report
        try:
            seal = seal_checks.parsed_seal(data)
        except ses.SESFormatError:
            seal = None
        if seal is not None:
            report = Report(format="seal")
            out = SignatureReport(seal=seal_checks.describe(seal))
            out.add("format", PASSED, "OK", f"SESeal v{seal.version}")
            moment, _ = rules.validation_time(at, None)
            seal_checks.check_seal(out, seal, None, moment, self.trust, self.sources)
            seal_checks.check_chain(out, seal.maker_cert, [], moment, self.trust, self.sources)
            out.signing_time, out.signing_time_source = moment.isoformat(), "given" if at else "now"
            report.signatures.append(out)
            return report
        return self._cms(data, content, at)

    def _cms(self, data: bytes, content: bytes | None, at: datetime | None) -> Report:
        try:
            signed = load_signed_data(data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return format_failure("cms", f"not a seal, SES_Signature or CMS SignedData: {exc}")
        report = Report(format="cms")
        out = SignatureReport()
        out.add("format", PASSED, "OK", "CMS SignedData")
        if content is None and signed["encap_content_info"]["content"].native is None:
            detail = "detached CMS: give the signed content too"
            out.add("integrity", INDETERMINATE, "SIGNED_DATA_NOT_FOUND", detail)
            report.signatures.append(out)
            return report
        check_signed_data(out, signed, content, at, self.trust, self.sources)
        report.signatures.append(out)
        return report


__all__ = ["FAILED", "SKIPPED", "Verifier"]
