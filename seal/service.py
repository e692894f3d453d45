"""Making seals and managing their lifecycle.

A seal has three parties: the seal maker (one key + certificate per issuing CA, profile `seal-maker`)
signs the `SESeal`; the seal holder (one key + certificate per seal, profile `org-seal`) signs documents;
the CA vouches for both. Revoking a seal revokes the holder certificate, so CRL and OCSP tell verifiers.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.authority import CertificateAuthorityService
from ca.errors import AlreadyRevoked, CAWithdrawn
from gm import oids, ses
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm, KeyCustody, KeyNotFound, SigningHandle
from keys.rotation import provisional_version
from ledger.events import record_event
from policies import seals as policy
from policies.uscc import is_valid_uscc
from seal import picture
from seal.errors import (
    InvalidSealRequest,
    InvalidTransition,
    SealExists,
    SealExpired,
    SealNotActive,
    SealNotFound,
    SealNotPermitted,
)
from store.db import Database
from store.models import Certificate, Seal, SealMaker

SEAL_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def has_maker_eku(certificate_der: bytes) -> bool:
    """Whether a maker certificate carries the seal-maker EKU (under any arc we ever used)."""
    usages = x509.Certificate.load(certificate_der).extended_key_usage_value
    return usages is not None and bool(set(usages.native) & oids.EKU_SEAL_MAKERS)


@dataclass(frozen=True)
class SealRequest:
    name: str  # shown on the seal, e.g. the organisation's name
    organisation_name: str
    organisation_uscc: str
    ca: str  # issuing (regional) CA; its family decides SM2 or P-256
    seal_type: str = "official"
    purpose: str = ""  # e.g. 合同专用章
    shape: str = "round"  # round | square
    code: str = ""  # optional 13-digit seal code printed on the bottom arc
    valid_days: int = 1095
    allowed_callers: tuple[str, ...] = ()
    seal_id: str | None = None


@dataclass(frozen=True)
class RevokeOld:
    """How a re-key cuts off the old holder key: its certificate revoked with `reason` (normalised, e.g.
    `key_compromise`) and `invalidity_date` (checked, whole seconds; None: from the revocation)."""

    reason: str
    invalidity_date: datetime | None = None

    @classmethod
    def checked(cls, reason: str | None, invalidity_date: datetime | None) -> RevokeOld:
        """RFC 5280 reason names as the revoke endpoints take them, and the one invalidity-date rule."""
        from ca import revocation as rev

        moment = rev.checked_invalidity_date(invalidity_date, datetime.now(UTC), "re-key")
        return cls(rev.normalise_reason(reason), moment)


@dataclass(frozen=True)
class SealForSigning:
    """What signing/ needs: the seal, the holder's handle, certificate and chain (issuer first)."""

    seal: Seal
    handle: SigningHandle
    certificate: bytes
    chain: list[bytes]


