"""Electronic licence packaging: identifier, registry row, and XMP metadata embedded before sealing.

The registry keeps the holder's name and ID because the licence needs them; events carry only their
keyed digests (HMAC-SM3 under a custody key, ledger/pii.py: PIPL).
Status codes follow the licence metadata practice: 01 valid, 02 suspended, 03 revoked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

from asn1crypto import x509
from sqlalchemy.orm import Session

from ledger.events import record_event
from ledger.pii import PiiDigests
from policies import licence_id
from policies.seals import may_issue_licence_type
from policies.uscc import is_valid_uscc
from signing.errors import SigningError
from store.db import Database
from store.models import Licence

STATUSES = {"01": "valid", "02": "suspended", "03": "revoked"}
ID_TYPES = ("resident_id", "passport", "uscc", "other")


class InvalidLicence(SigningError):
    code = "invalid_licence"


class LicenceExists(SigningError):
    code = "licence_exists"
    status = 409


class LicenceNotFound(SigningError):
    code = "licence_not_found"
    status = 404


class LicenceNotPermitted(SigningError):
    code = "licence_not_permitted"
    status = 403


class LicenceIssuerMismatch(SigningError):
    code = "licence_issuer_mismatch"
    status = 403


class LicenceTypeNotAllowed(SigningError):
    code = "licence_type_not_allowed"
    status = 403


@dataclass(frozen=True)
class LicenceRequest:
    type_code: str
    type_name: str
    number: str
    holder_name: str
    holder_id: str
    holder_id_type: str
    issuer_name: str
    issuer_uscc: str
    issue_date: str
    valid_from: str
    valid_to: str | None
    serial: str
    version: str

    @classmethod
    def from_json(cls, value: Any) -> LicenceRequest:
        if not isinstance(value, dict):
            raise InvalidLicence("licence metadata must be a JSON object")
        holder = value.get("holder") or {}
        issuer = value.get("issuer") or {}
        if not isinstance(holder, dict) or not isinstance(issuer, dict):
            raise InvalidLicence("holder and issuer are objects")

        def text(container: dict[str, Any], key: str, limit: int, required: bool = True) -> str:
            item = container.get(key)
            if item is None and not required:
                return ""
            if not isinstance(item, str) or not item.strip() or len(item) > limit:
                raise InvalidLicence(f"{key}: a non-empty string of at most {limit} characters")
            if any(ord(c) < 0x20 for c in item):
                raise InvalidLicence(f"{key}: control characters are not allowed")
            return item.strip()

        number = text(value, "number", 64)
        request = cls(
            type_code=text(value, "type_code", 21).upper(),
            type_name=text(value, "type_name", 128),
            number=number,
            holder_name=text(holder, "name", 256),
            holder_id=text(holder, "id", 64),
            holder_id_type=text(holder, "id_type", 32),
            issuer_name=text(issuer, "name", 256),
            issuer_uscc=text(issuer, "uscc", 18).upper(),
            issue_date=_date(value.get("issue_date"), "issue_date"),
            valid_from=_date(value.get("valid_from", value.get("issue_date")), "valid_from"),
            valid_to=_date(value["valid_to"], "valid_to") if value.get("valid_to") is not None else None,
            serial=(text(value, "serial", 40, required=False) or re.sub(r"[^0-9A-Za-z]", "", number)).upper(),
            version=str(value.get("version", "001")),
        )
        if request.holder_id_type not in ID_TYPES:
            raise InvalidLicence(f"holder.id_type must be one of {', '.join(ID_TYPES)}")
        if not is_valid_uscc(request.issuer_uscc):
            raise InvalidLicence("issuer.uscc is not a valid unified social credit code")
        if request.valid_to is not None and request.valid_to < request.valid_from:
            raise InvalidLicence("valid_to is before valid_from")
        try:
            licence_id.make(request.type_code, request.issuer_uscc, request.serial, request.version)
        except licence_id.InvalidLicenceId as exc:
            raise InvalidLicence(str(exc)) from None
        return request

    @property
    def identifier(self) -> str:
        return str(licence_id.make(self.type_code, self.issuer_uscc, self.serial, self.version))


def _date(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidLicence(f"{name}: an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidLicence(f"{name}: an ISO date (YYYY-MM-DD)") from None


def bind_to_seal(
    request: LicenceRequest, *, seal_id: str, certificate: bytes, allowed_type_codes: frozenset[str]
) -> None:
    """A seal issues licences of its own organisation only: the issuer USCC is the organizationIdentifier
    of the seal's certificate (what verifiers compare the identifier with), and the type is the issuer's
    own or one the seal's policy lists. Otherwise anyone holding a seal could register, and so lock
    out, another organisation's identifiers."""
    subject = x509.Certificate.load(certificate).subject.native
    organisation = licence_id.organisation_uscc(subject.get("organization_identifier"))
    if organisation != request.issuer_uscc:
        raise LicenceIssuerMismatch(
            f"seal {seal_id} belongs to {organisation or 'no organisation'}, not to the licence's issuer "
            f"{request.issuer_uscc}"
        )
    if not may_issue_licence_type(
        issuer_uscc=request.issuer_uscc, type_code=request.type_code, allowed_type_codes=allowed_type_codes
    ):
        raise LicenceTypeNotAllowed(
            f"licence type {request.type_code} belongs to department {request.type_code[:18]}; seal {seal_id} "
            "issues its own organisation's types and those listed for it in licence-types.yaml"
        )


