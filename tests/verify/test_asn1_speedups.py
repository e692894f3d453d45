"""Memoised name comparison answers exactly as asn1crypto's own (RFC 5280 §7.1 matching)."""

from __future__ import annotations

from asn1crypto import core, x509
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures import examples
from verify import asn1_speedups  # importing verify installs the memoised comparison (verify/library_patches.py)

_KINDS = ["common_name", "organization_name", "country_name", "organizational_unit_name", "locality_name"]
_TEXT = st.text(st.sampled_from(list("aAbB  zZ,é济南\u00a0-.1")), min_size=1, max_size=8)
_ENCODINGS = ["utf8_string", "printable_string", "bmp_string"]


Parts = list[tuple[str, str, str]]


@st.composite
def parts(draw: st.DrawFn) -> Parts:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        text = draw(_TEXT)
        encoding = draw(st.sampled_from(_ENCODINGS))
        if encoding == "printable_string" and not all(c.isascii() and c != "," for c in text):
            encoding = "utf8_string"
        out.append((draw(st.sampled_from(_KINDS)), text, encoding))
    return out


def _name(items: Parts) -> x509.Name:
    rdns = []
    for kind, text, encoding in items:
        value: core.Asn1Value = x509.DirectoryString(name=encoding, value=text)
        if kind == "country_name":
            value = core.PrintableString(text) if encoding == "printable_string" else core.UTF8String(text)
        rdns.append(x509.RelativeDistinguishedName([{"type": kind, "value": value}]))
    return x509.Name.load(x509.Name(name="", value=x509.RDNSequence(rdns)).dump())


def _original_equal(a: x509.Name, b: x509.Name) -> bool:
    return bool(asn1_speedups.ORIGINAL_EQ(a, b))


@settings(max_examples=examples(400), deadline=None)
@given(parts(), parts(), st.booleans())
def test_equality_and_hashable_match_asn1crypto(first: Parts, second: Parts, swap_case: bool) -> None:
    if swap_case:  # the same name in other case and encoding: RFC 4518 makes these equal
        second = [(kind, text.swapcase(), "utf8_string") for kind, text, _ in first]
    a, b = _name(first), _name(second)
    assert (a == b) is _original_equal(a, b)
    assert a.hashable == asn1_speedups.ORIGINAL_HASHABLE(a)
    assert (a.hashable == b.hashable) is _original_equal(a, b)


def test_a_name_inside_a_general_name_matches_the_bare_name() -> None:
    """GeneralName's directoryName carries an explicit [4] tag: same name, other DER."""
    name = x509.Name.build({"common_name": "Shandong CA", "country_name": "CN"})
    general = x509.GeneralName.load(x509.GeneralName(name="directory_name", value=name).dump())
    assert general.chosen.dump() != name.dump()
    assert general.chosen == name and name == general.chosen
    assert general.chosen.hashable == name.hashable
    assert name != x509.Name.build({"common_name": "Yunnan CA", "country_name": "CN"})
    assert (name == "not a name") is False
