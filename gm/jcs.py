"""RFC 8785 JSON Canonicalization Scheme, for the values signed documents here hold.

Objects (keys sorted by UTF-16 code units), arrays, strings (ECMAScript escaping: only '"', '\\' and
control characters are escaped), integers, booleans and null. Floats are refused: nothing we sign
needs them, and their ECMAScript formatting is where implementations disagree.
"""

from __future__ import annotations

import json
from typing import Any

# RFC 8785 §3.2.2.2 (ECMAScript) escapes exactly '"', '\\', \b \f \n \r \t and the other control
# characters (as lowercase \u00xx), and nothing else: the same as the C string encoder of `json.dumps`
# with ensure_ascii=False (tests/gm/test_jcs.py checks every code point against the rule written out).
_string = json.JSONEncoder(ensure_ascii=False).encode


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise ValueError("integers beyond 2^53 are not interoperable in JSON")
        return str(value)
    if isinstance(value, float):
        raise ValueError("floats are not used in signed documents")
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("object keys must be strings")
        items = sorted(value.items(), key=lambda item: _utf16_key(item[0]))
        return "{" + ",".join(f"{_string(k)}:{_encode(v)}" for k, v in items) + "}"
    raise ValueError(f"cannot canonicalise {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """The UTF-8 bytes of the canonical form."""
    return _encode(value).encode("utf-8")
