"""The offline root's seam: where a CA whose key left online custody would sign, a ceremony request.

`signer_for(custody, ca)` is the one place the CA asks for a CA's signing handle. For an online CA it is
custody's handle; for an offline one (`cas.offline`, set by `trustseal ca ceremony move-offline`) it is a
handle that never reaches custody: its `sign(tbs)` raises `SignatureDeferred` carrying the exact bytes to
be signed. The operation that asked catches it and opens a **ceremony request** (`open_request`): those
bytes, the key version that must sign them and what completing it does. The API answers 202
`{"ceremony": {…}}` (`CeremonyRequired`). On the offline machine `trustseal ca ceremony sign` signs the
bytes with the ceremony home's key (ca/ceremony_home.py); `import` (ca/ceremony_import.py) checks the
output is exactly those bytes signed by that key and completes the operation.

Operations (`operation` names, each with its completion in ca/ceremony_import.py): `ca.create` (a CA
under the offline CA), `crl` (its CRL: on schedule, and on a revocation such as a withdrawal, in the
revocation's transaction), `trust_list.signer` (the trust-list signer's certificate: rotation or
renewal), `ca.cross_certify`, `ca.rollover` (a CA's new certificate in a rollover under the offline
CA, ca/rollover.py: its new key version stays enabled while the request is pending, and
`ceremony_import.abandon` disables it for a request that will never complete). Another operation
registers its completion with `ceremony_import.register`, and what a cancel undoes with
`ceremony_import.register_abandon`. The pattern:

    try:
        cert = certs.sign_certificate(..., signer=ceremony.signer_for(custody, parent_row))
    except ceremony.SignatureDeferred as deferred:          # outside the operation's transaction
        request = ceremony.open_request(db, deferred, "ca.rollover", ca_name, {...what completion needs}, actor)
        raise ceremony.CeremonyRequired(request) from None  # 202 {"ceremony": …}

    @ceremony_import.register("ca.rollover")
    def _complete(done: Completion) -> dict[str, Any]:     # one transaction: done.begin(session) … done.finish(…)
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from asn1crypto import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca.errors import CAError
from keys.custody import KeyAlgorithm, KeyCustody, KeyVersion, SigningHandle, parse_ref
from ledger.events import record_event
from store.db import Database
from store.models import CeremonyRequest

REQUEST_FORMAT = "trustseal-ceremony-request/v1"
OUTPUT_FORMAT = "trustseal-ceremony-output/v1"


class OfflineCA(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_ref(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def certificate_der(self) -> bytes: ...
    @property
    def offline(self) -> bool: ...


class CAOffline(CAError):
    """An offline CA was asked to sign by an operation with no ceremony path."""

    code = "ca_offline"
    status = 409


class SignatureDeferred(CAOffline):
    """Raised by an offline CA's handle instead of a signature: `tbs` is what it was asked to sign.
    `params` collects what the operation's completion needs (the signer fills in what it knows)."""

    def __init__(self, ca: str, key_ref: str, tbs: bytes) -> None:
        super().__init__(f"CA {ca} is offline: its signature needs a ceremony")
        self.ca = ca
        self.key_ref = key_ref
        self.tbs = tbs
        self.params: dict[str, Any] = {}


class CeremonyRequired(CAError):
    """The operation waits for the offline CA's ceremony: 202 `{"ceremony": request}` (`result`: what it
    did already, e.g. a withdrawal)."""

    code = "ceremony_required"
    status = 202

    def __init__(self, request: dict[str, Any], result: dict[str, Any] | None = None) -> None:
        super().__init__(f"ceremony request {request['id']} ({request['operation']}) is pending")
        self.request = request
        self.result = result

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ceremony": self.request}
        if self.result is not None:
            body["result"] = self.result
        return body


class CeremonyPending(CAError):
    code = "ceremony_pending"
    status = 409


class CeremonyNotFound(CAError):
    code = "ceremony_not_found"
    status = 404


class CeremonyNotPending(CAError):
    code = "ceremony_not_pending"
    status = 409


@dataclass
class _DeferredMaterial:
    """Stands where custody's private material would: never signs."""

    ca: str
    key_ref: str
    version: KeyVersion
    algorithm: str = field(init=False)

    def __post_init__(self) -> None:
        self.algorithm = str(self.version.algorithm)

    def sign(self, data: bytes) -> bytes:
        raise SignatureDeferred(self.ca, self.key_ref, data)

    def public_key_der(self) -> bytes:
        return self.version.public_key_der

    def secret_bytes(self) -> bytes:
        raise CAOffline(f"CA {self.ca} is offline: no key here")


def signer_for(custody: KeyCustody, ca: OfflineCA) -> SigningHandle:
    """The handle that signs as `ca`: custody's, or for an offline CA one whose `sign` raises
    `SignatureDeferred` (custody is never asked: it holds no key for it)."""
    if not ca.offline:
        return custody.signer(ca.key_ref)
    name, _, number = ca.key_ref.partition("@")
    spki = x509.Certificate.load(ca.certificate_der).public_key.dump()
    version = KeyVersion(name, int(number or 1), KeyAlgorithm(ca.algorithm), spki, datetime.now(UTC), True)
    return SigningHandle(version, _DeferredMaterial(ca.name, ca.key_ref, version))


