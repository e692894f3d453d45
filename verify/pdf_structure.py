"""A small, strict reader of PDF file structure: revisions (classic xref tables and xref streams),
indirect objects and the values inside them. It serves verify/pdf_fast.py, which checks the common
layout of sealed documents quickly; it refuses (StructureError) whatever it does not understand
instead of guessing, and then pyHanko's full reader takes over.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class StructureError(ValueError):
    """Outside what this reader handles, or malformed: the caller falls back to the full reader."""


Name = str  # a PDF name, without its slash (PDF strings are bytes)


@dataclass(frozen=True)
class Ref:
    num: int
    gen: int


class PdfDict(dict[str, Any]):
    """A dictionary that remembers where each value's bytes are in the file."""

    spans: dict[str, tuple[int, int]]  # only /Contents is recorded (what a signature's hole must be)


@dataclass
class Stream:
    info: PdfDict
    data_start: int
    data_end: int
    raw: bytes


@dataclass
class Revision:
    start: int  # first byte after the previous revision (0 for the first)
    end: int  # one past this revision's %%EOF line
    xref_offset: int
    trailer: PdfDict
    entries: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # num -> (type, field2, gen)
    xref_end: int = 0  # one past the trailer dictionary (table) or the xref stream's endobj
    xref_ref: Ref | None = None  # the xref stream object (None for a table)


_WS = b"\x00\t\n\x0c\r "
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_WSC = rb"[\x00\t\n\x0c\r ]"
# inside "N G R", the white space pyHanko's reader takes (not NUL: "22 0\x00R" was read here and refused
# there, found by differential fuzzing)
_REF_WS = rb"[\t\n\x0c\r ]"
# One token per match, whitespace and comments skipped first; `lastindex` says what it is:
# 2 reference, 3 number, 4 name, 5 <<, 6 >>, 7 [, 8 ], 9 < (hex string), 10 ( (literal), 11 keyword.
_TOKEN = re.compile(
    rb"(?:" + _WSC + rb"+|%[^\r\n]*)*+(?:"  # possessive: no token starts with white space or %
    rb"(\d+)" + _REF_WS + rb"+(\d+)" + _REF_WS + rb"+R(?!" + _REGULAR + rb")"
    rb"|([+-]?(?:\d+\.?\d*|\.\d+))(?!" + _REGULAR + rb")"
    rb"|/(" + _REGULAR + rb"*)"
    rb"|(<<)|(>>)|(\[)|(\])|(<)|(\()"
    rb"|(true|false|null)(?!" + _REGULAR + rb"))"
)
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]*")
_SKIP = re.compile(rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)*+")
_OBJ_HEADER = re.compile(rb"[\x00\t\n\x0c\r ]*(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj(?!" + _REGULAR + rb")")
_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+%%EOF(?:\r\n|\r|\n)?")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}  # fmt: skip
_KEYWORDS = {b"true": True, b"false": False, b"null": None}
_STRUCT = {1: "B", 2: "H", 4: "I", 8: "Q"}
_WHITESPACE = re.compile(rb"[\x00\t\n\x0c\r ]*")
# What may follow an object number for a PDF reader to take it for a reference "N G R" (comments count
# as white space, and pdf.js takes "5.0 0 R" too): an over-approximation, see PdfFile.refers_to.
_GAP = rb"(?:[\x00\t\n\x0c\r ]|%[^\r\n%]*)+"  # comments hold no %: one way to split a gap, no backtracking blow-up
_REFERENCE_TAIL = re.compile(rb"(?:\.\d*)?" + _GAP + rb"\d+(?:\.\d*)?" + _GAP + rb"R")
# Everything a tail could begin with: when a bounded window is cut inside one, count it as a reference.
_TAIL_PREFIX = re.compile(rb"(?:\.\d*)?(?:" + _GAP + rb"(?:\d+(?:\.\d*)?(?:" + _GAP + rb")?)?)?|(?:\.\d*)?" + _GAP
                          + rb"\d+(?:\.\d*)?" + _GAP)  # fmt: skip
TAIL_WINDOW = 256


