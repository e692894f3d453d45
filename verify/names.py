"""Readable names from certificates that may not follow the rules: vendor certificates carry
TeletexStrings in GBK and similar; a report must still show something instead of failing."""

from __future__ import annotations

from asn1crypto import x509

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


def _text(value: object) -> str:
    try:
        native = value.native  # type: ignore[attr-defined]
        return str(native)
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        raw = getattr(getattr(value, "chosen", value), "contents", b"") or b""
        for encoding in ("utf-8", "gb18030"):
            try:
                return bytes(raw).decode(encoding)
            except UnicodeDecodeError:
                continue
        return bytes(raw).decode("latin-1")


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
