"""DNS names a certificate may carry: RFC 1035 / 5890 preferred syntax, checked before anything is signed.

A name is lowercase LDH labels of 1–63 octets, at most 253 octets in all, no trailing dot; a label with
hyphens in its third and fourth positions must be an IDNA2008 A-label (`xn--`) that decodes and encodes
back to itself (the `idna` package), so no reserved or malformed ACE label gets through. The last label
must be a top-level domain the Public Suffix List knows (`publicsuffixlist`, bundled: no network), and the
name must not itself be a public suffix (`gov.cn`, `github.io`). A wildcard is `*` as the whole leftmost
label only, over a name that is not a public suffix — never `*`, `*.cn`, `*.gov.cn` or `f*.example.cn`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna
from publicsuffixlist import PublicSuffixList

from policies.errors import NameRefused

MAX_NAME = 253
MAX_LABEL = 63
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    # ICANN and private sections both: `*.github.io` is as wide as `*.com`. Unknown TLDs are not suffixes
    # of anything (accept_unknown=False), so `host.internal` and `printer.local` are refused.
    return PublicSuffixList(accept_unknown=False)


def check_dns_name(name: str, *, wildcard_allowed: bool) -> None:
    """Raise `NameRefused` (`dns_name_invalid` or `wildcard_not_allowed`) unless `name` may be certified."""
    if not name:
        raise NameRefused("dns_name_invalid", "empty DNS name")
    if len(name) > MAX_NAME:
        raise NameRefused("dns_name_invalid", f"DNS name longer than {MAX_NAME} characters")
    labels = name.split(".")
    if "*" in name:
        if not wildcard_allowed:
            raise NameRefused("wildcard_not_allowed", "this profile takes no wildcard names")
        if labels[0] != "*" or any("*" in label for label in labels[1:]):
            raise NameRefused("wildcard_not_allowed", "a wildcard is only the whole leftmost label (*.example.cn)")
        if len(labels) == 1:
            raise NameRefused("wildcard_not_allowed", "a bare * names every host")
        base = ".".join(labels[1:])
        _check_plain(base)
        if _is_public_suffix(base):
            raise NameRefused("wildcard_not_allowed", f"a wildcard directly under the public suffix {base}")
        return
    _check_plain(name)
    if _is_public_suffix(name):
        raise NameRefused("dns_name_invalid", f"{name} is a public suffix, not a host or domain of one holder")


def check_dns_syntax(name: str) -> None:
    """Syntax and a known TLD only: for namespaces (a name constraint may be a public suffix, `gov.cn`)."""
    if not name or len(name) > MAX_NAME:
        raise NameRefused("dns_name_invalid", f"a DNS name is 1 to {MAX_NAME} characters")
    _check_plain(name)


def _check_plain(name: str) -> None:
    if name != name.lower():
        raise NameRefused("dns_name_invalid", "DNS names are written in lowercase")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise NameRefused("dns_name_invalid", "empty label (leading, trailing or doubled dot)")
        if len(label) > MAX_LABEL:
            raise NameRefused("dns_name_invalid", f"a label longer than {MAX_LABEL} characters")
        if not _LDH.match(label):
            raise NameRefused("dns_name_invalid", "labels are letters, digits and inner hyphens only")
        if label[2:4] == "--":
            _check_a_label(label)
    if labels[-1].isdigit() or not labels[-1][0].isalpha():
        raise NameRefused("dns_name_invalid", "the top-level label is not a top-level domain")
    if _suffixes().publicsuffix(name) is None:
        raise NameRefused("dns_name_invalid", f"{labels[-1]} is not a top-level domain in the public suffix list")


def _check_a_label(label: str) -> None:
    if not label.startswith("xn--"):
        raise NameRefused("dns_name_invalid", "hyphens in the third and fourth positions are reserved for xn--")
    try:
        valid = idna.encode(idna.decode(label)) == label.encode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        valid = False
    if not valid:
        raise NameRefused("dns_name_invalid", "not a valid IDNA2008 A-label")


def _is_public_suffix(name: str) -> bool:
    return bool(_suffixes().is_public(name))