def _tail(data: bytes, after: int, end: int) -> bool:
    """`_REFERENCE_TAIL` at `after`, within a bounded window so that no input makes it slow; a window
    cut where a longer tail could still go on (a long gap, a comment) counts as a match: the answer
    stays an over-approximation."""
    stop = min(end, after + TAIL_WINDOW)
    if _REFERENCE_TAIL.match(data, after, stop):
        return True
    if stop == end:
        return False
    return _TAIL_PREFIX.fullmatch(data, after, stop) is not None


MAX_DEPTH = 32
MAX_OBJECTS = 200_000


def _skip(data: bytes, pos: int) -> int:
    match = _SKIP.match(data, pos)
    return match.end() if match else pos


def _white(data: bytes, pos: int) -> int:
    """`pos` moved past white space only (a comment is not skipped)."""
    match = _WHITESPACE.match(data, pos)
    return match.end() if match else pos


_DELIMITED = re.compile(_REGULAR)


def _keyword(data: bytes, pos: int, word: bytes) -> bool:
    """`word` is at `pos` as a whole token (not the start of a longer keyword such as `endobjX`)."""
    return data.startswith(word, pos) and _DELIMITED.match(data, pos + len(word)) is None


def _hex(digits: bytes) -> bytes:
    """The bytes of a hex string's body: PDF white space anywhere is ignored, an odd last digit gets
    an implied 0. bytes.fromhex() takes the common case in one call; it also skips \\x0b (no PDF white
    space), so a body holding one is left to the strict path."""
    if b"\x0b" not in digits:
        try:
            return bytes.fromhex(digits.decode("ascii"))
        except (ValueError, UnicodeDecodeError):  # odd count, white space inside a pair, or not hex
            pass
    clean = digits.translate(None, _WS)
    if not _HEX_DIGITS.fullmatch(clean):
        raise StructureError("bad hex string")
    return bytes.fromhex((clean + b"0" * (len(clean) % 2)).decode("ascii"))


_NAME_BYTES = re.compile(
    rb"(?:[\x21-\x22\x24\x26-\x27\x2a-\x2e\x30-\x3b\x3d\x3f-\x5a\x5c\x5e-\x7a\x7c\x7e]|#[0-9A-Fa-f]{2})*+"
)


def _name(raw: bytes) -> str:
    """A name as pyHanko reads it, or StructureError where pyHanko refuses it: every byte a regular
    printable one (0x21-0x7E) or a #xx escape (a raw 0xB0 in a name was read here and refused there:
    found by differential fuzzing)."""
    if _NAME_BYTES.fullmatch(raw) is None:
        raise StructureError("a name byte that must be escaped")
    if b"#" in raw:
        raw = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode("latin-1")


# The whole of a simple value in one findall() call (no Match objects): refs, numbers, names,
# containers, short hex strings, literal strings with simple escapes, keywords. Anything else (a
# comment, a nested or octal-escaped literal, a long hex string) lands in the last group, and
# parse_value's general tokenizer takes the value instead.
_SIMPLE = re.compile(
    rb"[\x00\t\n\x0c\r ]*(?:"
    rb"(\d+" + _REF_WS + rb"+\d+" + _REF_WS + rb"+R)(?!" + _REGULAR + rb")"
    rb"|([+-]?(?:\d+\.?\d*|\.\d+))(?!" + _REGULAR + rb")"
    rb"|(/" + _REGULAR + rb"*)"
    rb"|(<<|>>|\[|\])"
    rb"|(<[0-9A-Fa-f]{0,256}>)"
    rb"|(\((?:[^()\\\r\n]|\\[nrtbf()\\]|\\[0-7]{1,3})*+\))"  # possessive: see _SIMPLE_LITERAL
    rb"|(true|false|null)(?!" + _REGULAR + rb")"
    rb"|(.))",
    re.S,
)
_LITERAL_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.S)


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    return bytes([_octal(code)]) if code[0] in b"01234567" else _ESCAPES[code[0]]


def _octal(digits: bytes) -> int:
    """An octal escape's byte. The spec drops the high-order overflow of \\400-\\777; pyHanko
    refuses them, so this reader declines (found by differential fuzzing)."""
    value = int(digits, 8)
    if value > 0xFF:
        raise StructureError(f"an octal escape beyond a byte: {digits!r}")
    return value


