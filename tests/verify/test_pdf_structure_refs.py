"""PdfFile.refers_to, the over-approximation that lets the fast path refuse a new object filling a
reference the signed bytes already made: its quick search (from each "R" and "%" backwards) must
answer at least what the first one (one `_mentions` search per number) did, for any bytes at all;
reporting less would let such an object through. It in fact answers the same."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from api.context import Context
from seal.demo import create_demo_seals
from tests.fixtures import examples, make_pdf
from tests.verify.test_pdf_fast_attacks import _sealed, _with_object_stream
from verify import pdf_structure
from verify.pdf_structure import TAIL_WINDOW, PdfFile, _mentioned, _mentions


def _mentioned_reference(data: bytes, numbers: set[int], start: int, end: int) -> set[int]:
    """The first search: one `_mentions` pass per number, with the unbounded reference tail."""
    return {number for number in numbers if _mentions(data, number, start, end, exact=True)}


def _refers_to_reference(pdf: PdfFile, numbers: set[int], end: int, hole: tuple[int, int] = (0, 0)) -> set[int]:
    return pdf.refers_to(numbers, end, hole, mentioned=_mentioned_reference)


# Single bytes of what a reference is made of, and of what is not, and a few likely fragments.
_PIECES = [bytes([c]) for c in b"0123456789 .\n\r\t\x00\x0c%R()<>/xobj"] + [
    b"0 R",
    b" 0 R",
    b"00",
    b"5.",
    b"% c\n",
    b"obj",
    b"60",
    b"\r\n",
]


def _bytes(pieces: Iterable[bytes]) -> bytes:
    return b"".join(pieces)


# Reference-like fragments: numbers (leading zeros, reals), gaps (white space, comments, nothing) and
# an ending that may or may not be the "R"; beyond the 64 bytes first read backwards, sometimes.
_number = st.from_regex(rb"\A0{0,2}[0-9]{1,2}(\.[0-9]{0,2}){0,2}\Z")
_gap = st.lists(
    st.sampled_from([b" ", b"\n", b"\r", b"\t", b"\x00", b"\x0c", b"\r\n", b"%", b"% c", b"%R", b"%0 R", b" " * 70]),
    max_size=3,
).map(_bytes)
_fragment = st.tuples(_number, _gap, _number, _gap, st.sampled_from([b"R", b"obj", b"r", b""])).map(_bytes)
adversarial = st.lists(st.one_of(st.sampled_from(_PIECES), _fragment), max_size=30).map(_bytes)
numbers = st.sets(st.integers(min_value=0, max_value=70), max_size=8)


def _fake(data: bytes) -> PdfFile:
    """A PdfFile over arbitrary bytes, with no revisions (so no object streams): refers_to then
    searches the bytes around the hole only."""
    pdf = PdfFile.__new__(PdfFile)
    pdf.data, pdf.revisions, pdf._cache, pdf._at = data, [], {}, {}
    return pdf


def _check(data: bytes, wanted: set[int], start: int, end: int) -> set[int]:
    new, old = _mentioned(data, wanted, start, end), _mentioned_reference(data, wanted, start, end)
    assert new >= old, (data, wanted, start, end)  # the security property
    if len(data) < TAIL_WINDOW:  # beyond it a cut window may count as a reference (never the reverse)
        assert new == old, (data, wanted, start, end)  # and it does not over-report either
    return new


@settings(max_examples=examples(300), deadline=None)
@given(adversarial, numbers, st.data())
def test_the_quick_search_finds_every_reference_the_first_one_found(
    data: bytes, wanted: set[int], draw: st.DataObject
) -> None:
    assume(data.count(b"%") <= 10)  # _REFERENCE_TAIL backtracks exponentially in the count of "%"
    start = draw.draw(st.integers(min_value=0, max_value=len(data)))
    end = draw.draw(st.integers(min_value=start, max_value=len(data)))
    _check(data, wanted | {int(n) for n in data.replace(b".", b" ").split() if n.isdigit() and len(n) < 4}, start, end)


@settings(max_examples=examples(300), deadline=None)
@given(adversarial, numbers, st.data())
def test_refers_to_around_a_hole(data: bytes, wanted: set[int], draw: st.DataObject) -> None:
    assume(data.count(b"%") <= 10)
    end = draw.draw(st.integers(min_value=0, max_value=len(data)))
    hole = (draw.draw(st.integers(0, len(data))), draw.draw(st.integers(0, len(data))))
    pdf = _fake(data)
    new, old = pdf.refers_to(wanted, end, hole), _refers_to_reference(pdf, wanted, end, hole)
    assert new >= old and (new == old or len(data) >= TAIL_WINDOW)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.sampled_from([b"0", b"1", b"7", b" ", b"\n", b".", b"R", b"x", b"/"]), max_size=80).map(_bytes))
def test_without_comments_nothing_more_is_reported(data: bytes) -> None:
    _check(data, set(range(0, 20)) | {100, 101, 110, 111, 700}, 0, len(data))


@pytest.mark.parametrize(
    ("data", "wanted", "found"),
    [
        (b"60 0 R", {60, 6, 0}, {60}),
        (b"60 % c\n 0 R", {60}, {60}),  # a comment in the gap
        (b"60 0 % c\nR", {60}, {60}),
        (b"60 0 %R", {60}, {60}),  # the "R" inside the comment still counts (over-approximation)
        (b"6 %0 0 R", {6}, {6}),
        (b"60%\n0%\nR", {60}, {60}),
        (b"060 0 R", {60}, {60}),  # leading zeros
        (b"000 0 R", {0}, {0}),
        (b"60.0 0 R", {60, 0}, {60, 0}),  # a real: pdf.js takes it, and "0 0 R" is in there too
        (b"60. 0 R", {60}, {60}),
        (b"60 0.5 R", {60}, {60}),
        (b"1.2.3 0 R", {1, 2, 3}, {2, 3}),
        (b"160 0 R", {60, 16}, set()),  # part of a larger number
        (b"60 0 obj", {60}, set()),
        (b"60 0 R", {60}, {60}),
        (b"60 R", {60}, set()),
        (b"-5 0 R", {-5, 5}, {-5, 5}),  # odd numbers are searched for as before
        (b"60" + b" " * 300 + b"0" + b"\n" * 300 + b"R", {60}, {60}),  # beyond the first window
        (b"60 %" + b"x" * 300 + b"\n0 R", {60}, {60}),
        (b"1." * 200 + b"5 0 R", {1, 5}, {1, 5}),  # "1.5 0 R"
        (b"7" * 5000 + b" 0 R", {7}, set()),  # more digits than int() takes
        (b"0" * 5000 + b"7 0 R", {7}, {7}),
    ],
)
def test_hand_written_cases(data: bytes, wanted: set[int], found: set[int]) -> None:
    assert _check(data, wanted, 0, len(data)) == found


def test_segment_boundaries() -> None:
    data = b"160 0 R"
    assert _check(data, {60, 160}, 1, len(data)) == {60}  # the segment starts inside a number
    assert _check(data, {60, 160}, 0, len(data) - 1) == set()  # and ends before the "R"
    assert _check(data, {0}, 4, len(data)) == set()
    assert _check(b"x 60", {60}, 0, 4) == set()  # a number at the very end


def test_the_hole_boundaries() -> None:
    data = b"60 0 R (61 0 R) 62 0 R 6"
    pdf = _fake(data)
    hole = (data.index(b"("), data.index(b")") + 1)
    assert pdf.refers_to({60, 61, 62}, len(data), hole) == {60, 62}
    assert pdf.refers_to({60, 61, 62}, len(data), (0, 0)) == {60, 61, 62}
    cut = (data.index(b"0 R)"), data.index(b")"))  # "61 " before the hole, "0 R" inside it
    assert pdf.refers_to({0, 61}, len(data), cut) == _refers_to_reference(pdf, {0, 61}, len(data), cut) == set()
    assert pdf.refers_to({61}, len(data), (data.index(b" 0 R)"), len(data))) == set()
    assert pdf.refers_to({62}, data.index(b"R 6"), hole) == set()  # `end` just before the "R"


def test_inside_an_object_stream() -> None:
    data = _with_object_stream(b"[ 4 0 R 60 0 R ]")
    assert b"60 0 R" not in data
    pdf = PdfFile(data)
    wanted = {6, 9, 60, 61}
    assert pdf.refers_to(wanted, len(data)) == _refers_to_reference(pdf, wanted, len(data)) == {6, 9, 60}


def test_a_sealed_document(context: Context) -> None:
    create_demo_seals(context.seals, actor="test")
    sealed = _sealed(context, "B-LT", make_pdf())
    pdf = PdfFile(sealed)
    wanted = set(range(0, 60))
    for revision in pdf.revisions:
        assert pdf.refers_to(wanted, revision.end) >= _refers_to_reference(pdf, wanted, revision.end)


def test_no_input_makes_the_tokenizer_or_the_reference_check_backtrack() -> None:
    """Regular-expression blow-ups found in review: a run of white space or `%` before a byte no token
    starts with took exponential time (25 spaces then ")" ~12 s), and `%`-heavy gaps did in the
    reference tail. Each of these now takes well under a millisecond; the bound is generous."""
    start = time.perf_counter()
    for body in (b" " * 5000 + b")", b"%" * 5000 + b"\n)", b"<< /A" + b" " * 5000 + b")", b"% a\n" * 2000 + b"}"):
        assert pdf_structure._TOKEN.match(body) is None or body.startswith(b"<<")
    long_comment = b"5 %" + b"0" * 100_000
    assert pdf_structure._tail(long_comment, 1, len(long_comment))  # cut inside a comment: counted
    many = b"5 " + b"% 5 5 5 5" * 20_000
    assert pdf_structure._mentions(many, 5, 0, len(many))
    assert pdf_structure._tail(b" " + b"%" * 40, 0, 41) is False
    assert pdf_structure._REFERENCE_TAIL.match(b" " + b"%" * 40) is None
    assert time.perf_counter() - start < 5


def test_a_window_cut_inside_a_long_gap_counts_as_a_reference() -> None:
    gap = b" " * (pdf_structure.TAIL_WINDOW + 10)
    data = b"60" + gap + b"0 R"
    assert pdf_structure._tail(data, 2, len(data))  # a real reference beyond the window
    data = b"60" + gap + b"x"
    assert pdf_structure._tail(data, 2, len(data))  # over-approximated, never missed
    assert not pdf_structure._tail(b"60 0 x" + gap, 2, len(b"60 0 x" + gap))