class SealService:
    def __init__(self, db: Database, custody: KeyCustody, ca: CertificateAuthorityService) -> None:
        self.db = db
        self.custody = custody
        self.ca = ca
        self._makers_lock = threading.Lock()

    # -- seal makers ------------------------------------------------------------------------------

    def maker(self, ca_name: str, actor: str | None = None) -> SealMaker:
        """The CA's seal maker, made on first use. A maker certified before the seal-maker EKU existed
        gets a fresh certificate for the same custody key: verifiers trust a maker by that EKU (or the
        trust list's `seal_makers`, which lists both)."""
        with self._makers_lock:
            with self.db.session() as session:
                found = session.get(SealMaker, ca_name)
                if found is not None and has_maker_eku(found.certificate_der):
                    return found
            ca = next((c for c in self.ca.list_cas() if c.name == ca_name), None)
            if ca is None:
                raise InvalidSealRequest(f"no CA named {ca_name!r}")
            if ca.status == "withdrawn":  # refused before a maker key is made (a key made is a ledger event)
                raise CAWithdrawn(f"{ca_name} is withdrawn: it issues no more certificates")
            key_name = f"{ca_name}.seal-maker"
            if found is not None:
                version = self.custody.get(found.key_ref)
            else:
                try:
                    version = self.custody.get(key_name)
                except KeyNotFound:
                    version = self.custody.create(key_name, KeyAlgorithm(ca.algorithm))
            issued = self.ca.issue_for_key(
                version.public_key_der,
                {"country_name": "CN", "organization_name": "trustseal", "common_name": f"{ca_name} seal maker"},
                "seal-maker",
                ca_name,
                actor=actor,
            )
            with self.db.session() as session:
                row = session.get(SealMaker, ca_name)
                if row is None:
                    row = SealMaker(ca_name=ca_name, key_ref=version.ref)
                    session.add(row)
                row.certificate_serial = issued.serial
                row.certificate_der = issued.der
                row.created_at = datetime.now(UTC)
                session.flush()
            return row

    def rotate_maker(
        self, ca_name: str, actor: str | None = None, custody: KeyCustody | None = None
    ) -> tuple[SealMaker, int]:
        """A new custody version of the CA's seal-maker key and a certificate for it; seals are made with
        it from now on. Seals made before keep their maker certificate, which stays on the trust list
        (`seal_makers` lists every maker certificate a seal names). Returns the maker and the previous
        key version; `seal_maker.rotated` is recorded with the row change."""
        with self._makers_lock:
            with self.db.session() as session:
                found = session.get(SealMaker, ca_name)
            if found is None:
                raise KeyNotFound(f"{ca_name} has no seal maker")
            name, _, previous = found.key_ref.partition("@")
            with provisional_version(custody or self.custody, name) as version:  # `custody`: recording the officer
                issued = self.ca.issue_for_key(
                    version.public_key_der,
                    {"country_name": "CN", "organization_name": "trustseal", "common_name": f"{ca_name} seal maker"},
                    "seal-maker",
                    ca_name,
                    actor=actor,
                )
                with self.db.session() as session:
                    row = session.get(SealMaker, ca_name, with_for_update=True)
                    assert row is not None
                    old_serial = row.certificate_serial
                    row.key_ref = version.ref
                    row.certificate_serial = issued.serial
                    row.certificate_der = issued.der
                    row.created_at = datetime.now(UTC)
                    record_event(
                        session,
                        "seal_maker.rotated",
                        actor=actor,
                        subject=ca_name,
                        payload={
                            "ca": ca_name,
                            "key": version.ref,
                            "certificate_serial": issued.serial,
                            "previous_certificate_serial": old_serial,
                        },
                    )
                    session.flush()
                    session.expunge(row)
            return row, int(previous or 1)

    # -- making -----------------------------------------------------------------------------------

    def create(self, request: SealRequest, actor: str | None = None) -> Seal:
        seal_id = request.seal_id or f"seal-{secrets.token_hex(8)}"
        self._validate(request, seal_id)
        with self.db.session() as session:
            if session.get(Seal, seal_id) is not None:
                raise SealExists(f"seal {seal_id} exists")
        ca = next((c for c in self.ca.list_cas() if c.name == request.ca), None)
        if ca is None or ca.parent is None:
            raise InvalidSealRequest(f"{request.ca!r} is not an issuing CA")
        maker = self.maker(request.ca, actor)
        key_name = f"seal.{seal_id}"
        try:
            version = self.custody.get(key_name)
        except KeyNotFound:
            version = self.custody.create(key_name, KeyAlgorithm(ca.algorithm))
        holder = self.ca.issue_for_key(
            version.public_key_der,
            {
                "country_name": "CN",
                "organization_name": request.organisation_name,
                "organization_identifier": request.organisation_uscc,
                "common_name": f"{request.name}电子印章"[:64],
            },
            "org-seal",
            request.ca,
            actor=actor,
        )
        now = datetime.now(UTC).replace(microsecond=0)
        valid_end = min(now + timedelta(days=request.valid_days), holder.certificate.not_valid_after)
        if request.shape == "square":
            image = picture.render_square(picture.SquareSeal(request.name))
            width = height = 20
        else:
            image = picture.render_round(picture.RoundSeal(request.name, request.purpose, request.code))
            width = height = 42
        png = picture.png_bytes(image)
        es_id = (ca.region_code or "000000") + f"{secrets.randbelow(10**8):08d}"
        info = ses.build_seal_info(
            es_id=es_id,
            seal_type=policy.SEAL_TYPES[request.seal_type],
            name=request.name,
            certs=[holder.der],
            create_date=now,
            valid_start=now,
            valid_end=valid_end,
            picture_type="png",
            picture=png,
            width_mm=width,
            height_mm=height,
        )
        maker_handle = self.custody.signer(maker.key_ref)
        algorithm = oids.SM2_WITH_SM3 if ca.algorithm == "sm2" else oids.ECDSA_WITH_SHA256
        esl = ses.assemble_seal(info, maker.certificate_der, maker_handle.sign(info), algorithm)
        row = Seal(
            id=seal_id,
            es_id=es_id,
            name=request.name,
            seal_type=policy.SEAL_TYPES[request.seal_type],
            purpose=request.purpose,
            shape=request.shape,
            organisation_name=request.organisation_name,
            organisation_uscc=request.organisation_uscc,
            region_code=ca.region_code,
            ca_name=request.ca,
            algorithm=ca.algorithm,
            status="active",
            valid_start=now,
            valid_end=valid_end,
            key_ref=version.ref,
            certificate_serial=holder.serial,
            maker_certificate_serial=maker.certificate_serial,
            esl_der=esl,
            picture_png=png,
            width_mm=width,
            height_mm=height,
            allowed_callers=list(request.allowed_callers),
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            record_event(
                session,
                "seal.created",
                actor=actor,
                subject=seal_id,
                payload={
                    "seal_id": seal_id,
                    "es_id": es_id,
                    "ca": request.ca,
                    "organisation_uscc": request.organisation_uscc,
                    "certificate_serial": holder.serial,
                    "maker_certificate_serial": maker.certificate_serial,
                    "esl_sm3": sm3(esl).hex(),
                    "valid_end": valid_end.isoformat(),
                },
            )
        return row

    @staticmethod
    def _validate(request: SealRequest, seal_id: str) -> None:
        if not seal_id or len(seal_id) > 64 or not set(seal_id) <= SEAL_ID_CHARS:
            raise InvalidSealRequest("seal id: 1-64 characters of a-z, 0-9 and '-'")
        if not request.name.strip() or len(request.name) > 40:
            raise InvalidSealRequest("seal name must be 1-40 characters")
        if not is_valid_uscc(request.organisation_uscc):
            raise InvalidSealRequest("organisation_uscc is not a valid 18-character unified social credit code")
        if request.seal_type not in policy.SEAL_TYPES:
            raise InvalidSealRequest(f"seal type must be one of {', '.join(policy.SEAL_TYPES)}")
        if request.shape not in ("round", "square"):
            raise InvalidSealRequest("shape must be round or square")
        if request.code and (len(request.code) != 13 or not request.code.isdigit()):
            raise InvalidSealRequest("seal code must be 13 digits")
        if len(request.purpose) > 12:
            raise InvalidSealRequest("purpose must be at most 12 characters")
        if not 1 <= request.valid_days <= 3650:
            raise InvalidSealRequest("valid_days must be between 1 and 3650")

    # -- re-keying --------------------------------------------------------------------------------

    def rekey(
        self,
        seal_id: str,
        actor: str | None = None,
        custody: KeyCustody | None = None,
        revoke: RevokeOld | None = None,
    ) -> tuple[Seal, int]:
        """A new holder key version for the seal, a new org-seal certificate for the same organisation and
        the seal re-made around it: same esID, picture and validity, the new certificate in its cert list,
        signed by the CA's current maker. The SM3 of the older SESeal stays registered under the esID
        (`previous_versions`), so a status lookup still knows it. Without `revoke` the old holder
        certificate is left to expire and documents sealed before keep verifying; with it (a compromised
        key) the old certificate is revoked with that reason and invalidity date in the re-key's own
        transaction (its `certificate.revoked` event and the CA's new CRL commit with `seal.rekeyed`), so
        CRL and OCSP cut the old key off at once. Returns the seal and the previous key version."""
        row = self.get(seal_id)
        status = self.effective_status(row)
        if status not in ("active", "suspended"):
            raise InvalidTransition(f"a {status} seal is not re-keyed")
        with self.db.session() as session:
            old_cert = session.get(Certificate, row.certificate_serial)
            assert old_cert is not None
            old_der = old_cert.der
        subject = {
            k: v
            for k, v in x509.Certificate.load(old_der).subject.native.items()
            if k in ("country_name", "organization_name", "organization_identifier", "common_name")
        }
        name, _, previous = row.key_ref.partition("@")
        maker = self.maker(row.ca_name, actor)
        with provisional_version(custody or self.custody, name) as version:
            holder = self.ca.issue_for_key(version.public_key_der, subject, "org-seal", row.ca_name, actor=actor)
            info = ses.build_seal_info(
                es_id=row.es_id,
                seal_type=row.seal_type,
                name=row.name,
                certs=[holder.der],
                create_date=datetime.now(UTC).replace(microsecond=0),
                valid_start=row.valid_start,
                valid_end=min(row.valid_end, holder.certificate.not_valid_after),
                picture_type="png",
                picture=row.picture_png,
                width_mm=row.width_mm,
                height_mm=row.height_mm,
            )
            maker_handle = self.custody.signer(maker.key_ref)
            algorithm = oids.SM2_WITH_SM3 if row.algorithm == "sm2" else oids.ECDSA_WITH_SHA256
            esl = ses.assemble_seal(info, maker.certificate_der, maker_handle.sign(info), algorithm)
            revoking = self.ca.crls.mutex if revoke is not None else contextlib.nullcontext()
            try:
                with revoking, self.db.session() as session:  # the CRL mutex first, as every revocation takes it
                    locked = session.get(Seal, seal_id, with_for_update=True)
                    assert locked is not None
                    # revoked (or expired) since the check above, e.g. an approved revocation that landed while
                    # the new certificate was issued: refused, the provisional version disabled on the way out
                    status = self.effective_status(locked)
                    if status not in ("active", "suspended"):
                        raise InvalidTransition(f"a {status} seal is not re-keyed")
                    revoked = self._revoke_old(session, locked.certificate_serial, revoke, actor)
                    before = {
                        "esl_sm3": sm3(locked.esl_der).hex(),
                        "key_ref": locked.key_ref,
                        "certificate_serial": locked.certificate_serial,
                        "maker_certificate_serial": locked.maker_certificate_serial,
                        "replaced_at": datetime.now(UTC).isoformat(),
                    }
                    locked.previous_versions = [*(locked.previous_versions or []), before]
                    locked.key_ref = version.ref
                    locked.certificate_serial = holder.serial
                    locked.maker_certificate_serial = maker.certificate_serial
                    locked.esl_der = esl
                    locked.valid_end = min(locked.valid_end, holder.certificate.not_valid_after)
                    locked.updated_at = datetime.now(UTC)
                    record_event(
                        session,
                        "seal.rekeyed",
                        actor=actor,
                        subject=seal_id,
                        payload={
                            "seal_id": seal_id,
                            "es_id": locked.es_id,
                            "key": version.ref,
                            "certificate_serial": holder.serial,
                            "previous_certificate_serial": before["certificate_serial"],
                            "maker_certificate_serial": maker.certificate_serial,
                            "esl_sm3": sm3(esl).hex(),
                            "previous_esl_sm3": before["esl_sm3"],
                            "previous_certificate_revoked": revoked,
                        },
                    )
                    session.flush()
                    session.expunge(locked)
            except InvalidTransition:  # the holder certificate just issued is nobody's: cut it off too
                with contextlib.suppress(AlreadyRevoked):
                    self.ca.revoke(holder.serial, "cessationOfOperation", actor=actor)
                raise
        return locked, int(previous or 1)

    def _revoke_old(self, session: Session, serial: str, revoke: RevokeOld | None, actor: str | None) -> bool:
        """The old holder certificate revoked in the caller's transaction (caller holds the CRL mutex);
        False when not asked, or when it was revoked already."""
        if revoke is None:
            return False
        certificate = session.get(Certificate, serial)
        assert certificate is not None
        if certificate.status == "revoked":
            return False
        self.ca.revoke_in_session(session, certificate, revoke.reason, actor, invalidity_date=revoke.invalidity_date)
        return True

    def _revoke_holders(self, session: Session, locked: Seal, actor: str | None) -> None:
        """The seal's current holder certificate and its earlier versions' (re-keyed), each still good one
        revoked `cessationOfOperation` in the caller's transaction (caller holds the CRL mutex and the row)."""
        serials = [locked.certificate_serial, *(str(v["certificate_serial"]) for v in locked.previous_versions or [])]
        for serial in dict.fromkeys(serials):
            certificate = session.get(Certificate, serial)
            if certificate is None or certificate.status == "revoked":  # e.g. revoked when its CA was withdrawn
                continue
            with contextlib.suppress(AlreadyRevoked):
                self.ca.revoke_in_session(session, certificate, "cessation_of_operation", actor)

    # -- reading ----------------------------------------------------------------------------------

    def get(self, seal_id: str) -> Seal:
        """By seal id, or by esID (how a verifier holding only the seal finds its registered status)."""
        with self.db.session() as session:
            row = session.get(Seal, seal_id) or session.scalars(select(Seal).where(Seal.es_id == seal_id)).first()
            if row is None:
                raise SealNotFound(f"no seal {seal_id!r}")
            return row

    def list(self, uscc: str | None = None) -> list[Seal]:
        with self.db.session() as session:
            query = select(Seal).order_by(Seal.id)
            if uscc:
                query = query.where(Seal.organisation_uscc == uscc)
            return list(session.scalars(query))

    def effective_status(self, row: Seal, at: datetime | None = None) -> str:
        """Stored status, with time applied: an active seal past its validity is expired."""
        now = at or datetime.now(UTC)
        if row.status in ("active", "suspended") and now > row.valid_end:
            return "expired"
        if row.status == "active" and now < row.valid_start:
            return "requested"
        return row.status

    def status(self, seal_id: str) -> dict[str, object]:
        row = self.get(seal_id)
        with self.db.session() as session:
            cert = session.get(Certificate, row.certificate_serial)
        return {
            "id": row.id,
            "es_id": row.es_id,
            "status": self.effective_status(row),
            "reason": row.status_reason,
            "valid_start": row.valid_start.isoformat(),
            "valid_end": row.valid_end.isoformat(),
            "certificate_serial": row.certificate_serial,
            "certificate_status": cert.status if cert is not None else "unknown",
            "sm3": sm3(row.esl_der).hex(),  # of the registered SESeal: another seal with this esID is forged
            # the seal's earlier SESeals (re-keyed): documents sealed with them are this seal's too
            "previous_sm3": [v["esl_sm3"] for v in row.previous_versions or []],
            "updated_at": row.updated_at.isoformat(),
        }

    # -- lifecycle --------------------------------------------------------------------------------

    def transition(self, seal_id: str, target: str, reason: str | None = None, actor: str | None = None) -> Seal:
        """Suspend, resume or revoke. A revocation revokes, in the same transaction and under the seal's row
        lock, the certificate the locked row names and every earlier version's still-good one: a re-key that
        committed after this was asked cannot leave the revoked seal a good holder certificate."""
        row = self.get(seal_id)
        current = self.effective_status(row)
        if not policy.may_transition(current, target):
            raise InvalidTransition(f"a {current} seal cannot become {target}")
        revoking = self.ca.crls.mutex if target == "revoked" else contextlib.nullcontext()
        with revoking, self.db.session() as session:  # the CRL mutex first, as every revocation takes it
            locked = session.get(Seal, seal_id, with_for_update=True)
            assert locked is not None
            current = self.effective_status(locked)  # what it is now, under the lock
            if not policy.may_transition(current, target):
                raise InvalidTransition(f"a {current} seal cannot become {target}")
            if target == "revoked":
                self._revoke_holders(session, locked, actor)
            locked.status = target
            locked.status_reason = (reason or "")[:256] or None
            locked.updated_at = datetime.now(UTC)
            record_event(
                session,
                f"seal.{ {'active': 'resumed', 'suspended': 'suspended', 'revoked': 'revoked'}[target] }",
                actor=actor,
                subject=seal_id,
                payload={"seal_id": seal_id, "from": current, "to": target, "reason": reason},
            )
            session.flush()
            return locked

    # -- applying ---------------------------------------------------------------------------------

    def for_signing(
        self, seal_id: str, *, role: str, caller: str, caller_seal_ids: tuple[str, ...], at: datetime | None = None
    ) -> SealForSigning:
        row = self.get(seal_id)
        if not policy.may_apply(
            role=role, caller=caller, caller_seal_ids=caller_seal_ids, seal_id=seal_id, allowed=row.allowed_callers
        ):
            raise SealNotPermitted(f"{role}:{caller} may not apply seal {seal_id}")
        status = self.effective_status(row, at)
        if status == "expired":
            raise SealExpired(f"seal {seal_id} expired at {row.valid_end.isoformat()}")
        if status != "active":
            raise SealNotActive(f"seal {seal_id} is {status}")
        ca_status = self.ca.ca_status(row.ca_name)
        if ca_status != "active":  # its documents would not verify: the CA is off the trust list
            raise SealNotActive(f"the CA of seal {seal_id}, {row.ca_name}, is {ca_status}")
        with self.db.session() as session:
            cert = session.get(Certificate, row.certificate_serial)
            if cert is None or cert.status != "good":
                raise SealNotActive(f"the certificate of seal {seal_id} is revoked")
            der = cert.der
            # the CA snapshot (ca/snapshot.py): through the CA key that signed it, old or new after a rollover
            chain = list(self.ca.snapshots.chain_for(row.ca_name, der))
        return SealForSigning(
            seal=row,
            handle=self.custody.signer(row.key_ref),
            certificate=der,
            chain=chain,
        )
