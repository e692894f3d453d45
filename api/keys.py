"""The keys inventory and key rotation (issue 12): `GET /v1/keys`, `POST /v1/keys/{key}/rotate`,
`trustseal keys list / rotate KEY`.

Every custody key is named after what uses it, and that name decides its kind: a CA's key is the CA's
name (`cn-370000-sm2`), its OCSP signer `<ca>.ocsp`, a seal maker `<ca>.seal-maker`, a seal holder
`seal.<id>`, the TSA units `tsa.sm2` / `tsa.p256`, the trust-list signer `trust-list.sm2`, the ledger key
`ledger.sm2`, the keyed digests of personal data `ledger.pii-hmac`. The inventory shows each key's
versions, algorithm, age, the certificate of the version in use and its expiry (flagged `expiring` within
30 days), and what uses it.

A rotation makes a new custody version (its `key.rotated` event comes from ledger/key_events.py's
RecordedCustody, or, for the ledger key, from the certificate's transaction), certifies it and switches
its user to it, recording what changed with the row (`seal.rekeyed`, `seal_maker.rotated`, `tsa.rotated`,
`trust_list.signer_rotated`). Old versions stay enabled: signatures, seals and tokens made before keep
verifying, and work already holding the old handle finishes. A CA key rolls over (ca/rollover.py: new CA
certificate, links for a root, CRL and OCSP kept per CA key, `ca.rolled_over`), an OCSP signer gets a new
certificate from its CA's current key (`ocsp_signer.rotated`); a withdrawn CA's keys are not rotated
(409 `ca_withdrawn`). The ledger, trust-list and CA rotations are the approved operation `key.rotate`; the
others are an officer's alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import pem, x509
from sqlalchemy import select

from api.context import Context
from api.problems import Problem
from ca.issuance import refuse_inactive
from keys.custody import KeyDisabled, KeyNotFound, KeyVersion, parse_ref
from seal.service import RevokeOld
from store.models import Certificate, CertificateAuthority, Seal, SealMaker, TimestampUnit

EXPIRY_WARNING = timedelta(days=30)
APPROVED_KINDS = ("ca", "ledger", "trust-list")  # rotations that are `key.rotate` under the approvals policy


def needs_approval(which: str, params: dict[str, Any]) -> bool:
    """Whether this rotation is the approved operation `key.rotate`: a CA, ledger or trust-list key, and a
    seal re-key that revokes the old holder certificate (`reason` / `invalidity_date`): it ends every
    document the seal made after the invalidity date, more than an approved seal revocation does, so one
    officer may not do it alone (review finding); a plain re-key, maker, TSA and OCSP rotation stay one's."""
    return which in APPROVED_KINDS or bool(params.get("reason") or params.get("invalidity_date"))


ROTATABLE = ("ca", "ocsp", "seal", "seal-maker", "tsa", "trust-list", "ledger")


@dataclass(frozen=True)
class Use:
    """What a key is for, and the certificate of the version in use (if it has one)."""

    kind: str
    used_by: str
    key_ref: str | None = None  # the version in use, when a row names it
    certificate_der: bytes | None = None


def _pem(der: bytes) -> str:
    armored: bytes = pem.armor("CERTIFICATE", der)
    return armored.decode("ascii")


def _uses(context: Context) -> dict[str, Use]:
    """Every key name a row names, with its use and current certificate (a few queries, no per-key ones)."""
    from ca.ledger_key import LEDGER_KEY
    from ca.trust_list import SIGNER_KEY
    from ledger.pii import PII_KEY

    uses: dict[str, Use] = {}
    with context.db.session() as session:
        for ca in session.scalars(select(CertificateAuthority)):
            uses[parse_ref(ca.key_ref)[0]] = Use("ca", f"CA {ca.name}", ca.key_ref, ca.certificate_der)
            if ca.ocsp_key_ref:
                uses[parse_ref(ca.ocsp_key_ref)[0]] = Use(
                    "ocsp", f"OCSP signer of {ca.name}", ca.ocsp_key_ref, ca.ocsp_certificate_der
                )
        for maker in session.scalars(select(SealMaker)):
            uses[parse_ref(maker.key_ref)[0]] = Use(
                "seal-maker", f"seal maker of {maker.ca_name}", maker.key_ref, maker.certificate_der
            )
        for unit in session.scalars(select(TimestampUnit)):
            uses[parse_ref(unit.key_ref)[0]] = Use(
                "tsa", f"TSA unit {unit.family} (under {unit.ca_name})", unit.key_ref, unit.certificate_der
            )
        rows = session.execute(
            select(Seal.id, Seal.key_ref, Seal.status, Certificate.der).join(
                Certificate, Certificate.serial == Seal.certificate_serial
            )
        )
        for seal_id, key_ref, status, der in rows:
            uses[parse_ref(key_ref)[0]] = Use("seal", f"holder of seal {seal_id} ({status})", key_ref, der)
    certified = context.ledger_key.certified()
    ledger_cert = certified[-1] if certified else None
    uses[LEDGER_KEY] = Use(
        "ledger",
        "ledger checkpoints and receipts",
        ledger_cert.version.ref if ledger_cert else None,
        ledger_cert.certificate_der if ledger_cert else None,
    )
    signer_der = context.verification.publisher.signer_certificate()
    uses[SIGNER_KEY] = Use("trust-list", "trust-list signer", None, signer_der)
    uses[PII_KEY] = Use("pii-hmac", "keyed digests of personal data in events", None, None)
    return uses


