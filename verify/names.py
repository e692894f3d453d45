"""Readable names from certificates that may not follow the rules, and name matching that does not
depend on reading them.

Vendor certificates put GBK (or UTF-8) bytes into PrintableString, TeletexString and IA5String values
(zsbk.ofd's signer has UTF-8 in an IA5String emailAddress). asn1crypto decodes those as ASCII / cp1252
/ latin-1: it raises (chain building stopped on a codec error) or returns mojibake, which its RFC 5280
comparison then case-folds (two different GBK names could compare equal). Here such a value is shown
leniently (UTF-8, else GB 18030, else replacement characters) and compared as its encoded bytes;
conforming values keep asn1crypto's RFC 5280 comparison. verify/library_patches.py installs both into
asn1crypto's Name (when the `verify` package is imported) so pyHanko's path building uses them too.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import core, x509

_LABELS = {
    "common_name": "common_name",
    "organization_name": "organization",
    "organizational_unit_name": "organizational_unit",
    "organization_identifier": "organization_identifier",
    "country_name": "country",
    "state_or_province_name": "province",
    "locality_name": "locality",
    "serial_number": "serial_number",
}
# string types whose conforming content is ASCII (TeletexString: in practice; T.61 proper is never used)
_EIGHT_BIT = (core.PrintableString, core.IA5String, core.VisibleString, core.TeletexString)


def _string(value: Any) -> Any:
    return value.chosen if isinstance(value, core.Choice) else value


def _raw(value: Any) -> bytes:
    string = _string(value)
    return bytes(getattr(string, "contents", b"") or b"")


def _nonconforming(value: Any) -> bool:
    """An 8-bit string value holding bytes outside ASCII (GBK, UTF-8 …)."""
    return isinstance(_string(value), _EIGHT_BIT) and not _raw(value).isascii()


def lenient(raw: bytes) -> str:
    """Display text for bytes of unknown encoding: UTF-8, else GB 18030 (GBK's superset), else UTF-8
    with replacement characters."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def _text(value: object) -> str:
    if _nonconforming(value):
        return lenient(_raw(value))
    try:
        native = value.native  # type: ignore[attr-defined]
        return str(native)
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        return lenient(_raw(value))


def name_fields(name: x509.Name) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        rdns = list(name.chosen)
    except (ValueError, TypeError):
        return out
    for rdn in rdns:
        for atv in rdn:
            try:
                kind = atv["type"].native
            except (ValueError, TypeError):
                continue
            label = _LABELS.get(kind, kind)
            out.setdefault(label, _text(atv["value"]))
    return out


def describe(cert: x509.Certificate) -> dict[str, str | None]:
    subject = name_fields(cert.subject)
    issuer = name_fields(cert.issuer)
    return {
        "common_name": subject.get("common_name"),
        "organization": subject.get("organization"),
        "organization_identifier": subject.get("organization_identifier"),
        "serial": format(cert.serial_number, "x"),
        "issuer": issuer.get("common_name") or issuer.get("organization"),
    }


def parse_fully(cert: x509.Certificate) -> None:
    """Parse everything in `cert` now (vendor certificates can hide malformed extensions: find out
    before path building), except the text of names, which only needs to be shown (leniently)."""
    tbs = cert["tbs_certificate"]
    for key in ("version", "serial_number", "signature", "validity", "subject_public_key_info", "extensions"):
        tbs[key].native  # noqa: B018
    for key in ("issuer", "subject"):
        for rdn in tbs[key].chosen:
            for atv in rdn:
                atv["type"].native  # noqa: B018
                _text(atv["value"])
    cert["signature_algorithm"].native  # noqa: B018
    cert["signature_value"].native  # noqa: B018


# ---- asn1crypto: compare non-conforming values as bytes, display them leniently ---------------------------
ORIGINAL_PREPPED = x509.NameTypeAndValue.prepped_value.fget
ORIGINAL_HUMAN_FRIENDLY = x509.Name.human_friendly.fget


def _prepped_value(self: x509.NameTypeAndValue) -> str:
    """RFC 5280 string preparation for conforming values; for others, their tag and bytes. A leading
    NUL cannot survive string preparation, so the two kinds never compare equal."""
    if self._prepped is None:
        value = self["value"]
        if _nonconforming(value):
            self._prepped = "\x00" + _string(value).dump().hex()
        else:
            try:
                self._prepped = ORIGINAL_PREPPED(self)
            except (ValueError, UnicodeDecodeError):  # e.g. invalid UTF-8 in a UTF8String
                self._prepped = "\x00" + value.dump().hex()
    prepped: str = self._prepped
    return prepped


def _human_friendly(self: x509.Name) -> str:
    try:
        if not any(_nonconforming(atv["value"]) for rdn in self.chosen for atv in rdn):
            friendly: str = ORIGINAL_HUMAN_FRIENDLY(self)
            return friendly
    except (ValueError, UnicodeDecodeError, TypeError):
        pass
    return ", ".join(f"{label}: {value}" for label, value in name_fields(self).items())


# what replaces x509.NameTypeAndValue.prepped_value and x509.Name.human_friendly; changes nothing for
# names asn1crypto reads correctly
PREPPED_VALUE = property(_prepped_value)
HUMAN_FRIENDLY = property(_human_friendly)
