"""Verifying OFD documents (GB/T 33190 §18): OFD.xml → Signatures.xml → each Signature.xml → the SM3 check
value of every referenced file → SignedValue.dat as a `SES_Signature` (GM/T 0031 v1 or GB/T 38540 v4)
whose dataHash is SM3 of the raw Signature.xml → the seal inside → certificates.

The package is an untrusted zip: entry count, sizes, compression ratio and names are bounded before
anything is read, and XML is parsed with defusedxml.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import posixpath
import zipfile
import zlib
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from gm import oids, ses
from gm.sm3 import new as sm3_new
from gm.sm3 import sm3
from verify import seal_checks
from verify.cms import check_signed_data, load_signed_data
from verify.report import FAILED, PASSED, Check, Report, SignatureReport, format_failure
from verify.sources import Sources
from verify.trust import TrustStore

log = logging.getLogger("trustseal.verify")
MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_ENTRY_BYTES = 128 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB
MAX_XML_BYTES = 8 * 1024 * 1024  # OFD.xml, Signatures.xml, Signature.xml: parsed whole, so bounded first
MAX_SIGNATURES = 50
SM3_METHODS = {oids.SM3, "SM3", "sm3"}


class OfdFormatError(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: Element, *path: str) -> Element | None:
    current: Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((child for child in current if _local(child.tag) == name), None)
    return current


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


class Package:
    """A bounded view of the OFD zip."""

    def __init__(self, data: bytes) -> None:
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:  # (a zip version)
            raise OfdFormatError(f"not a zip package: {exc}") from None
        if len(infos) > MAX_ENTRIES:
            raise OfdFormatError(f"more than {MAX_ENTRIES} entries")
        total = 0
        self.names: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            normal = posixpath.normpath(name.replace("\\", "/"))
            if name.startswith(("/", "\\")) or normal.startswith("..") or ":" in name.split("/")[0]:
                raise OfdFormatError(f"entry name {name!r} escapes the package")
            if info.file_size > MAX_ENTRY_BYTES:
                raise OfdFormatError(f"entry {name!r} is larger than {MAX_ENTRY_BYTES} bytes")
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise OfdFormatError(
                    f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)}x: a zip bomb"
                )
            total += info.file_size
            self.names[normal] = info
        if total > MAX_TOTAL_BYTES:
            raise OfdFormatError("the package expands beyond the size limit")

    def read(self, path: str, limit: int = MAX_ENTRY_BYTES) -> bytes:
        """The entry's bytes; `limit` refuses a larger one before inflating it (its directory size, and
        then what it actually inflates to)."""
        normal = posixpath.normpath(path.lstrip("/"))
        info = self.names.get(normal)
        if info is None:
            raise OfdFormatError(f"{path} is not in the package")
        if info.file_size > limit:
            raise OfdFormatError(f"{path} is larger than {limit} bytes")
        try:
            with self.zip.open(info) as handle:
                data = handle.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise OfdFormatError(f"{path}: unreadable entry ({exc})") from None  # bad CRC, deflate data, method
        if len(data) != info.file_size:
            raise OfdFormatError(f"{path}: size differs from the directory entry")
        return data

    def sm3(self, path: str) -> bytes:
        """SM3 of the entry, inflated and hashed a chunk at a time (a 128 MB image is never held whole)."""
        normal = posixpath.normpath(path.lstrip("/"))
        info = self.names.get(normal)
        if info is None:
            raise OfdFormatError(f"{path} is not in the package")
        hasher, size = sm3_new(), 0
        try:
            with self.zip.open(info) as handle:
                while chunk := handle.read(1 << 20):
                    size += len(chunk)
                    if size > info.file_size:
                        break
                    hasher.update(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise OfdFormatError(f"{path}: unreadable entry ({exc})") from None
        if size != info.file_size:
            raise OfdFormatError(f"{path}: size differs from the directory entry")
        return hasher.digest()

    def xml(self, path: str, limit: int = MAX_XML_BYTES) -> Element:
        try:
            root: Element = ElementTree.fromstring(self.read(path, limit))
        except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
            raise OfdFormatError(f"{path}: malformed or unsafe XML ({exc})") from None
        return root

    def resolve(self, location: str, base_dir: str, doc_root: str = "") -> str:
        """OFD locations: absolute from the package root, or relative (to the referring file's folder,
        then to the document root, then to the package root: vendors differ)."""
        location = location.strip().replace("\\", "/")
        if location.startswith("/"):
            return posixpath.normpath(location.lstrip("/"))
        for base in (base_dir, doc_root, ""):
            candidate = posixpath.normpath(posixpath.join(base, location))
            if candidate in self.names:
                return candidate
        return posixpath.normpath(posixpath.join(base_dir, location))


class OfdVerifier:
    def __init__(self, trust: TrustStore, sources: Sources | None = None) -> None:
        self.trust = trust
        self.sources = sources or Sources()

    def verify(self, data: bytes, at: datetime | None = None) -> Report:
        try:
            package = Package(data)
            root = package.xml("OFD.xml")
            bodies = _children(root, "DocBody")
            if not bodies:
                raise OfdFormatError("OFD.xml has no DocBody")
        except OfdFormatError as exc:
            return format_failure("ofd", str(exc))
        report = Report(format="ofd")
        for body in bodies:
            doc_root_el = _find(body, "DocRoot")
            doc_root = posixpath.dirname(package.resolve(doc_root_el.text or "", "")) if doc_root_el is not None else ""
            signatures_el = _find(body, "Signatures")
            if signatures_el is None or not (signatures_el.text or "").strip():
                continue
            try:
                list_path = package.resolve(signatures_el.text or "", "", doc_root)
                listing = package.xml(list_path)
            except OfdFormatError as exc:
                report.checks.append(_failure(str(exc)))
                continue
            for entry in _children(listing, "Signature")[:MAX_SIGNATURES]:
                location = entry.get("BaseLoc", "")
                path = package.resolve(location, posixpath.dirname(list_path), doc_root)
                try:
                    report.signatures.append(self._one(package, path, doc_root, entry.get("Type", "Seal"), at))
                except Exception as exc:  # a verifier reports, it does not crash: the trace goes to the log
                    log.exception("verifying an OFD signature failed unexpectedly")
                    broken = SignatureReport(field_name=path)
                    broken.add("format", FAILED, "FORMAT_FAILURE", f"could not be processed: {type(exc).__name__}")
                    report.signatures.append(broken)
        if not report.signatures and not report.checks:
            report.code, report.detail = "NO_SIGNATURE_FOUND", "the OFD declares no signatures"
        return report

    def _one(self, package: Package, path: str, doc_root: str, kind: str, at: datetime | None) -> SignatureReport:
        out = SignatureReport(field_name=path)
        try:
            raw = package.read(path)
            signature_xml = package.xml(path)
        except OfdFormatError as exc:
            out.add("format", FAILED, "FORMAT_FAILURE", str(exc))
            return out
        base_dir = posixpath.dirname(path)
        signed_info = _find(signature_xml, "SignedInfo")
        if signed_info is None:
            out.add("format", FAILED, "FORMAT_FAILURE", f"{path} has no SignedInfo")
            return out
        value_el = _find(signature_xml, "SignedValue")
        if value_el is None or not (value_el.text or "").strip():
            out.add("format", FAILED, "FORMAT_FAILURE", f"{path} names no SignedValue")
            return out
        try:
            value = package.read(package.resolve(value_el.text or "", base_dir, doc_root))
        except OfdFormatError as exc:
            out.add("format", FAILED, "FORMAT_FAILURE", str(exc))
            return out
        try:
            parsed = ses.parse_ses_signature(value)
        except ses.SESFormatError as exc:
            return self._signed_data(out, package, signed_info, base_dir, doc_root, value, raw, at, str(exc))
        out.add("format", PASSED, "OK", f"SES_Signature v{parsed.version} ({kind})")
        self._references(out, package, signed_info, base_dir, doc_root)
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
        doc_root: str,
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
        self._references(out, package, signed_info, base_dir, doc_root)
        check_signed_data(out, signed, raw, at, self.trust, self.sources)
        return out

    def _references(
        self, out: SignatureReport, package: Package, signed_info: Element, base_dir: str, doc_root: str
    ) -> None:
        references = _find(signed_info, "References")
        if references is None:
            out.add("references", FAILED, "REFERENCE_FAILURE", "no References: nothing of the document is protected")
            return
        method = references.get("CheckMethod", oids.SM3)
        bad: list[str] = []
        count = 0
        for reference in _children(references, "Reference"):
            count += 1
            ref = reference.get("FileRef", "")
            check_el = _find(reference, "CheckValue")
            try:
                expected = base64.b64decode(
                    (check_el.text or "").strip() if check_el is not None else "", validate=True
                )
                actual = package.sm3(package.resolve(ref, base_dir, doc_root))
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


def _failure(detail: str) -> Check:
    return Check("format", FAILED, "FORMAT_FAILURE", detail)