def _kind_of(name: str) -> Use:
    """The use a key's name alone says, for keys no row names (yet)."""
    if name.startswith("seal."):
        return Use("seal", f"holder of seal {name.removeprefix('seal.')}")
    if name.endswith(".seal-maker"):
        return Use("seal-maker", f"seal maker of {name.removesuffix('.seal-maker')}")
    if name.endswith(".ocsp"):
        return Use("ocsp", f"OCSP signer of {name.removesuffix('.ocsp')}")
    if name.startswith("tsa."):
        return Use("tsa", f"TSA unit {name.removeprefix('tsa.')}")
    if "." not in name:
        return Use("ca", f"CA {name}")
    return Use("other", "-")


def _age_days(moment: datetime, now: datetime) -> int:
    return max(0, (now - moment).days)


def key_entry(name: str, versions: list[KeyVersion], use: Use, now: datetime) -> dict[str, Any]:
    """One inventory row (DESIGN.md: versions, algorithm, age, certificate expiry, what uses it)."""
    enabled = [v for v in versions if v.enabled]
    current = max(enabled, key=lambda v: v.version) if enabled else None
    certificate: dict[str, Any] | None = None
    expiring = False
    if use.certificate_der is not None:
        cert = x509.Certificate.load(use.certificate_der)
        spki = cert.public_key.dump()
        version = next((v.version for v in versions if v.public_key_der == spki), None)
        not_after = cert.not_valid_after
        expiring = not_after - now <= EXPIRY_WARNING
        certificate = {
            "serial": f"{cert.serial_number:x}",
            "version": version,
            "not_after": not_after.isoformat(),
            "days_left": (not_after - now).days,
        }
    in_use = parse_ref(use.key_ref)[1] if use.key_ref else None
    return {
        "key": name,
        "kind": use.kind,
        "used_by": use.used_by,
        "algorithm": str(versions[0].algorithm) if versions else None,
        "current_version": current.version if current else None,
        "in_use": use.key_ref,
        # a newer enabled version than the one in use: a rotation still waiting (a ceremony under an offline
        # root), not yet signing anything
        "pending_version": current.version if current and in_use is not None and current.version > in_use else None,
        "versions": [
            {
                "version": v.version,
                "enabled": v.enabled,
                "created_at": v.created_at.isoformat(),
                "age_days": _age_days(v.created_at, now),
            }
            for v in sorted(versions, key=lambda v: v.version)
        ],
        "certificate": certificate,
        "expiring": expiring,
        "rotatable": use.kind in ROTATABLE and current is not None,
        "needs_approval": use.kind in APPROVED_KINDS,
    }


