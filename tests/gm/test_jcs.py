"""RFC 8785 string escaping in gm/jcs.py, against the rule of §3.2.2.2 written out here: '"' and '\\'
escaped, \\b \\f \\n \\r \\t by their short forms, other control characters as lowercase \\u00xx, every
other character (U+007F, U+2028, astral ones …) as itself. Every code point, alone and between others."""

from __future__ import annotations

import pytest

from gm import jcs

SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def rule(value: str) -> str:
    out = []
    for char in value:
        if char in SHORT:
            out.append(SHORT[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def test_every_code_point_is_escaped_as_rfc8785_says() -> None:
    points = [*range(0xD800), *range(0xE000, 0x10000), 0x10000, 0x1F600, 0x10FFFF]
    for point in points:
        char = chr(point)
        assert jcs.canonical(char) == rule(char).encode(), hex(point)
        assert jcs.canonical({"k": f"a{char}b"}) == ('{"k":' + rule(f"a{char}b") + "}").encode(), hex(point)


def test_known_forms() -> None:
    assert jcs.canonical("\u0000\u001f\u007f\u2028é") == b'"\\u0000\\u001f\x7f\xe2\x80\xa8\xc3\xa9"'
    assert jcs.canonical({"b": [1, True, None], "a": 'q"\\'}) == b'{"a":"q\\"\\\\","b":[1,true,null]}'


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        jcs.canonical("\ud800")
