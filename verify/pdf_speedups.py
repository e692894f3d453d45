"""Speed-ups for pyHanko's PDF reading and CMS certificate handling.

1. A faster hex-string reader for pyHanko's PDF parser.

pyHanko reads `<…>` hex strings one token at a time in Python; a sealed document's /Contents holds
tens of kilobytes of hex (the seal with its picture travels there), which made that loop ~45 % of a
verification. This reader takes the string in one slice and decodes it with binascii; results and
errors are those of the original (see tests/verify/test_pdf_speedups.py, which compares both on
hypothesis-generated input).

2. Interned certificates: every document carries the same CA, OCSP-responder and TSA certificates
(in its CMS and its DSS), and asn1crypto parses each afresh — extensions, key identifiers, names —
for every document. `intern_certificate` hands out one parsed object per DER instead (bounded), so
the parsing is done once; nothing about a certificate's validity is cached, only its parse.

The replacements are installed by verify/library_patches.py, the one place that replaces library code.
"""

from __future__ import annotations

import binascii
from typing import Any, TypeVar

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError
from pyhanko.sign import general

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


ORIGINAL_EXTRACT = general.extract_certificate_info
_T = TypeVar("_T")
_CERTIFICATES: dict[bytes, x509.Certificate] = {}
_MAX_CERTIFICATES = 4096


def intern_certificate(cert: x509.Certificate) -> x509.Certificate:
    """The parsed certificate already seen with the same DER, else this one (remembered)."""
    encoded = cert.dump()
    found = _CERTIFICATES.get(encoded)
    if found is not None:
        return found
    if len(_CERTIFICATES) >= _MAX_CERTIFICATES:
        _CERTIFICATES.clear()
    _CERTIFICATES[encoded] = cert
    return cert


_PARSED: dict[tuple[type, bytes], Any] = {}


def load_interned(kind: type[_T], encoded: bytes | bytearray) -> _T:
    """`kind.load(encoded)`, parsed once per DER (bounded): CRLs and OCSP responses in DSSs repeat
    across documents. Only the parse is shared; each document validates them afresh."""
    key = (kind, bytes(encoded))
    found = _PARSED.get(key)
    if found is None:
        if len(_PARSED) >= _MAX_CERTIFICATES:
            _PARSED.clear()
        found = _PARSED[key] = kind.load(key[1])  # type: ignore[attr-defined]
    return found


def extract_certificate_info(signed_data: Any) -> general.SignedDataCerts:
    info = ORIGINAL_EXTRACT(signed_data)
    return general.SignedDataCerts(
        signer_cert=intern_certificate(info.signer_cert),
        other_certs=[intern_certificate(c) for c in info.other_certs],
        attribute_certs=info.attribute_certs,
    )
