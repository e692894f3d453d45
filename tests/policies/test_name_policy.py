"""The name policy's validators as properties (issue 12): the DNS check accepts only what an independent
RFC 1035 / RFC 5890 reading accepts, accepts what that reading and the public suffix list allow, and never
raises anything but a refusal on arbitrary text; the character check refuses every control and bidi/format
character wherever it sits and nothing a name legitimately holds."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policies.characters import forbidden_character
from policies.dns import check_dns_name
from policies.errors import NameRefused
from policies.names import check_ip, check_namespace, check_san, check_text, ip_range
from policies.profiles import DEFAULT_FILE, default_profiles, load_profiles
from tests.fixtures import examples

# The independent reading: RFC 1035 §2.3.1 preferred syntax (as relaxed by RFC 1123 for a leading digit),
# lowercase, at most 253 characters; a label with "--" in positions 3–4 only as an xn-- A-label (RFC 5890).
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
RFC1035 = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})+\Z")


def accepted(name: str, *, wildcard: bool = False) -> bool:
    try:
        check_dns_name(name, wildcard_allowed=wildcard)
    except NameRefused as refusal:
        assert refusal.code in ("dns_name_invalid", "wildcard_not_allowed")
        return False
    return True


def rfc_reading(name: str) -> bool:
    if not RFC1035.match(name):
        return False
    return all(label[2:4] != "--" or label.startswith("xn--") for label in name.split("."))


_ALPHABET = "abcxyz0189-.*_AZ\u202e\u00e9"
_NEAR_NAMES = st.tuples(
    st.text(_ALPHABET, max_size=30),
    st.sampled_from(["", ".cn", ".gov.cn", ".example.cn", ".com", ".local", ".github.io", ".", ".xn--fiqs8s"]),
).map("".join)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(max_size=300), _NEAR_NAMES), st.booleans())
def test_dns_check_accepts_only_what_rfc_1035_accepts(name: str, wildcard: bool) -> None:
    if accepted(name, wildcard=wildcard):
        if name.startswith("*."):
            assert wildcard and rfc_reading(name[2:])
        else:
            assert rfc_reading(name)


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_GOOD_LABEL = st.one_of(
    st.text(_ALNUM, min_size=1, max_size=1),
    st.tuples(
        st.text(_ALNUM, min_size=1, max_size=1),
        st.text(_ALNUM + "-", max_size=61),
        st.text(_ALNUM, min_size=1, max_size=1),
    ).map("".join),
).filter(lambda label: label[2:4] != "--")


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(_GOOD_LABEL, min_size=1, max_size=6), st.sampled_from(["example.cn", "sd.gov.cn", "example.com"]))
def test_dns_check_accepts_every_rfc_1035_name_under_a_registrable_domain(labels: list[str], base: str) -> None:
    name = ".".join([*labels, base])
    assume(len(name) <= 253)
    assert accepted(name)
    assert accepted("*." + name, wildcard=True)
    assert not accepted("*." + name, wildcard=False)


_SAN_TYPES = ["dns_name", "ip_address", "rfc822_name", "uniform_resource_identifier", "other_name", "registered_id"]
_SAN_OCTETS = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.tuples(st.sampled_from(["https://", "http://", "https://[", "javascript:", "a@", ""]), st.text(max_size=30))
    .map("".join)
    .map(lambda t: t.encode("utf-8", "replace")),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.sampled_from(["person", "tls-server", "tls-client", "org-seal"]),
    st.lists(st.tuples(st.sampled_from(_SAN_TYPES), _SAN_OCTETS), min_size=1, max_size=3),
)
def test_san_checks_never_crash(profile: str, san: list[tuple[str, bytes]]) -> None:
    """Whatever octets a CSR puts in a SAN, the policy answers with a refusal or lets it pass, nothing else."""
    for check in (
        lambda: check_san(default_profiles().profiles[profile], san),
        lambda: check_namespace(san, [frozenset({"sd.gov.cn"})]),
    ):
        with contextlib.suppress(NameRefused):
            check()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("*", "wildcard_not_allowed"),
        ("*.gov.cn", "wildcard_not_allowed"),
        ("*.cn", "wildcard_not_allowed"),
        ("*.xn--fiqs8s", "wildcard_not_allowed"),  # *.中国
        ("*.github.io", "wildcard_not_allowed"),  # private section of the list
        ("w*.example.cn", "wildcard_not_allowed"),
        ("www.*.example.cn", "wildcard_not_allowed"),
        ("gov.cn", "dns_name_invalid"),
        ("example.cn.", "dns_name_invalid"),
        ("localhost", "dns_name_invalid"),
        ("printer.local", "dns_name_invalid"),
        ("10.0.0.1", "dns_name_invalid"),
        ("ab--cd.example.cn", "dns_name_invalid"),
        ("xn--55qx5d-.example.cn", "dns_name_invalid"),
        ("a" * 64 + ".example.cn", "dns_name_invalid"),
        (("a" * 63 + ".") * 4 + "cn", "dns_name_invalid"),  # 254 characters
    ],
)
def test_dns_refusals_have_their_codes(name: str, code: str) -> None:
    with pytest.raises(NameRefused) as refused:
        check_dns_name(name, wildcard_allowed=True)
    assert refused.value.code == code


def test_a_wildcard_over_a_registrable_domain_and_an_a_label_pass() -> None:
    check_dns_name("*.example.gov.cn", wildcard_allowed=True)
    check_dns_name("xn--55qx5d.example.cn", wildcard_allowed=False)  # 公司.example.cn
    check_dns_name(("a" * 63 + ".") * 3 + "a" * 57 + ".cn", wildcard_allowed=False)  # 253 characters


# Written out, not derived from unicodedata: the characters the issue and Trojan Source (CVE-2021-42574) name.
DANGEROUS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]] + [
    "\u061c",  # ARABIC LETTER MARK
    "\u200b", "\u200c", "\u200d",  # zero-width space, non-joiner, joiner
    "\u200e", "\u200f",  # LRM, RLM
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # LRE, RLE, PDF, LRO, RLO
    "\u2028", "\u2029",  # line and paragraph separators
    "\u2060",  # word joiner
    "\u2066", "\u2067", "\u2068", "\u2069",  # LRI, RLI, FSI, PDI
    "\ufeff",  # zero-width no-break space (BOM)
]  # fmt: skip
_ORDINARY = st.text(st.characters(whitelist_categories=["L", "M", "N", "P", "S", "Zs"]), max_size=40)


@settings(max_examples=examples(300), deadline=None)
@given(_ORDINARY, st.sampled_from(DANGEROUS), st.integers(min_value=0))
def test_every_dangerous_character_is_refused_wherever_it_sits(text: str, bad: str, at: int) -> None:
    position = at % (len(text) + 1)
    with pytest.raises(NameRefused) as refused:
        check_text("subject common_name", text[:position] + bad + text[position:])
    assert refused.value.code == "name_character_forbidden"
    assert bad not in refused.value.detail  # described as U+XXXX NAME, never echoed


@settings(max_examples=examples(300), deadline=None)
@given(_ORDINARY)
def test_names_people_and_organisations_write_pass(text: str) -> None:
    assert forbidden_character(text) is None
    check_text("subject organization_name", text)


def test_rare_hanzi_and_chinese_names_pass() -> None:
    for text in ("张三", "济南市市场监督管理局", "\U00030000", "\ue000", "O'Brien-Smith, Jr."):  # Ext G, private use
        check_text("subject common_name", text)


@pytest.mark.parametrize(
    ("address", "found"),
    [
        ("0.0.0.0", None),
        ("::", None),
        ("224.0.0.251", None),
        ("ff02::1", None),
        ("169.254.1.1", None),
        ("fe80::1", None),
        ("240.0.0.1", None),
        ("192.0.2.1", None),  # documentation
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped: judged as the IPv4 address
        ("202.96.134.133", "global"),
        ("2400:da00::6666", "global"),
    ],
)
def test_ip_ranges(address: str, found: str | None) -> None:
    parsed = ipaddress.ip_address(address)
    assert ip_range(parsed) == found
    if found != "global":
        with pytest.raises(NameRefused) as refused:
            check_ip(parsed.packed, ["global"])
        assert refused.value.code == "ip_not_allowed"
    if found is not None:
        check_ip(parsed.packed, [found])


def test_an_ip_san_is_one_address() -> None:
    with pytest.raises(NameRefused):
        check_ip(bytes([10, 0, 0, 0, 255, 0, 0, 0]), ["global", "private"])  # a subnet, name-constraint form


def test_profiles_say_which_names_they_take(tmp_path: Path) -> None:
    profiles = load_profiles()
    assert profiles.profiles["person"].personal and profiles.profiles["person"].san_types.email is not None
    assert profiles.profiles["person"].san_types.dns is None and profiles.profiles["person"].san_types.ip is None
    assert profiles.profiles["tls-server"].san_types.uri is None
    assert not any(p.personal for name, p in profiles.profiles.items() if name != "person")
    raw = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    raw["profiles"]["org-seal"]["san"] = "optional"  # a SAN allowed but no type listed: a loading error
    broken = tmp_path / "profiles.yaml"
    broken.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="org-seal"):
        load_profiles(broken)