_REF_PARTS = re.compile(rb"\d+")


class _NotSimple(Exception):
    pass


def _parse_simple(data: bytes, pos: int, end: int) -> Any:
    """The one value that fills data[pos:end] exactly (trailing whitespace aside), or _NotSimple."""
    stack: list[Any] = []
    keys: list[Any] = []
    value: Any = None
    done = False
    for ref, num, name, bracket, hexed, literal, keyword, other in _SIMPLE.findall(data, pos, end):
        if other:
            if other in _WS:
                continue  # trailing whitespace before `end`
            raise _NotSimple
        if done:
            raise _NotSimple
        if name:
            value = _name(name[1:])
            if stack and keys[-1] is None and type(stack[-1]) is PdfDict:
                keys[-1] = value
                continue
        elif num:
            value = float(num) if b"." in num else int(num)
        elif ref:
            first, second = _REF_PARTS.findall(ref)
            value = Ref(int(first), int(second))
        elif bracket:
            if bracket == b"<<" or bracket == b"[":
                if len(stack) >= MAX_DEPTH:
                    raise _NotSimple
                if bracket == b"<<":
                    fresh = PdfDict()
                    fresh.spans = {}
                    stack.append(fresh)
                else:
                    stack.append([])
                keys.append(None)
                continue
            if not stack or (type(stack[-1]) is PdfDict) != (bracket == b">>") or keys[-1] is not None:
                raise _NotSimple
            value = stack.pop()
            keys.pop()
        elif hexed:
            value = _hex(hexed[1:-1])
        elif literal:
            body = literal[1:-1]
            value = _LITERAL_ESCAPE.sub(_unescape, body) if b"\\" in body else body
        else:
            value = _KEYWORDS[keyword]
        if not stack:
            done = True
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            continue
        key = keys[-1]
        if key is None or key in top or (key == "Contents" and type(value) is bytes):
            raise _NotSimple  # (the general tokenizer records where a /Contents string lies)
        top[key] = value
        keys[-1] = None
    if not done:
        raise _NotSimple
    return value


def parse_value(data: bytes, pos: int) -> tuple[Any, int]:
    """(value, end) of the PDF value at `pos` (whitespace and comments before it skipped).

    Names are `str`, strings `bytes`. Iterative (a stack of open containers), one regular-expression
    match per token, each match required to start where the previous one ended (no byte skipped)."""
    stack: list[Any] = []  # open containers: PdfDict or list
    keys: list[Any] = []  # per open dict: the key waiting for its value (None: a key is due)
    starts: list[int] = []  # where each open container began
    tokens = _TOKEN.finditer(data, pos)
    value: Any
    while True:
        token = next(tokens, None)
        if token is None or token.start() != pos:
            raise StructureError(f"unexpected bytes at {pos}")
        pos = token.end()
        kind = token.lastindex
        if kind == 4:  # name
            value = _name(token.group(4))
            if stack and keys[-1] is None and type(stack[-1]) is PdfDict:
                keys[-1] = value
                continue
        elif kind == 3:
            text = token.group(3)
            value = float(text) if b"." in text else int(text)
        elif kind == 2:
            value = Ref(int(token.group(1)), int(token.group(2)))
        elif kind == 5 or kind == 7:  # << or [
            if len(stack) >= MAX_DEPTH:
                raise StructureError("values nested too deeply")
            if kind == 5:
                fresh = PdfDict()
                fresh.spans = {}
                stack.append(fresh)
            else:
                stack.append([])
            keys.append(None)
            starts.append(token.start(kind))
            continue
        elif kind == 6 or kind == 8:  # >> or ]
            if not stack or (type(stack[-1]) is PdfDict) != (kind == 6) or keys[-1] is not None:
                raise StructureError(f"unbalanced container at {pos}")
            value = stack.pop()
            keys.pop()
            if stack and type(stack[-1]) is PdfDict and keys[-1] == "Contents":
                stack[-1].spans["Contents"] = (starts[-1], pos)
            starts.pop()
        elif kind == 9:  # the closing > by find(): a 50 KB /Contents is one C call, not a regex loop
            close = data.find(b">", pos)
            if close == -1:
                raise StructureError("unterminated hex string")
            value = _hex(data[pos:close])
            if stack and keys[-1] == "Contents" and type(stack[-1]) is PdfDict:
                stack[-1].spans["Contents"] = (pos - 1, close + 1)
            pos = close + 1
            tokens = _TOKEN.finditer(data, pos)
        elif kind == 10:
            value, pos = _parse_literal(data, pos - 1)
            tokens = _TOKEN.finditer(data, pos)
        else:
            value = _KEYWORDS[token.group(11)]
        if not stack:
            return value, pos
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            continue
        key = keys[-1]
        if key is None:
            raise StructureError(f"dictionary key is not a name at {pos}")
        if key in top:
            raise StructureError(f"duplicate key /{key}")
        top[key] = value
        keys[-1] = None


