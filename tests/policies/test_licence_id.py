"""Licence identifiers: the check character agrees with python-stdnum's ISO 7064 MOD 37,36."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_36

from policies import licence_id
from policies.uscc import check_character
from tests.fixtures import examples

DEPT = "11370000MB00000015"


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet=licence_id.ALPHABET, min_size=1, max_size=80))
def test_check_character_matches_stdnum(data: str) -> None:
    ours = licence_id.mod37_36(data)
    assert mod_37_36.calc_check_digit(data) == ours
    assert mod_37_36.is_valid(data + ours)
    assert licence_id.check_passes(data + ours)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
    return body + check_character(body)


@settings(max_examples=examples(200), deadline=None)
@given(usccs(), st.integers(0, 999), usccs(), st.text(alphabet=licence_id.ALPHABET, min_size=1, max_size=20),
       st.integers(0, 999))  # fmt: skip
def test_identifiers_round_trip(dept: str, kind: int, issuer: str, serial: str, version: int) -> None:
    made = licence_id.make(f"{dept}{kind:03d}", issuer, serial, f"{version:03d}")
    text = str(made)
    assert text.startswith("1.2.156.3005.2.") and licence_id.parse(text) == made
    wrong = text[:-1] + ("0" if text[-1] != "0" else "1")
    with pytest.raises(licence_id.InvalidLicenceId):
        licence_id.parse(wrong)


@pytest.mark.parametrize(
    ("type_code", "issuer", "serial", "version"),
    [
        (DEPT + "01", DEPT, "1", "001"),  # type code too short
        (DEPT + "0X1", DEPT, "1", "001"),
        ("11370000MB00000016001", DEPT, "1", "001"),  # department USCC check fails
        (DEPT + "001", "11370000MB00000016", "1", "001"),
        (DEPT + "001", DEPT, "", "001"),
        (DEPT + "001", DEPT, "NO-DASH", "001"),
        (DEPT + "001", DEPT, "1", "1"),
    ],
)
def test_invalid_parts(type_code: str, issuer: str, serial: str, version: str) -> None:
    with pytest.raises(licence_id.InvalidLicenceId):
        licence_id.make(type_code, issuer, serial, version)
