"""Characters no certificate name may carry, in any subject attribute or subjectAltName.

Control characters (Cc) break parsers and logs (a NUL cut a name short in older X.509 stacks); format
characters (Cf: U+202E RIGHT-TO-LEFT OVERRIDE, U+200E/F marks, U+2066–2069 isolates, zero-width space and
joiners, U+FEFF) reorder or hide what a person reads, so "gpj.exe" shows as "exe.jpg"; line and paragraph
separators (Zl, Zp) and lone surrogates (Cs) are controls by another name. Private-use (Co) and
characters unassigned in this Python's Unicode tables (Cn) stay allowed: rare hanzi in people's and
places' names live there in Chinese registries.
"""

from __future__ import annotations

import re
import unicodedata

FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ASCII_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")  # the only Cc/Cf/Cs/Zl/Zp characters below U+0080


def forbidden_character(text: str) -> str | None:
    """The first forbidden character of `text`, or None."""
    if text.isascii():  # the issuance hot path: one regex search instead of a lookup per character
        found = _ASCII_FORBIDDEN.search(text)
        return found.group() if found else None
    for char in text:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            return char
    return None


def describe(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`: safe to put in an error message (never the character itself)."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"