# possessive: an octal escape may be read with 1, 2 or 3 digits, so a backtracking loop over a string that
# fails to close (e.g. "(\\1234\\1234…" with no ")") tried 3^n ways (found by differential fuzzing)
_SIMPLE_LITERAL = re.compile(rb"\((?:[^()\\\r\n]|\\[nrtbf()\\]|\\[0-7]{1,3})*+\)")


def _parse_literal(data: bytes, pos: int) -> tuple[bytes, int]:
    simple = _SIMPLE_LITERAL.match(data, pos)
    if simple is not None:  # the common case: simple escapes, no nesting, no line breaks
        body = data[pos + 1 : simple.end() - 1]
        return (_LITERAL_ESCAPE.sub(_unescape, body) if b"\\" in body else body), simple.end()
    out = bytearray()
    level, i = 1, pos + 1
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash
            i += 1
            if i >= len(data):
                break
            e = data[i]
            if e in _ESCAPES:
                out += _ESCAPES[e]
            elif 0x30 <= e <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[i : i + 3])
                assert digits is not None
                out.append(_octal(digits.group(0)))
                i += len(digits.group(0)) - 1
            elif e in (0x0A, 0x0D):
                if e == 0x0D and data[i + 1 : i + 2] == b"\n":
                    i += 1
            elif e in b" /%<>[]#_&$":  # what pyHanko takes literally; it refuses any other escape
                out.append(e)
            else:
                raise StructureError(f"an escape pyHanko refuses: \\{chr(e)!r}")
        elif c == 0x28:
            level += 1
            out.append(c)
        elif c == 0x29:
            level -= 1
            if level == 0:
                return bytes(out), i + 1
            out.append(c)
        else:
            out.append(c)
        i += 1
    raise StructureError("unterminated string")