def inventory(context: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every custody key, sorted by name, and the keys of offline CAs (`custody`: `offline`, no versions here)."""
    moment = now or datetime.now(UTC)
    uses = _uses(context)
    out = []
    names = set(context.custody.names())
    for name in sorted(names):
        use = uses.get(name) or _kind_of(name)
        out.append(key_entry(name, context.custody.versions(name), use, moment) | {"custody": "online"})
    for ca in context.ca.list_cas():  # an offline root's key lives in its ceremony home (ca/ceremony_home.py)
        name = parse_ref(ca.key_ref)[0]
        if ca.offline and name not in names:
            use = Use("ca", f"CA {ca.name} (offline: signs in a ceremony)", ca.key_ref, ca.certificate_der)
            out.append(key_entry(name, [], use, moment) | {"custody": "offline", "algorithm": ca.algorithm})
    return sorted(out, key=lambda row: str(row["key"]))


# -- rotation -------------------------------------------------------------------------------------


def kind(context: Context, key: str) -> str:
    """The kind of custody key `key`: `key_not_found` (404) for no such key, `key_disabled` (409) when no
    version is enabled, `ca_withdrawn` (409) for a withdrawn CA's key or OCSP signer, `ca_rollover_refused`
    (409) for a CA whose parent is withdrawn."""
    name, number = parse_ref(key)  # an invalid name is key_not_found too
    if number is not None:
        raise KeyNotFound(f"rotate a key by its name, not a version ({key!r})")
    offline = context.ca.snapshot().cas.get(name)
    if offline is not None and offline.offline:  # its key is in the ceremony home, not in custody
        from ca.rollover import OfflineCARollover

        raise OfflineCARollover(
            f"{name} is offline: its new key is generated and self-certified at the ceremony (README), not here"
        )
    versions = context.custody.versions(name)  # KeyNotFound for an unknown key
    if not versions:
        raise KeyNotFound(f"no key named {name}")
    if not any(v.enabled for v in versions):
        raise KeyDisabled(f"key {name} has no enabled version: it is not rotated")
    use = _uses(context).get(name) or _kind_of(name)
    if use.kind in ("ca", "ocsp"):
        from ca.rollover import check_rollover

        ca_name = name.removesuffix(".ocsp")
        with context.db.session() as session:
            if session.get(CertificateAuthority, ca_name) is None:
                raise Problem(409, "key_not_rotatable", f"{name} names no CA of this service")
            if use.kind == "ca":
                check_rollover(session, ca_name)  # withdrawn (or its parent withdrawn): 409 with a code
            else:
                from ca.ceremony import CAOffline

                refuse_inactive(ca_name, context.ca.ca_status(ca_name))
                if context.ca.snapshot().get(ca_name).offline:
                    raise CAOffline(f"{ca_name} is offline: its OCSP signer is certified through a ceremony")
    if use.kind not in ROTATABLE:
        raise Problem(409, "key_not_rotatable", f"{name} ({use.used_by}) is not rotated through this service")
    if use.kind == "seal":
        from seal.errors import InvalidTransition

        seal = context.seals.get(name.removeprefix("seal."))
        status = context.seals.effective_status(seal)
        if status not in ("active", "suspended"):
            raise InvalidTransition(f"seal {seal.id} is {status}: its key is not rotated")
    return use.kind


def revoke_old(which: str, params: dict[str, Any]) -> RevokeOld | None:
    """A re-key's optional `reason` / `invalidity_date` (ISO): for a seal holder key only, where they
    revoke the old holder certificate (a compromised key is cut off, seal/service.py rekey); checked before
    custody makes anything. None: the old certificate is left to expire."""
    reason, moment = params.get("reason") or None, params.get("invalidity_date") or None  # "" is no reason
    if reason is None and moment is None:
        return None
    if which != "seal":
        raise Problem(422, "rotation_reason_not_supported", f"a {which} rotation revokes nothing: no reason is taken")
    if reason is None:
        raise Problem(422, "invalidity_date_needs_reason", "give the reason the old certificate is revoked for")
    return RevokeOld.checked(reason, datetime.fromisoformat(moment) if moment else None)


def check_rotate(context: Context, params: dict[str, Any]) -> None:
    """The approvals check: what could never run is refused before any approval is opened."""
    revoke_old(kind(context, params["key"]), params)


def rotate(context: Context, params: dict[str, Any], actor: str) -> dict[str, Any]:
    """Rotate custody key `params["key"]` → `{"key", "version", "certificate_pem", "previous_version"}`."""
    from ca.ledger_key import rotate_ledger_key
    from ledger.key_events import RecordedCustody

    key = params["key"]
    which = kind(context, key)
    revoke = revoke_old(which, params)
    custody = context.custody
    if isinstance(custody, RecordedCustody):  # its key.rotated event names the officer
        custody = custody.as_actor(actor)
    publisher = context.verification.publisher
    if which == "ledger":
        return rotate_ledger_key(context.ledger_key, actor=actor).as_json()
    if which == "ca":
        from ca.rollover import roll_over

        result = roll_over(context.ca, key, actor, custody).as_json()
        publisher.current()  # the new CA certificate (and the old one, and a root's links) listed at once
        return result
    if which == "ocsp":
        from ca.rollover import rotate_ocsp_signer

        return rotate_ocsp_signer(context.ca, key.removesuffix(".ocsp"), actor, custody).as_json()
    if which == "trust-list":
        new_ref, previous, der = publisher.rotate_signer(actor, custody)
        return _result(new_ref, der, previous)
    if which == "tsa":
        unit, previous = context.signing.tsa.rotate(key.removeprefix("tsa."), actor, custody)
        return _result(unit.key_ref, unit.certificate_der, previous)
    if which == "seal-maker":
        maker, previous = context.seals.rotate_maker(key.removesuffix(".seal-maker"), actor, custody)
        publisher.current()  # the new maker certificate on the trust list at once
        return _result(maker.key_ref, maker.certificate_der, previous)
    old_serial = context.seals.get(key.removeprefix("seal.")).certificate_serial
    seal, previous = context.seals.rekey(key.removeprefix("seal."), actor, custody, revoke)
    publisher.current()
    with context.db.session() as session:
        cert = session.get(Certificate, seal.certificate_serial)
        assert cert is not None
        der = cert.der
    result = _result(seal.key_ref, der, previous)
    if revoke is not None:  # the old holder certificate, revoked with the re-key
        result["revoked_serial"] = old_serial
    return result


def _result(new_ref: str, certificate_der: bytes, previous: int) -> dict[str, Any]:
    """DESIGN.md's rotation result, from the custody reference (`name@version`) now in use."""
    name, version = parse_ref(new_ref)
    return {"key": name, "version": version, "certificate_pem": _pem(certificate_der), "previous_version": previous}
