"""What the approvals sweep (api/approvals.py) asks of a `key.rotate` a crash left `executing`: did the
rotation finish (a newer version certified and in use → its result), and if not, which version did it
leave enabled but uncertified (disabled, so the key's bare name never resolves to it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asn1crypto import x509

from api.context import Context
from api.keys import Use, _kind_of, _pem, _uses
from keys.custody import KeyVersion, parse_ref


def in_use(context: Context, name: str) -> tuple[Use, KeyVersion | None, list[KeyVersion]]:
    """The key's use, the version its current certificate certifies (None: none does), all versions."""
    versions = context.custody.versions(name)
    use = _uses(context).get(name) or _kind_of(name)
    if use.certificate_der is None:
        return use, None, versions
    spki = x509.Certificate.load(use.certificate_der).public_key.dump()
    return use, next((v for v in versions if v.public_key_der == spki), None), versions


def rotated_since(context: Context, key: str, since: datetime) -> dict[str, Any] | None:
    """The rotation's result if a version made since `since`, and not the key's first, is the one certified
    and in use (the approvals sweep asks this of a `key.rotate` a crash left `executing`), else None."""
    name = parse_ref(key)[0]
    use, current, versions = in_use(context, name)
    if current is None or use.certificate_der is None or current.created_at < since:
        return None
    older = [v for v in versions if v.version < current.version]
    if not older:  # a first version: made, not rotated
        return None
    # the version in use before: the newest older one still enabled (one an earlier failure disabled never was)
    previous = max(v.version for v in ([v for v in older if v.enabled] or older))
    return {
        "key": name,
        "version": current.version,
        "certificate_pem": _pem(use.certificate_der),
        "previous_version": previous,
    }


def disable_uncertified(context: Context, key: str, since: datetime, until: datetime | None = None) -> list[int]:
    """Disable every enabled version made between `since` and `until` that no certificate in use certifies:
    what a rotation interrupted after custody made the version leaves behind. An enabled version is what
    `name` (newest enabled) resolves to, so left alone it would be picked up uncertified."""
    name = parse_ref(key)[0]
    _, current, versions = in_use(context, name)
    disabled = []
    for version in versions:
        made_then = since <= version.created_at and (until is None or version.created_at <= until)
        if version.enabled and made_then and (current is None or version.version != current.version):
            context.custody.disable(name, version.version)
            disabled.append(version.version)
    return disabled