class PdfFile:
    """The revisions of a PDF (oldest first) and its objects as the newest revision defines them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.revisions = self._read_revisions()
        self._cache: dict[tuple[int, int, int], Any] = {}
        self._at: dict[tuple[int, int, int], tuple[Any, int, int]] = {}  # (offset, num, gen) -> object_at

    # revisions -----------------------------------------------------------------------------
    def _read_revisions(self) -> list[Revision]:
        data = self.data
        # The file ends with its last startxref line (one end of line after %%EOF at most): pyHanko
        # reads "entire file" only then, and bytes after it are where readers that rebuild a damaged
        # xref by scanning (poppler, qpdf) find objects no xref lists.
        at = data.rfind(b"startxref")
        last = _STARTXREF.match(data, at) if at != -1 else None
        if last is None:
            raise StructureError("no startxref")
        if last.end() != len(data):
            raise StructureError("bytes after the last %%EOF")
        chain: list[Revision] = []
        offset: int | None = int(last.group(1))
        seen: set[int] = set()
        while offset is not None:
            if offset in seen or len(chain) > 100:
                raise StructureError("xref chain loops")
            seen.add(offset)
            revision = self._read_xref(offset)
            chain.append(revision)
            prev = revision.trailer.get("Prev")
            if prev is not None and not isinstance(prev, int):
                raise StructureError("/Prev is not an integer")
            offset = prev
        chain.reverse()
        # each revision ends with the startxref line right after its own xref section, naming it (white
        # space between, nothing else); the next revision starts there
        start = 0
        for revision in chain:
            found = _STARTXREF.match(data, _white(data, revision.xref_end))
            if found is None or int(found.group(1)) != revision.xref_offset or found.end() <= start:
                raise StructureError("revisions are not laid out one after the other")
            revision.start, revision.end = start, found.end()
            start = found.end()
        if chain[-1].end != len(data):
            raise StructureError("the newest revision does not end the file")
        if chain[0].trailer.get("Encrypt") is not None or chain[-1].trailer.get("Encrypt") is not None:
            raise StructureError("encrypted")
        return chain

    def _read_xref(self, offset: int) -> Revision:
        data = self.data
        if not 0 < offset < len(data):
            raise StructureError("startxref outside the file")
        if data.startswith(b"xref", offset):
            return self._read_xref_table(offset)
        header = _OBJ_HEADER.match(data, offset)
        if header is None:
            raise StructureError("startxref points at neither a table nor an object")
        stream = self._stream_at(header.end(), resolve_length=False)
        after = _skip(data, stream.data_end)
        if not _keyword(data, after, b"endstream"):
            raise StructureError("xref stream without endstream")
        after = _skip(data, after + 9)
        if not _keyword(data, after, b"endobj"):
            raise StructureError("xref stream without endobj")
        info = stream.info
        if info.get("Type") != "XRef":
            raise StructureError("startxref object is not an xref stream")
        widths = info.get("W")
        size = info.get("Size")
        if not (isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) and 0 <= w <= 8
                                                                      for w in widths)):  # fmt: skip
            raise StructureError("bad /W")
        if not isinstance(size, int) or not 0 < size <= MAX_OBJECTS:
            raise StructureError("bad /Size")
        index = info.get("Index", [0, size])
        if not (isinstance(index, list) and len(index) % 2 == 0 and all(isinstance(v, int) for v in index)):
            raise StructureError("bad /Index")
        raw = decode_stream(stream)
        row = sum(widths)
        revision = Revision(0, 0, offset, info, xref_end=after + 6, xref_ref=Ref(int(header[1]), int(header[2])))
        total = sum(index[1::2])
        if widths[0] and all(w in _STRUCT for w in widths) and len(raw) >= total * row:
            layout = struct.Struct(">" + "".join(_STRUCT[w] for w in widths))
            rows = layout.iter_unpack(raw[: total * row])
            for first, count in zip(index[0::2], index[1::2], strict=True):
                if first < 0 or count < 0 or first + count > size:
                    raise StructureError("/Index outside /Size")
                for num, fields in zip(range(first, first + count), rows, strict=False):
                    if num in revision.entries:
                        raise StructureError(f"object {num} listed twice in one xref section")
                    revision.entries[num] = fields
            return revision
        pos = 0
        for first, count in zip(index[0::2], index[1::2], strict=True):
            if first < 0 or count < 0 or first + count > size:
                raise StructureError("/Index outside /Size")
            for num in range(first, first + count):
                if pos + row > len(raw):
                    raise StructureError("xref stream shorter than /Index says")
                values: list[int] = []
                for w in widths:
                    values.append(int.from_bytes(raw[pos : pos + w], "big"))
                    pos += w
                if num in revision.entries:
                    raise StructureError(f"object {num} listed twice in one xref section")
                revision.entries[num] = (values[0] if widths[0] else 1, values[1], values[2])
        return revision

    def _read_xref_table(self, offset: int) -> Revision:
        data = self.data
        pos = offset + 4
        entries: dict[int, tuple[int, int, int]] = {}
        section = re.compile(rb"[\x00\t\n\x0c\r ]*(\d+)[ ]+(\d+)[ \t]*\r?\n")
        line = re.compile(rb"(\d{10}) (\d{5}) ([nf])[ \r\n]{2}")
        while True:
            match = section.match(data, pos)
            if match is None:
                break
            first, count = int(match.group(1)), int(match.group(2))
            if first + count > MAX_OBJECTS:
                raise StructureError("xref section too large")
            pos = match.end()
            for num in range(first, first + count):
                entry = line.match(data, pos)
                if entry is None:
                    raise StructureError("malformed xref table line")
                kind = 1 if entry.group(3) == b"n" else 0
                if num in entries:
                    raise StructureError(f"object {num} listed twice in one xref table")
                entries[num] = (kind, int(entry.group(1)), int(entry.group(2)))
                pos = entry.end()
        pos = _skip(data, pos)
        if not data.startswith(b"trailer", pos):
            raise StructureError("no trailer after the xref table")
        trailer, end = parse_value(data, pos + 7)
        if not isinstance(trailer, PdfDict):
            raise StructureError("trailer is not a dictionary")
        if trailer.get("XRefStm") is not None:
            raise StructureError("hybrid-reference file")
        revision = Revision(0, 0, offset, trailer, xref_end=end)
        revision.entries = entries
        return revision

    # objects -------------------------------------------------------------------------------
    def entry(self, num: int, upto: int | None = None) -> tuple[int, int, int, int] | None:
        """(revision index, type, offset, gen) of object `num` as of revision `upto` (default newest)."""
        last = len(self.revisions) - 1 if upto is None else upto
        for index in range(last, -1, -1):
            found = self.revisions[index].entries.get(num)
            if found is not None:
                return index, *found
        return None

    def object_at(self, offset: int, ref: Ref) -> tuple[Any, int, int]:
        """(value, start of value, end of 'endobj') of the indirect object at `offset`: read once per
        file (the xref check, the DSS check and the DSS reader all look at the same objects). The
        values are shared, so callers treat them as read-only."""
        key = (offset, ref.num, ref.gen)
        found = self._at.get(key)
        if found is None:
            found = self._at[key] = self._object_at(offset, ref)
        return found

    def _object_at(self, offset: int, ref: Ref) -> tuple[Any, int, int]:
        header = _OBJ_HEADER.match(self.data, offset)
        if header is None or int(header.group(1)) != ref.num or int(header.group(2)) != ref.gen:
            raise StructureError(f"xref offset of {ref.num} {ref.gen} R does not hold that object")
        start = _skip(self.data, header.end())
        value, pos = self._value(start)
        pos = _skip(self.data, pos)
        if isinstance(value, PdfDict) and self.data.startswith(b"stream", pos):
            stream = self._stream_after(value, pos)
            value, pos = stream, stream.data_end
            pos = _skip(self.data, pos)
            if not self.data.startswith(b"endstream", pos):
                raise StructureError("stream without endstream")
            pos = _skip(self.data, pos + 9)
        if not _keyword(self.data, pos, b"endobj"):
            raise StructureError(f"object {ref.num} {ref.gen} R has no endobj")
        return value, start, pos + 6

    def _value(self, start: int) -> tuple[Any, int]:
        """The object's value: in one findall() when it is simple (see _SIMPLE), else token by token."""
        data = self.data
        window = start + 4096  # never scan a large stream's data for these keywords
        endobj = data.find(b"endobj", start, window)
        stream = data.find(b"stream", start, endobj if endobj != -1 else window)
        end = stream if stream != -1 else endobj
        # (the keyword must begin a token: in "/Xendobj" it is the end of a name, not of the object)
        if end != -1 and (end == start or _DELIMITED.match(data, end - 1) is None):
            try:
                return _parse_simple(data, start, end), end
            except _NotSimple:
                pass
        return parse_value(data, start)

    def get(self, ref: Ref, upto: int | None = None) -> Any:
        """The object `ref` as of revision `upto`; only uncompressed objects (type 1 entries)."""
        key = (ref.num, ref.gen, upto if upto is not None else -1)
        if key in self._cache:
            return self._cache[key]
        found = self.entry(ref.num, upto)
        if found is None or found[1] != 1 or found[3] != ref.gen:
            raise StructureError(f"{ref.num} {ref.gen} R is missing, free or in an object stream")
        value = self.object_at(found[2], ref)[0]
        self._cache[key] = value
        return value

    def resolve(self, value: Any, upto: int | None = None) -> Any:
        return self.get(value, upto) if isinstance(value, Ref) else value

    def objects_in(self, index: int) -> dict[int, tuple[int, int]]:
        """num -> (offset, gen) of the objects revision `index` writes, when its bytes are exactly
        those objects, then its xref section (white space between, nothing else: no stray object or
        comment that a reader rebuilding a damaged xref could pick up; _read_revisions already holds
        the startxref line to directly follow the section). The xref stream object is not included."""
        data, revision = self.data, self.revisions[index]
        found: dict[int, tuple[int, int]] = {}
        pos = _white(data, revision.start)
        while pos < revision.xref_offset:
            header = _OBJ_HEADER.match(data, pos)
            if header is None:
                raise StructureError(f"bytes other than objects in revision {index}")
            ref = Ref(int(header.group(1)), int(header.group(2)))
            if ref.num in found:
                raise StructureError(f"object {ref.num} written twice in revision {index}")
            found[ref.num] = (pos, ref.gen)
            pos = _white(data, self.object_at(pos, ref)[2])
        if pos != revision.xref_offset:
            raise StructureError(f"revision {index} does not end with its xref section")
        return found

    def refers_to(
        self,
        numbers: set[int],
        end: int,
        hole: tuple[int, int] = (0, 0),
        mentioned: Callable[[bytes, set[int], int, int], set[int]] | None = None,
    ) -> set[int]:
        """Those of `numbers` that the bytes before `end` may refer to: an over-approximation (any
        "N G R" anywhere but in `hole`, a string known to hold none, e.g. a signature's /Contents;
        also inside the object streams those revisions use, whose own numbers count as referred to).
        `mentioned`: the search (tests pass the first, one-search-per-number one to compare)."""
        mentioned = mentioned or _mentioned
        data = self.data
        cut, resume = min(hole[0], end), min(hole[1], end)
        out = mentioned(data, numbers, 0, cut) | mentioned(data, numbers, resume, end)
        decoded: set[int] = set()
        for index, revision in enumerate(self.revisions):
            if revision.end > end:
                break
            for kind, container, _ in revision.entries.values():
                if kind != 2:
                    continue
                if container in numbers:
                    out.add(container)
                found = self.entry(container, index)
                if found is None or found[1] != 1 or found[2] in decoded:
                    continue  # a missing object stream: its number counts as referred to (above)
                decoded.add(found[2])
                stream = self.object_at(found[2], Ref(container, found[3]))[0]
                if not isinstance(stream, Stream):
                    raise StructureError("object stream is not a stream")
                objects = decode_stream(stream)
                out |= mentioned(objects, numbers, 0, len(objects))
        return out

    def _stream_at(self, pos: int, resolve_length: bool = True) -> Stream:
        info, pos = self._value(pos)
        if not isinstance(info, PdfDict):
            raise StructureError("stream dictionary expected")
        return self._stream_after(info, _skip(self.data, pos), resolve_length)

    def _stream_after(self, info: PdfDict, pos: int, resolve_length: bool = True) -> Stream:
        """The stream whose dictionary `info` ends where the `stream` keyword is expected (`pos`)."""
        if not self.data.startswith(b"stream", pos):
            raise StructureError("stream keyword expected")
        pos += 6
        if self.data.startswith(b"\r\n", pos):
            pos += 2
        elif self.data.startswith(b"\n", pos):
            pos += 1
        else:
            raise StructureError("stream keyword not followed by an end of line")
        length = info.get("Length")
        if isinstance(length, Ref) and resolve_length:
            length = self.get(length)
        if not isinstance(length, int) or length < 0 or pos + length > len(self.data):
            raise StructureError("bad stream /Length")
        return Stream(info, pos, pos + length, self.data[pos : pos + length])


