"""Verifying OFD documents (GB/T 33190 §18): OFD.xml → Signatures.xml → each Signature.xml → the SM3 check
value of every referenced file → SignedValue.dat as a `SES_Signature` (GM/T 0031 v1 or GB/T 38540 v4)
whose dataHash is SM3 of the raw Signature.xml → the seal inside → certificates.

The package is read through verify/ofd_package.py (an untrusted zip, bounded before anything is read).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import posixpath
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element

from gm import oids, ses
from gm.sm3 import sm3
from verify import rules, seal_checks
from verify.cms import check_signed_data, load_signed_data
from verify.ofd_coverage import Budget, Layout, rendered_files
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
        covered: set[str] = set()  # by any signature of the package
        unsigned: list[tuple[int, Layout]] = []
        budget = Budget()
        for number, body in enumerate(bodies, 1):
            try:
                layout = rendered_files(package, body, budget)
            except OfdFormatError as exc:  # more structure than any document needs
                return format_failure("ofd", str(exc))
            signatures_el = find(body, "Signatures")
            if signatures_el is None or not (signatures_el.text or "").strip():
                unsigned.append((number, layout))
                continue
            try:
                list_path = package.resolve(signatures_el.text or "", "")
                listing = package.xml(list_path)
            except OfdFormatError as exc:
                report.checks.append(_failure(str(exc)))
                continue
            entries = children(listing, "Signature")[: MAX_SIGNATURES - len(report.signatures)]
            paths = [_location(e.get("BaseLoc", ""), posixpath.dirname(list_path)) for e in entries]
            own = {list_path} | _signature_files(package, paths)
            for entry, path in zip(entries, paths, strict=True):
                try:
                    kind = entry.get("Type", "Seal")
                    report.signatures.append(self._one(package, path, kind, at, layout, own, covered))
                except Exception as exc:  # a verifier reports, it does not crash: the trace goes to the log
                    log.exception("verifying an OFD signature failed unexpectedly")
                    broken = SignatureReport(field_name=path)
                    broken.add("format", FAILED, "FORMAT_FAILURE", f"could not be processed: {type(exc).__name__}")
                    report.signatures.append(broken)
        if report.signatures:
            for number, layout in unsigned:  # a reader may show that document instead of the sealed one
                if bare := sorted(set(layout.rendered) - covered):
                    detail = f"document {number} of OFD.xml is covered by no signature: {_names(bare)}"
                    report.checks.append(Check("references", FAILED, "UNCOVERED_CONTENT", detail))
        if not report.signatures and not report.checks:
            report.code, report.detail = "NO_SIGNATURE_FOUND", "the OFD declares no signatures"
        return report

    def _one(
        self,
        package: Package,
        path: str,
        kind: str,
        at: datetime | None,
        layout: Layout,
        own: set[str],
        covered: set[str],
    ) -> SignatureReport:
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
        coverage = _Coverage(layout, own, covered)
        try:
            parsed = ses.parse_ses_signature(value)
        except ses.SESFormatError as exc:
            return self._signed_data(out, package, signed_info, base_dir, coverage, value, raw, at, str(exc))
        out.add("format", PASSED, "OK", f"SES_Signature v{parsed.version} ({kind})")
        seal_file = _seal_file(package, signed_info, base_dir)
        if seal_file is not None:  # readers may draw the stamp from it: it must be the seal signed with
            with contextlib.suppress(OfdFormatError):
                if package.read(seal_file) == parsed.seal.der:
                    coverage.bound.add(seal_file)
            coverage.extra.setdefault(seal_file, "Seal/BaseLoc, not the seal inside the SignedValue")
        self._references(out, package, signed_info, base_dir, coverage)
        seal_checks.check_ses_signature(
            out, parsed, self.trust, self.sources, sm3(raw), rules.validation_time(at, None)[0]
        )
        return out

    def _signed_data(
        self,
        out: SignatureReport,
        package: Package,
        signed_info: Element,
        base_dir: str,
        coverage: _Coverage,
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
        self._references(out, package, signed_info, base_dir, coverage)
        named_seal = None  # a Seal/BaseLoc readers draw the stamp from: the seal it shows must be judged
        seal_file = _seal_file(package, signed_info, base_dir)
        if seal_file is not None:
            with contextlib.suppress(OfdFormatError):
                named_seal = package.read(seal_file)
        check_signed_data(out, signed, raw, at, self.trust, self.sources, named_seal)
        return out

    def _references(
        self, out: SignatureReport, package: Package, signed_info: Element, base_dir: str, coverage: _Coverage
    ) -> None:
        """Every Reference's CheckValue (DESIGN.md), then whether the References cover what a reader renders."""
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
                path = package.resolve(ref, base_dir)
                coverage.named.add(path)
                actual = package.sm3(path)
            except (OfdFormatError, binascii.Error, ValueError) as exc:
                bad.append(f"{ref} ({exc})")
                continue
            if expected != actual:
                bad.append(ref)
            else:
                coverage.bound.add(path)
        coverage.covered.update(coverage.bound)
        rendered, other = coverage.uncovered(package)
        also = (f"; rendered but covered by no Reference: {_names(rendered)}" if rendered else "") + (
            f"; not rendered, not covered: {_names(other)}" if other else ""
        )
        if coverage.layout.absent:
            also += f"; named but absent (a reader shows nothing there): {_names(coverage.layout.absent)}"
        if bad:
            note = "" if method in SM3_METHODS else f"; CheckMethod {method} is not a published method, SM3 was tried"
            out.add("references", FAILED, "REFERENCE_FAILURE",
                    f"{len(bad)} of {count} check values differ: {', '.join(bad[:5])}{note}{also}")  # fmt: skip
        elif coverage.layout.problems:
            out.add("references", FAILED, "FORMAT_FAILURE",
                    f"what a reader shows cannot be told: {_names(coverage.layout.problems)}{also}")  # fmt: skip
        elif rendered:
            out.add("references", FAILED, "UNCOVERED_CONTENT",
                    f"all {count} check values match, but a reader also shows what the signature does not "
                    f"cover{also}")  # fmt: skip
        else:
            detail = f"all {count} protected files match their SM3 check values and cover every rendered file{also}"
            out.add("references", PASSED, "OK", detail)


