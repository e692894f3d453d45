"""Electronic licence identifiers (电子证照标识): 1.2.156.3005.2.{type}.{issuer}.{serial}.{version}.{check}.

type: the competent department's 18-character USCC + a 3-digit licence-type number (21 characters);
issuer: the issuing agency's 18-character USCC; serial: the licence's serial (letters and digits);
version: 3 digits; check: one character, ISO/IEC 7064 MOD 37,36 over type+issuer+serial+version.
Reconstructed from implementations, not the standard's text (see DESIGN.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.uscc import is_valid_uscc

PREFIX = "1.2.156.3005.2"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SERIAL = re.compile(r"^[0-9A-Z]{1,40}$")


class InvalidLicenceId(ValueError):
    pass


def mod37_36(data: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid system, M = 36) check character over 0-9 A-Z."""
    m = 36
    p = m
    for char in data:
        value = ALPHABET.find(char)
        if value < 0:
            raise InvalidLicenceId(f"character {char!r} is not in 0-9 A-Z")
        s = (p + value) % m or m
        p = (2 * s) % (m + 1)
    return ALPHABET[(m + 1 - p) % m]


def check_passes(data_with_check: str) -> bool:
    """The MOD 37,36 residue test over data and its check character."""
    m = 36
    p = m
    for char in data_with_check[:-1]:
        s = (p + ALPHABET.index(char)) % m or m
        p = (2 * s) % (m + 1)
    return (p + ALPHABET.index(data_with_check[-1])) % m == 1


@dataclass(frozen=True)
class LicenceId:
    type_code: str
    issuer_uscc: str
    serial: str
    version: str

    @property
    def check(self) -> str:
        return mod37_36(self.type_code + self.issuer_uscc + self.serial + self.version)

    def __str__(self) -> str:
        return f"{PREFIX}.{self.type_code}.{self.issuer_uscc}.{self.serial}.{self.version}.{self.check}"


def is_type_code(type_code: str) -> bool:
    """The competent department's USCC followed by a 3-digit licence-type number."""
    return len(type_code) == 21 and is_valid_uscc(type_code[:18]) and type_code[18:].isdigit()


def make(type_code: str, issuer_uscc: str, serial: str, version: str = "001") -> LicenceId:
    type_code, issuer_uscc, serial = type_code.upper(), issuer_uscc.upper(), serial.upper()
    if not is_type_code(type_code):
        raise InvalidLicenceId("type code is the competent department's USCC followed by 3 digits")
    if not is_valid_uscc(issuer_uscc):
        raise InvalidLicenceId("issuer is not a valid unified social credit code")
    if not _SERIAL.match(serial):
        raise InvalidLicenceId("serial: 1-40 characters of 0-9 A-Z")
    if len(version) != 3 or not version.isdigit():
        raise InvalidLicenceId("version is 3 digits")
    return LicenceId(type_code, issuer_uscc, serial, version)


_PREFIXED = re.compile(r"^[A-Z]{3}[A-Z]{2}-")  # e.g. NTRCN-: a registry type and a country (EN 319 412-1)


def organisation_uscc(organization_identifier: str | None) -> str | None:
    """The USCC in a certificate's organizationIdentifier (2.5.4.97), a prefix such as `NTRCN-` removed:
    what a licence's issuer segment is compared with, at sealing and at verification."""
    if organization_identifier is None:
        return None
    return _PREFIXED.sub("", organization_identifier.strip().upper(), count=1)


def parse(identifier: str) -> LicenceId:
    if not identifier.startswith(PREFIX + "."):
        raise InvalidLicenceId(f"a licence identifier starts with {PREFIX}.")
    parts = identifier[len(PREFIX) + 1 :].split(".")
    if len(parts) != 5:
        raise InvalidLicenceId("expected {type}.{issuer}.{serial}.{version}.{check}")
    parsed = make(parts[0], parts[1], parts[2], parts[3])
    if len(parts[4]) != 1 or parts[4] != parsed.check:
        raise InvalidLicenceId("check character does not match")
    return parsed