_AFTER_NUMBER = frozenset(b"\x00\t\n\x0c\r %.")


def _mentions(data: bytes, number: int, start: int, end: int, exact: bool = False) -> bool:
    """Whether data[start:end] has `number` (leading zeros allowed, not part of a larger number)
    followed by what makes it a reference. `exact`: the unbounded tail (tests only: quadratic on
    hostile input), else `_tail`, which may only say yes more often."""
    digits = str(number).encode("ascii")
    at = data.find(digits, start, end)
    while at != -1:
        after = at + len(digits)
        if after < end and data[after] in _AFTER_NUMBER:
            before = at
            while before > start and data[before - 1] == 0x30:  # "050 0 R" is object 50
                before -= 1
            tail = _REFERENCE_TAIL.match(data, after, end) is not None if exact else _tail(data, after, end)
            if (before == start or not 0x30 <= data[before - 1] <= 0x39) and tail:
                return True
        at = data.find(digits, at + 1, end)
    return False


# Read backwards from an "R" or a "%" (on the bytes reversed): white space, a run of digits and dots
# (group 1), and white space and a second such run (group 2). Every number that `_mentions` accepts
# lies in one of the two: before the "R" that ends its reference if no comment is in the way, else
# before the first "%" of its reference. Both runs may be empty, so that a match reaching the end of
# the reversed window says the window was too small.
_BACKWARDS = re.compile(rb"[R%]" + _WSC + rb"*+([0-9.]*+)(?:" + _WSC + rb"++([0-9.]*+))?")
_BEFORE_ANCHOR = frozenset(b"\x00\t\n\x0c\r 0123456789.")