@dataclass
class _Coverage:
    """One signature's view of the package: what it renders, which files belong to signatures, and what
    this signature binds (matching References, its own seal file)."""

    layout: Layout
    own: set[str]  # files of the signatures themselves (lists, Signature.xml, SignedValue, seal files)
    covered: set[str]  # shared with the whole package: bound by any signature
    bound: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)  # by a Reference, whether its check value matches or not
    extra: dict[str, str] = field(default_factory=dict)  # rendered for this signature only (its seal file)

    def uncovered(self, package: Package) -> tuple[list[str], list[str]]:
        """Rendered files no Reference names (nor binds otherwise), and the other files no Reference names."""
        rendered = {**self.layout.rendered, **self.extra}
        shown = sorted(set(rendered) - self.bound - self.named)
        files = {n for n in package.names if not n.endswith("/")}
        other = sorted(files - self.bound - self.named - set(rendered) - self.own)
        labels = {"OFD.xml": "OFD.xml (its metadata; what it selects is checked above)"}
        return [f"{n} ({rendered[n]})" for n in shown], [labels.get(n, n) for n in other]


def _location(location: str, base_dir: str) -> str:
    try:
        return location_path(location, base_dir)
    except OfdFormatError:
        return location or "(no BaseLoc)"  # reported as missing by _one


def _signature_files(package: Package, paths: list[str]) -> set[str]:
    """Each listed Signature.xml and the SignedValue and seal files it names."""
    found: set[str] = set()
    for path in paths:
        if not package.has(path):
            continue
        found.add(path)
        try:
            signature_xml = package.xml(path)
        except OfdFormatError:
            continue
        base_dir = posixpath.dirname(path)
        signed_info = find(signature_xml, "SignedInfo")
        for element in (find(signature_xml, "SignedValue"), _seal_el(signed_info)):
            if element is not None and element.text:
                with contextlib.suppress(OfdFormatError):
                    found.add(package.resolve(element.text, base_dir))
    return found


def _seal_el(signed_info: Element | None) -> Element | None:
    return find(signed_info, "Seal", "BaseLoc") if signed_info is not None else None


def _seal_file(package: Package, signed_info: Element, base_dir: str) -> str | None:
    element = _seal_el(signed_info)
    if element is None or not element.text:
        return None
    try:
        return package.resolve(element.text, base_dir)
    except OfdFormatError:
        return None


def _names(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _failure(detail: str) -> Check:
    return Check("format", FAILED, "FORMAT_FAILURE", detail)
