"""What the approvals sweep (api/approvals.py) asks of a `key.rotate` a crash left `executing`: did the
rotation finish (a newer version certified and in use → its result; or a ceremony request it opened for
the offline root → that request, whose key version stays enabled), and if not, which version did it leave
enabled but uncertified (disabled, so the key's bare name never resolves to it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asn1crypto import x509
from sqlalchemy import select

from api.context import Context
from api.keys import Use, _kind_of, _pem, _uses
from keys.custody import KeyVersion, parse_ref
from store.models import CeremonyRequest

# ceremony operations a rotation opens (its new key version named `key_ref` in the request's params)
ROTATION_CEREMONIES = ("ca.rollover", "trust_list.signer")


def in_use(context: Context, name: str) -> tuple[Use, KeyVersion | None, list[KeyVersion]]:
    """The key's use, the version its current certificate certifies (None: none does), all versions."""
    versions = context.custody.versions(name)
    use = _uses(context).get(name) or _kind_of(name)
    if use.certificate_der is None:
        return use, None, versions
    spki = x509.Certificate.load(use.certificate_der).public_key.dump()
    return use, next((v for v in versions if v.public_key_der == spki), None), versions


def awaiting_ceremony(context: Context, key: str, since: datetime, actor: str) -> dict[str, Any] | None:
    """`{"ceremony": request}` if this rotation of `key` (run as `actor`) opened a ceremony request since
    `since` (the offline root must certify its new version): that is the rotation's result, as `rotate`
    answered it. Only a pending or completed request (a cancelled one is nobody's result) whose rotation
    was `actor`'s, of the version in use when the approval completed; another's (an officer's, or the
    scheduler's renewal, rotation_actor None) is `EffectMismatch` naming its `ceremony.requested` event."""
    from api.approvals import EffectMismatch
    from ca.ceremony import request_json
    from store.models import Event

    name = parse_ref(key)[0]
    cutoff = since.replace(microsecond=0)  # requests record whole seconds
    made = {v.ref: v.created_at for v in context.custody.versions(name)}
    with context.db.session() as session:
        query = select(CeremonyRequest).where(
            CeremonyRequest.operation.in_(ROTATION_CEREMONIES),
            CeremonyRequest.status.in_(("pending", "completed")),
            CeremonyRequest.created_at >= cutoff,
        )
        for row in session.scalars(query.order_by(CeremonyRequest.created_at.desc())):
            params = row.params or {}
            if str(params.get("key_ref") or "").partition("@")[0] != name:
                continue
            previous = str(params.get("previous_key_ref") or "")
            previous_made = made.get(previous)
            wrong = []
            if params.get("rotation_actor") != actor:
                wrong.append(f"rotation by {params.get('rotation_actor') or 'the scheduler'}, not {actor}")
            if previous_made is None or previous_made >= since:
                wrong.append(f"of {previous or 'no previous version'}, not the version in use at approval")
            if wrong:
                event = session.scalars(
                    select(Event.id).where(Event.type == "ceremony.requested", Event.subject == row.id)
                ).first()
                named = f"ceremony.requested#{event}" if event is not None else None
                raise EffectMismatch(f"ceremony request {row.id}: {'; '.join(wrong)}", named)
            return {"ceremony": request_json(row)}
    return None


def rotated_since(context: Context, key: str, since: datetime, actor: str) -> dict[str, Any] | None:
    """The rotation's result if a version made since `since`, and not the key's first, is the one certified
    and in use (the approvals sweep asks this of a `key.rotate` a crash left `executing`), or the ceremony
    request it opened (`awaiting_ceremony`), else None."""
    waiting = awaiting_ceremony(context, key, since, actor)
    if waiting is not None:
        return waiting
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
    `name` (newest enabled) resolves to, so left alone it would be picked up uncertified. A version a pending
    ceremony request names (another rotation waiting for the offline root) is kept."""
    name = parse_ref(key)[0]
    _, current, versions = in_use(context, name)
    with context.db.session() as session:  # a pending ceremony's version waits for the offline root: kept
        waiting = {
            str((params or {}).get("key_ref") or "")
            for params in session.scalars(
                select(CeremonyRequest.params).where(
                    CeremonyRequest.operation.in_(ROTATION_CEREMONIES), CeremonyRequest.status == "pending"
                )
            )
        }
    disabled = []
    for version in versions:
        made_then = since <= version.created_at and (until is None or version.created_at <= until)
        if version.ref in waiting:
            continue
        if version.enabled and made_then and (current is None or version.version != current.version):
            context.custody.disable(name, version.version)
            disabled.append(version.version)
    return disabled