def request_json(row: CeremonyRequest, *, with_tbs: bool = False) -> dict[str, Any]:
    """A request as the API lists it; `with_tbs`: the document the offline machine signs (`export`)."""
    body: dict[str, Any] = {
        "id": row.id,
        "operation": row.operation,
        "status": row.status,
        "ca": row.ca_name,
        "key": row.key_ref,
        "kind": row.kind,
        "subject": row.subject,
        "tbs_sha256": hashlib.sha256(row.tbs_der).hexdigest(),  # what the offline side shows before it signs
        "created_at": row.created_at.isoformat(),
        "requested_by": row.requested_by,
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "completed_by": row.completed_by,
        "result": row.result,
    }
    if with_tbs:
        body = {"format": REQUEST_FORMAT, **body, "tbs": base64.b64encode(row.tbs_der).decode("ascii")}
    return body


def pending(session: Session, operation: str, subject: str) -> CeremonyRequest | None:
    query = select(CeremonyRequest).where(
        CeremonyRequest.operation == operation, CeremonyRequest.subject == subject, CeremonyRequest.status == "pending"
    )
    return session.scalars(query.with_for_update()).first()


def pending_any(session: Session, operation: str) -> CeremonyRequest | None:
    query = select(CeremonyRequest).where(CeremonyRequest.operation == operation, CeremonyRequest.status == "pending")
    return session.scalars(query.limit(1)).first()


def open_in_session(
    session: Session,
    deferred: SignatureDeferred,
    operation: str,
    subject: str,
    kind: str,
    params: dict[str, Any],
    actor: str | None,
    *,
    supersede: bool = False,
) -> CeremonyRequest:
    """Record a pending request (and `ceremony.requested`) in the caller's transaction. One pending request
    per (operation, subject): a second is refused (`ceremony_pending`, 409), or with `supersede` (a newer
    CRL, which lists everything the older one would) replaces it."""
    existing = pending(session, operation, subject)
    if existing is not None:
        if not supersede:
            raise CeremonyPending(
                f"ceremony request {existing.id} ({operation} {subject}) is pending already", request=existing.id
            )
        existing.status = "superseded"
        session.flush()  # before the new row: the pending index admits one per (operation, subject)
    row = CeremonyRequest(
        id=secrets.token_hex(16),
        operation=operation,
        subject=subject,
        ca_name=deferred.ca,
        key_ref=deferred.key_ref,
        kind=kind,
        tbs_der=deferred.tbs,
        params={**deferred.params, **params},
        status="pending",
        requested_by=actor,
        created_at=datetime.now(UTC).replace(microsecond=0),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        "ceremony.requested",
        actor=actor,
        subject=row.id,
        payload={
            "id": row.id,
            "operation": operation,
            "for": subject,
            "ca": deferred.ca,
            "key": deferred.key_ref,
            "kind": kind,
            "superseded": existing.id if existing is not None else None,
        },
    )
    return row


def open_request(
    db: Database,
    deferred: SignatureDeferred,
    operation: str,
    subject: str,
    params: dict[str, Any],
    actor: str | None,
    kind: str = "certificate",
) -> dict[str, Any]:
    """`open_in_session` in a transaction of its own (the operation's own rolled back: nothing of it is
    written until the ceremony's output is imported). Returns the request's JSON."""
    try:
        with db.session() as session:
            row = open_in_session(session, deferred, operation, subject, kind, params, actor)
            return request_json(row)
    except IntegrityError:  # another process opened the same request meanwhile (the pending index)
        raise CeremonyPending(f"a ceremony request for {operation} {subject} is pending already") from None


def list_requests(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(CeremonyRequest).order_by(CeremonyRequest.created_at, CeremonyRequest.id)
        if status is not None:
            query = query.where(CeremonyRequest.status == status)
        return [request_json(row) for row in session.scalars(query)]


def get_request(db: Database, request_id: str, *, with_tbs: bool = False) -> dict[str, Any]:
    with db.session() as session:
        row = session.get(CeremonyRequest, request_id)
        if row is None:
            raise CeremonyNotFound(f"no ceremony request {request_id!r}")
        return request_json(row, with_tbs=with_tbs)


def cancel_request(
    db: Database, custody: KeyCustody, request_id: str, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """Cancel a pending request (`ceremony.cancelled`; status `cancelled`; its output is refused from then
    on). The pending slot is free at once: a cancelled `ca.create` releases the CA's name. A cancelled
    trust-list signer *rotation* or CA rollover disables the provisional key version it made, after the
    commit, so the certified signer is the newest enabled version again; a renewal of the current version
    (no `previous_key_ref`) disables nothing."""
    with db.session() as session:
        row = session.get(CeremonyRequest, request_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise CeremonyNotFound(f"no ceremony request {request_id!r}")
        if row.status != "pending":
            raise CeremonyNotPending(f"ceremony request {request_id} is {row.status}")
        provisional = None
        if row.operation == "trust_list.signer" and row.params.get("previous_key_ref"):
            provisional = str(row.params["key_ref"])
        if row.operation == "ca.rollover":  # the CA key version the rollover made (ca/rollover.py)
            provisional = str(row.params["key_ref"])
        row.status = "cancelled"
        row.completed_at = datetime.now(UTC).replace(microsecond=0)
        row.completed_by = actor
        row.result = {"cancelled": True, "reason": reason, "disabled_key": provisional}
        record_event(
            session,
            "ceremony.cancelled",
            actor=actor,
            subject=row.id,
            payload={
                "id": row.id,
                "operation": row.operation,
                "for": row.subject,
                "ca": row.ca_name,
                "reason": reason,
                "disabled_key": provisional,
            },
        )
    if provisional is not None:
        name, version = parse_ref(provisional)
        if version is not None:
            custody.disable(name, version)
    return get_request(db, request_id)
