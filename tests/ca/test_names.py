"""The hot-path subject encoders agree with asn1crypto: same DER as build_name, same text as
Name.human_friendly (the stored `subject` column), for any allowed attribute set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ca.names import ORDER, CheckedSubject, build_name
from tests.fixtures import examples

_VALUES = st.text(
    st.characters(blacklist_categories=["Cs"], min_codepoint=0x20), min_size=1, max_size=40
)  # commas, non-ASCII, CJK included


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(st.sampled_from(ORDER), _VALUES, max_size=len(ORDER)))
def test_checked_subject_encodings_match_asn1crypto(values: dict[str, str]) -> None:
    canonical = {kind: values[kind] for kind in ORDER if kind in values}
    subject = CheckedSubject(canonical)
    built = build_name(canonical)
    assert subject.der == built.dump()
    assert subject.text == built.human_friendly
    assert subject.name.dump() == built.dump()
