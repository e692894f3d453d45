"""An OFD package (GB/T 33190) as an untrusted zip: entry count, sizes, compression ratio and names
are bounded before anything is read, every read is bounded again by what it inflates to, and XML is
parsed with defusedxml. Shared by the OFD verifier and the OFD seal-picture renderer.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from gm.sm3 import new as sm3_new
from verify.ofd_names import (
    UNREADABLE,
    OfdFormatError,
    check_local_headers,
    entry_names,
    folded_keys,
    location_path,
)

__all__ = ["OfdFormatError", "Package", "children", "find", "local"]

MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_ENTRY_BYTES = 128 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB
MAX_XML_BYTES = 8 * 1024 * 1024  # OFD.xml, Signatures.xml, Signature.xml: parsed whole, so bounded first


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
    """A bounded view of the OFD zip. Entry names must be canonical and distinct under every folding a
    lenient reader applies (see entry_names); entries are then looked up by exact name only, so this
    verifier reads the same bytes for a name as any zip reader does."""

    def __init__(self, data: bytes) -> None:
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:  # (a zip version)
            raise OfdFormatError(f"not a zip package: {exc}") from None
        if len(infos) > MAX_ENTRIES:
            raise OfdFormatError(f"more than {MAX_ENTRIES} entries")
        total = 0
        for info in infos:
            name = info.filename
            if info.file_size > MAX_ENTRY_BYTES:
                raise OfdFormatError(f"entry {name!r} is larger than {MAX_ENTRY_BYTES} bytes")
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise OfdFormatError(
                    f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)}x: a zip bomb"
                )
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise OfdFormatError("the package expands beyond the size limit")
        self.names: dict[str, zipfile.ZipInfo] = entry_names(infos)
        check_local_headers(data, infos, self.zip.start_dir)
        self._folded = {key: name for name, info in self.names.items() for key in folded_keys(name, info)}

    def has(self, name: str) -> bool:
        return name in self.names and not name.endswith("/")

    def lenient(self, name: str) -> str | None:
        """The entry a lenient reader (folding case, Unicode forms or encodings) would pick for `name`."""
        found = {self._folded[key] for key in folded_keys(name) if key in self._folded}
        return next(iter(found)) if len(found) == 1 else None

    def _chunks(self, path: str, limit: int) -> Iterator[bytes]:
        """The entry inflated 1 MB at a time; OfdFormatError if it is missing, larger than `limit` (by its
        directory entry, checked before inflating), damaged, or not the size its directory entry says."""
        info = self.names.get(path)
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
        except UNREADABLE as exc:  # bad CRC, deflate data, method, a password
            raise OfdFormatError(f"{path}: unreadable entry ({exc})") from None
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

    def resolve(self, location: str, base_dir: str) -> str:
        """An ST_Loc (GB/T 33190 §7.2.2) as an entry name: absolute from the package root, otherwise relative
        to the folder of the file that names it. OfdFormatError if it names no entry of the package (an
        exact name: no case folding, no search in other folders) or escapes the package."""
        path = location_path(location, base_dir)
        if not self.has(path):
            raise OfdFormatError(f"{location.strip()!r} (as {path}) is not in the package")
        return path