def _mentioned(data: bytes, numbers: set[int], start: int, end: int) -> set[int]:
    """Those of `numbers` that data[start:end] mentions as `_mentions` does (the same answer), found
    from the bytes "R" and "%" backwards rather than by one search of the whole data per number."""
    odd = {number for number in numbers if type(number) is not int or number < 0}
    out = {number for number in odd if _mentions(data, number, start, end)}
    wanted = {str(number).encode("ascii"): number for number in numbers if number not in odd}
    last = data.rfind(b"R", start, end)  # every reference ends with an "R"
    if last < 0 or not wanted:
        return out
    for anchor in b"R%":
        at = data.find(anchor, start, last + 1)
        while at >= 0:
            if at > start and data[at - 1] in _BEFORE_ANCHOR:
                width = 64
                while True:
                    low = max(start, at - width)
                    window = data[low : at + 1][::-1]
                    match = _BACKWARDS.match(window)
                    assert match is not None  # window[0] is the anchor, and the rest may be empty
                    if match.end() < len(window) or low == start:
                        break
                    width *= 4
                for group in (1, 2):
                    first, after = match.span(group)
                    if first >= after:
                        continue
                    pos = at + 1 - after
                    for piece in data[pos : at + 1 - first].split(b"."):
                        number = wanted.get(piece.lstrip(b"0") or b"0") if piece else None
                        if number is not None and number not in out and _tail(data, pos + len(piece), end):
                            out.add(number)
                        pos += len(piece) + 1
            at = data.find(anchor, at + 1, last + 1)
    return out


