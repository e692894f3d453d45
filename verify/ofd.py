"""Verifying OFD documents (GB/T 33190 §18): OFD.xml → Signatures.xml → each Signature.xml → the SM3 check
value of every referenced file → SignedValue.dat as a `SES_Signature` (GM/T 0031 v1 or GB/T 38540 v4)
whose dataHash is SM3 of the raw Signature.xml → the seal inside → certificates.

The package is read through verify/ofd_package.py (an untrusted zip, bounded before anything is read).
"""

from __future__ import annotations

import base64
import binascii
import logging
import posixpath
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from gm import oids, ses
from gm.sm3 import sm3
from verify import seal_checks
from verify.cms import check_signed_data, load_signed_data
from verify.ofd_names import location_path
from verify.ofd_package import OfdFormatError, Package, children, find
from verify.report import FAILED, PASSED, Check, Report, SignatureReport, format_failure
from verify.sources import Sources
from verify.trust import TrustStore

log = logging.getLogger("trustseal.verify")
MAX_SIGNATURES = 50
SM3_METHODS = {oids.SM3, "SM3", "sm3"}


class OfdVerifier:
    def __init__(self, trust: TrustStore, sources: Sources | None = None) -> None:
        self.trust = trust
        self.sources = sources or Sources()

    def verify(self, data: bytes, at: datetime | None = None) -> Report:
        try:
            package = Package(data)
            root = package.xml("OFD.xml")
            bodies = children(root, "DocBody")
            if not bodies:
                raise OfdFormatError("OFD.xml has no DocBody")
        except OfdFormatError as exc:
            return format_failure("ofd", str(exc))
        report = Report(format="ofd")
        for body in bodies:
            signatures_el = find(body, "Signatures")
            if signatures_el is None or not (signatures_el.text or "").strip():
                continue
            try:
                list_path = package.resolve(signatures_el.text or "", "")
                listing = package.xml(list_path)
            except OfdFormatError as exc:
                report.checks.append(_failure(str(exc)))
                continue
            for entry in children(listing, "Signature")[:MAX_SIGNATURES]:
                path = _location(entry.get("BaseLoc", ""), posixpath.dirname(list_path))
                try:
                    report.signatures.append(self._one(package, path, entry.get("Type", "Seal"), at))
                except Exception as exc:  # a verifier reports, it does not crash: the trace goes to the log
                    log.exception("verifying an OFD signature failed unexpectedly")
                    broken = SignatureReport(field_name=path)
                    broken.add("format", FAILED, "FORMAT_FAILURE", f"could not be processed: {type(exc).__name__}")
                    report.signatures.append(broken)
        if not report.signatures and not report.checks:
            report.code, report.detail = "NO_SIGNATURE_FOUND", "the OFD declares no signatures"
        return report

    def _one(self, package: Package, path: str, kind: str, at: datetime | None) -> SignatureReport:
        out = SignatureReport(field_name=path)
        try:
            if not package.has(path):
                raise OfdFormatError(f"{path} is not in the package (named by the signature list)")
            raw = package.read(path)
            signature_xml = package.xml(path)
        except OfdFormatError as exc:
            out.add("format", FAILED, "FORMAT_FAILURE", str(exc))
            return out
        base_dir = posixpath.dirname(path)
        signed_info = find(signature_xml, "SignedInfo")
        if signed_info is None:
            out.add("format", FAILED, "FORMAT_FAILURE", f"{path} has no SignedInfo")
            return out
        value_el = find(signature_xml, "SignedValue")
        if value_el is None or not (value_el.text or "").strip():
            out.add("format", FAILED, "FORMAT_FAILURE", f"{path} names no SignedValue")
            return out
        try:
            value = package.read(package.resolve(value_el.text or "", base_dir))
        except OfdFormatError as exc:
            out.add("format", FAILED, "FORMAT_FAILURE", str(exc))
            return out
        try:
            parsed = ses.parse_ses_signature(value)
        except ses.SESFormatError as exc:
            return self._signed_data(out, package, signed_info, base_dir, value, raw, at, str(exc))
        out.add("format", PASSED, "OK", f"SES_Signature v{parsed.version} ({kind})")
        self._references(out, package, signed_info, base_dir)
        seal_checks.check_ses_signature(out, parsed, self.trust, self.sources, sm3(raw))
        moment = at or (parsed.time_info if isinstance(parsed.time_info, datetime) else datetime.now(UTC))
        seal_checks.check_chain(out, parsed.signer_cert, [parsed.seal.maker_cert], moment, self.trust, self.sources)
        return out

    def _signed_data(
        self,
        out: SignatureReport,
        package: Package,
        signed_info: Element,
        base_dir: str,
        value: bytes,
        raw: bytes,
        at: datetime | None,
        why: str,
    ) -> SignatureReport:
        """Type="Sign" signatures: a GB/T 35275 (or RFC 5652) SignedData over the raw Signature.xml."""
        try:
            signed = load_signed_data(value)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            out.add(
                "format",
                FAILED,
                "FORMAT_FAILURE",
                f"SignedValue is neither SES_Signature ({why}) nor SignedData ({exc})",
            )
            return out
        out.add("format", PASSED, "OK", "GB/T 35275 SignedData over Signature.xml")
        self._references(out, package, signed_info, base_dir)
        check_signed_data(out, signed, raw, at, self.trust, self.sources)
        return out

    def _references(self, out: SignatureReport, package: Package, signed_info: Element, base_dir: str) -> None:
        references = find(signed_info, "References")
        if references is None:
            out.add("references", FAILED, "REFERENCE_FAILURE", "no References: nothing of the document is protected")
            return
        method = references.get("CheckMethod", oids.SM3)
        bad: list[str] = []
        count = 0
        for reference in children(references, "Reference"):
            count += 1
            ref = reference.get("FileRef", "")
            check_el = find(reference, "CheckValue")
            try:
                expected = base64.b64decode(
                    (check_el.text or "").strip() if check_el is not None else "", validate=True
                )
                actual = package.sm3(package.resolve(ref, base_dir))
            except (OfdFormatError, binascii.Error, ValueError) as exc:
                bad.append(f"{ref} ({exc})")
                continue
            if expected != actual:
                bad.append(ref)
        if bad:
            note = "" if method in SM3_METHODS else f"; CheckMethod {method} is not a published method, SM3 was tried"
            out.add("references", FAILED, "REFERENCE_FAILURE",
                    f"{len(bad)} of {count} check values differ: {', '.join(bad[:5])}{note}")  # fmt: skip
        else:
            out.add("references", PASSED, "OK", f"all {count} protected files match their SM3 check values")


def _location(location: str, base_dir: str) -> str:
    try:
        return location_path(location, base_dir)
    except OfdFormatError:
        return location or "(no BaseLoc)"  # reported as missing by _one


def _failure(detail: str) -> Check:
    return Check("format", FAILED, "FORMAT_FAILURE", detail)
