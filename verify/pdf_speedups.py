"""A faster hex-string reader for pyHanko's PDF parser.

pyHanko reads `<…>` hex strings one token at a time in Python; a sealed document's /Contents holds
tens of kilobytes of hex (the seal with its picture travels there), which made that loop ~45 % of a
verification. This reader takes the string in one slice and decodes it with binascii; results and
errors are those of the original (see tests/verify/test_pdf_speedups.py, which compares both on
hypothesis-generated input). Installed once, idempotently.
"""

from __future__ import annotations

import binascii
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

ORIGINAL = generic.read_hex_string_from_stream
_WHITESPACE = b"\x00\t\n\x0c\r "
_HEX = b"0123456789abcdefABCDEF"
_CHUNK = 1 << 16


def read_hex_string_from_stream(stream: Any) -> Any:
    stream.read(1)  # the '<'
    parts: list[bytes] = []
    while True:
        block = stream.read(_CHUNK)
        if not block:
            raise PdfStreamError("Stream has ended unexpectedly")
        end = block.find(b">")
        if end >= 0:
            parts.append(block[:end])
            stream.seek(end + 1 - len(block), 1)  # continue right after the '>'
            break
        parts.append(block)
    digits = b"".join(parts).translate(None, _WHITESPACE)
    stray = digits.translate(None, _HEX)
    if stray:
        raise PdfStreamError("Unexpected token in hex string: " + repr(stray[:1]))
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def install() -> None:
    generic.read_hex_string_from_stream = read_hex_string_from_stream