def decode_stream(stream: Stream, limit: int = 16 * 1024 * 1024) -> bytes:
    """FlateDecode (with PNG Up predictor, as xref streams use) or no filter; anything else refused."""
    filters = stream.info.get("Filter")
    if filters is None:
        return stream.raw
    if filters not in ("FlateDecode", ["FlateDecode"]):
        raise StructureError(f"unsupported filter {filters}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream.raw, limit)
    except zlib.error as exc:
        raise StructureError(f"bad Flate data: {exc}") from None
    if inflater.unconsumed_tail:
        raise StructureError("stream inflates beyond the limit")
    parms = stream.info.get("DecodeParms")
    if parms is None:
        return raw
    if not isinstance(parms, PdfDict) or set(parms) - {"Predictor", "Columns"}:
        raise StructureError("unsupported DecodeParms")
    predictor, columns = parms.get("Predictor", 1), parms.get("Columns", 1)
    if predictor == 1:
        return raw
    if predictor != 12 or not isinstance(columns, int) or columns <= 0 or len(raw) % (columns + 1):
        raise StructureError("unsupported predictor")
    out = bytearray()
    previous = bytes(columns)
    for i in range(0, len(raw), columns + 1):
        kind, row = raw[i], raw[i + 1 : i + 1 + columns]
        if kind == 2:
            row = bytes((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind != 0:
            raise StructureError("unsupported PNG row filter")
        out += row
        previous = row
    return bytes(out)
