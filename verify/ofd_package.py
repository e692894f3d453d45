"""An OFD package (GB/T 33190) as an untrusted zip: entry count, sizes, compression ratio and names
are bounded before anything is read, every read is bounded again by what it inflates to, and XML is
parsed with defusedxml. Shared by the OFD verifier and the OFD seal-picture renderer.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from gm.sm3 import new as sm3_new

MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_ENTRY_BYTES = 128 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB
MAX_XML_BYTES = 8 * 1024 * 1024  # OFD.xml, Signatures.xml, Signature.xml: parsed whole, so bounded first


class OfdFormatError(ValueError):
    pass


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find(element: Element, *path: str) -> Element | None:
    current: Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((child for child in current if local(child.tag) == name), None)
    return current


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local(child.tag) == name]


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

    def _chunks(self, path: str, limit: int) -> Iterator[bytes]:
        """The entry inflated 1 MB at a time; OfdFormatError if it is missing, larger than `limit` (by its
        directory entry, checked before inflating), damaged, or not the size its directory entry says."""
        normal = posixpath.normpath(path.lstrip("/"))
        info = self.names.get(normal)
        if info is None:
            raise OfdFormatError(f"{path} is not in the package")
        if info.file_size > limit:
            raise OfdFormatError(f"{path} is larger than {limit} bytes")
        size = 0
        try:
            with self.zip.open(info) as handle:
                while chunk := handle.read(min(1 << 20, info.file_size + 1 - size)):
                    size += len(chunk)
                    if size > info.file_size:
                        break
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise OfdFormatError(f"{path}: unreadable entry ({exc})") from None  # bad CRC, deflate data, method
        if size != info.file_size:
            raise OfdFormatError(f"{path}: size differs from the directory entry")

    def read(self, path: str, limit: int = MAX_ENTRY_BYTES) -> bytes:
        """The entry's bytes; `limit` refuses a larger one before inflating it (see _chunks)."""
        return b"".join(self._chunks(path, limit))

    def sm3(self, path: str) -> bytes:
        """SM3 of the entry, hashed a chunk at a time (a 128 MB image is never held whole)."""
        hasher = sm3_new()
        for chunk in self._chunks(path, MAX_ENTRY_BYTES):
            hasher.update(chunk)
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
