"""Entry names of an OFD zip, so that every zip reader sees the same files under the same names.

Readers disagree about names: some turn `\\` into `/`, drop `./`, collapse `//`, resolve `..`, stop at NUL,
fold case (Windows, macOS), Unicode forms (macOS) or trailing dots and spaces (Windows), decode names
without the UTF-8 flag as GBK rather than CP437, prefer the Info-ZIP Unicode-path extra field, or stream
local headers instead of reading the central directory. Whenever two readers could see different bytes
under one name, the package is refused: names must be canonical, distinct under every such folding, and
the same in local and central headers, with no bytes hidden between entries.
"""

from __future__ import annotations

import posixpath
import struct
import unicodedata
import zipfile
import zlib

MAX_DESCRIPTOR = 24  # a data descriptor after an entry: signature, CRC and zip64 sizes at most
UTF8_FLAG = 0x800
UNICODE_PATH_EXTRA = 0x7075


class OfdFormatError(ValueError):
    pass


def raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored (zipfile decoded them as UTF-8 if flagged, otherwise as CP437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & UTF8_FLAG else "cp437")


def _decodings(info: zipfile.ZipInfo) -> list[str]:
    """Every name some reader could give the entry, the one we use first."""
    raw = raw_name(info)
    names: list[str] = []
    for encoding in ("utf-8",) if info.flag_bits & UTF8_FLAG else ("utf-8", "gb18030", "cp437"):
        try:
            names.append(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    names.extend(_unicode_path(info))
    return names


def _unicode_path(info: zipfile.ZipInfo) -> list[str]:
    extra, found = info.extra, []
    while len(extra) >= 4:
        kind, size = struct.unpack("<HH", extra[:4])
        body, extra = extra[4 : 4 + size], extra[4 + size :]
        if kind == UNICODE_PATH_EXTRA and len(body) > 5:
            found.append(body[5:].decode("utf-8", "replace"))  # version, CRC-32 of the header name, name
    return found


def fold(name: str) -> str:
    """What a lenient reader makes of a name: the key under which it finds an entry."""
    name = name.split("\x00", 1)[0].replace("\\", "/")
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    segments: list[str] = []
    for segment in name.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segment = segment.rstrip(" .")
        if segment:
            segments.append(segment)
    return "/".join(segments)


def folded_keys(name: str, info: zipfile.ZipInfo | None = None) -> set[str]:
    return {fold(alias) for alias in ([name] + (_decodings(info) if info is not None else []))}


def canonical_problem(name: str) -> str | None:
    """Why an entry name is not canonical, or None. Directory entries end in one `/`."""
    if not name:
        return "empty"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "NUL or control character"
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or ":" in name.split("/", 1)[0]:
        return "absolute"
    segments = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if ".." in segments:
        return "'..' segment: escapes its folder"
    if "." in segments:
        return "'.' segment"
    if "" in segments:
        return "empty segment ('//')"
    return None


def entry_names(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The entries by exact name; OfdFormatError naming every non-canonical name and every group of names
    a lenient reader could confuse (exact duplicates included)."""
    problems: list[str] = []
    by_key: dict[str, list[str]] = {}
    names: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        decodings = _decodings(info)
        name = decodings[0] if decodings else info.orig_filename
        why = canonical_problem(name)
        if why is None and any(alias != name for alias in _unicode_path(info)):
            why = "its Unicode-path extra field names another entry"
        if why is not None:
            problems.append(f"{name!r} ({why})")
        names[name] = info
        for key in folded_keys(name, info):
            by_key.setdefault(key.rstrip("/"), []).append(name)
    seen: set[tuple[str, ...]] = set()
    for group in by_key.values():
        if len(group) > 1 and tuple(group) not in seen:
            seen.add(tuple(group))
            problems.append(" and ".join(repr(n) for n in group) + " (names a reader could confuse)")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise OfdFormatError(f"ambiguous or non-canonical zip entry names: {shown}")
    return names


def check_local_headers(data: bytes, infos: list[zipfile.ZipInfo], start_dir: int) -> None:
    """Readers that stream local headers must see what the central directory lists: the same name at
    every entry and no other bytes (a hidden entry) before, between or after the entries."""
    cursor, slack = 0, 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        start = info.header_offset
        header = data[start : start + 30]
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise OfdFormatError(f"entry {info.filename!r}: no local header where the directory says")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        if data[start + 30 : start + 30 + name_len] != raw_name(info):
            raise OfdFormatError(f"entry {info.filename!r}: the local header names another file")
        if start < cursor:
            raise OfdFormatError(f"entry {info.filename!r} overlaps the one before it")
        if start > cursor + slack:
            raise OfdFormatError(f"{start - cursor} bytes before entry {info.filename!r} that no directory entry lists")
        cursor = start + 30 + name_len + extra_len + info.compress_size
        slack = MAX_DESCRIPTOR if info.flag_bits & 0x08 else 0
    if not cursor <= start_dir <= cursor + slack:
        raise OfdFormatError("bytes between the last entry and the central directory that no entry covers")


def location_path(location: str, base_dir: str) -> str:
    """An ST_Loc as a package path: absolute from the root, otherwise relative to `base_dir` (the folder of
    the file that names it). `\\` is read as `/` (never ambiguous: no entry name contains one)."""
    text = location.strip().replace("\\", "/")
    if not text or "\x00" in text:
        raise OfdFormatError(f"empty or invalid location {location!r}")
    path = text if text.startswith("/") else posixpath.join("/" + base_dir, text)
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if not segments:
                raise OfdFormatError(f"{location!r} leads outside the package")
            segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/".join(segments)


UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)