XMP_NAMESPACE = "urn:trustseal:licence:1.0#"


def xmp(request: LicenceRequest, status_url: str) -> bytes:
    """An XMP packet naming the licence; the holder is not repeated here (the page shows what it must)."""
    fields = {
        "typeCode": request.type_code,
        "typeName": request.type_name,
        "number": request.number,
        "issuerName": request.issuer_name,
        "issuerCode": request.issuer_uscc,
        "issueDate": request.issue_date,
        "validFrom": request.valid_from,
        "validTo": request.valid_to or "",
        "statusUrl": status_url,
    }
    body = "".join(f"<ecl:{k}>{escape(v)}</ecl:{k}>" for k, v in fields.items())
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:ecl="{XMP_NAMESPACE}">'
        f"<dc:identifier>{escape(request.identifier)}</dc:identifier>{body}"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


class LicenceRegistry:
    def __init__(self, db: Database, pii: PiiDigests) -> None:
        self.db = db
        self.pii = pii

    def ensure_new(self, request: LicenceRequest) -> None:
        with self.db.session() as session:
            if session.get(Licence, request.identifier) is not None:
                raise LicenceExists(f"licence {request.identifier} exists")

    def insert(
        self, session: Session, request: LicenceRequest, *, seal_id: str, owner: str, actor: str, document_sm3: str
    ) -> None:
        now = datetime.now(UTC)
        session.add(
            Licence(
                identifier=request.identifier,
                type_code=request.type_code,
                type_name=request.type_name,
                number=request.number,
                holder_name=request.holder_name,
                holder_id=request.holder_id,
                holder_id_type=request.holder_id_type,
                issuer_name=request.issuer_name,
                issuer_uscc=request.issuer_uscc,
                issue_date=request.issue_date,
                valid_from=request.valid_from,
                valid_to=request.valid_to,
                status="01",
                seal_id=seal_id,
                owner=owner,
                document_sm3=document_sm3,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()  # a duplicate identifier fails here, before the events are written
        record_event(
            session,
            "licence.issued",
            actor=actor,
            subject=request.identifier,
            payload={
                "identifier": request.identifier,
                "type_code": request.type_code,
                "issuer_uscc": request.issuer_uscc,
                "holder_name_hmac": self.pii(request.holder_name),
                "holder_id_hmac": self.pii(request.holder_id),
                "seal_id": seal_id,
                "document_sm3": document_sm3,
            },
        )

    def get(self, identifier: str) -> Licence:
        with self.db.session() as session:
            row = session.get(Licence, identifier)
            if row is None:
                raise LicenceNotFound(f"no licence {identifier!r}")
            return row

    def set_status(self, identifier: str, status: str, reason: str | None, *, role: str, caller: str) -> Licence:
        if status not in STATUSES:
            raise InvalidLicence("status is 01 (valid), 02 (suspended) or 03 (revoked)")
        with self.db.session() as session:
            row = session.get(Licence, identifier, with_for_update=True)
            if row is None:
                raise LicenceNotFound(f"no licence {identifier!r}")
            if role == "issuer" and row.owner != caller:
                raise LicenceNotPermitted("only the issuing system (or an officer) changes a licence's status")
            if row.status == "03":
                raise InvalidLicence("a revoked licence stays revoked")
            previous = row.status
            row.status = status
            row.status_reason = (reason or "")[:256] or None
            row.updated_at = datetime.now(UTC)
            record_event(
                session,
                "licence.status_changed",
                actor=f"{role}:{caller}",
                subject=identifier,
                payload={"identifier": identifier, "from": previous, "to": status, "reason": reason},
            )
            session.flush()
            return row
