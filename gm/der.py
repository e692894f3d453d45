"""Minimal DER assembly for hot paths (certificate issuance, CMS for seals) and small framing jobs.

asn1crypto builds every constant part of a certificate once (see `ca.certificates.Template`);
per certificate only a few fields change, and concatenating their encodings here avoids
re-serialising the whole structure (which was 60 % of issuance time).
"""

from __future__ import annotations


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are needed here")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0x00 keeps it positive
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        body = body[1:]
    return tlv(0x02, body)


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


def bit_string(value: bytes) -> bytes:
    return tlv(0x03, b"\x00" + value)


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 | number, content)


class DERError(ValueError):
    """Not strict DER: indefinite or non-minimal length, truncated, or trailing bytes."""


def read(data: bytes, pos: int = 0) -> tuple[int, int, int]:
    """The TLV at `pos` as (tag, start of contents, end). Single-byte tags only (all we split)."""
    if pos + 2 > len(data):
        raise DERError("truncated TLV")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise DERError("multi-byte tags are not expected here")
    start = pos + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DERError("indefinite or oversized length")
        if start + count > len(data):
            raise DERError("truncated length")
        size = int.from_bytes(data[start : start + count], "big")
        if size < 0x80 or data[start] == 0:
            raise DERError("non-minimal length")
        start += count
    end = start + size
    if end > len(data):
        raise DERError("truncated contents")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The TLVs inside contents [start, end) as (tag, header start, contents start, end)."""
    out = []
    pos = start
    while pos < end:
        tag, content, stop = read(data, pos)
        if stop > end:
            raise DERError("child runs past its parent")
        out.append((tag, pos, content, stop))
        pos = stop
    return out


def single(data: bytes, tag: int) -> tuple[int, int]:
    """The contents span of `data`, which must be exactly one TLV with `tag`."""
    found, start, end = read(data)
    if found != tag or end != len(data):
        raise DERError("unexpected tag or trailing bytes")
    return start, end
