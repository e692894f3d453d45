"""Certificate issuance (officer / admin; an issuer for its own organisations), revocation (officer /
admin), and reading one back (public for organisation certificates; a person's only for officers,
auditors and admins — to anyone else it does not exist)."""

from __future__ import annotations

import base64
import functools
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ROLES, Principal
from api.context import Context
from api.deps import get_context, principal_in_thread, require
from ca.errors import CertificateNotFound
from policies.names import ANY_ORGANISATION, Requester
from policies.seals import bound_organisations

router = APIRouter(prefix="/v1/certificates", tags=["certificates"])


def to_pem(der: bytes) -> str:
    """PEM as asn1crypto's `pem.armor` writes it (64-column base64), without its per-call overhead."""
    body = base64.b64encode(der).decode("ascii")
    lines = "".join(body[i : i + 64] + "\n" for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}-----END CERTIFICATE-----\n"


@functools.lru_cache(maxsize=64)
def chain_pem(chain: tuple[bytes, ...]) -> str:
    return "".join(to_pem(c) for c in chain)


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csr_pem: str = Field(max_length=65536)
    profile: str = Field(max_length=64)
    ca: str = Field(max_length=64)


class IssueResponse(BaseModel):
    serial: str
    certificate_pem: str
    chain_pem: str
    ledger_index: int


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=64)
    invalidity_date: datetime | None = None  # a compromise found late: RFC 5280 invalidityDate in the CRL entry


class CertificateInfo(BaseModel):
    serial: str
    issuer_ca: str | None
    subject: str
    profile: str
    not_before: str
    not_after: str
    status: str
    revoked_at: str | None
    revocation_reason: str | None
    invalidity_date: str | None = None
    certificate_pem: str


Officer = Annotated[Principal, Depends(require("officer", "admin"))]
Requesting = Annotated[Principal, Depends(require("officer", "admin", "issuer"))]
Ctx = Annotated[Context, Depends(get_context)]
# People who vet persons or run the CA; no system token, and no auditor: an auditor reads the log, whose
# entries name a person only by keyed digest (issue 11: "auditor tokens can read the log, nothing else").
PERSON_READERS = ("officer", "admin")


def requester(who: Principal, context: Context) -> Requester:
    """Officers and admins may name any valid USCC; an issuer system only its seals' organisations."""
    if who.role != "issuer":
        return ANY_ORGANISATION
    seals = [
        (r.id, r.organisation_uscc, r.allowed_callers, context.seals.effective_status(r)) for r in context.seals.list()
    ]
    return Requester(bound_organisations(caller=who.name, caller_seal_ids=who.seal_ids, seals=seals))


@router.post("", response_model=IssueResponse, status_code=201)
async def issue(body: IssueRequest, who: Requesting, context: Ctx) -> Response:
    if who.role != "issuer":
        asking = ANY_ORGANISATION
    else:
        asking = await run_in_threadpool(requester, who, context)
    if context.issuance_on_event_loop:  # see Context.issuance_on_event_loop
        issued = context.ca.issue(body.csr_pem, body.profile, body.ca, actor=who.actor, requester=asking)
    else:
        issued = await run_in_threadpool(
            context.ca.issue, body.csr_pem, body.profile, body.ca, actor=who.actor, requester=asking
        )
    # Serialised here (the model above documents it): FastAPI's response-model pass costs more than the JSON.
    assert issued.event_id is not None
    if context.issuance_on_event_loop:  # requests waiting together share one sequencer pass
        sequenced = await context.ledger.sequencer.wait_for_async(issued.event_id)
    else:
        sequenced = await run_in_threadpool(context.ledger.wait_for, issued.event_id)
    content = {
        "serial": issued.serial,
        "certificate_pem": to_pem(issued.der),
        "chain_pem": chain_pem(tuple(issued.chain)),
        "ledger_index": sequenced.index,
    }
    return Response(json.dumps(content), status_code=201, media_type="application/json")


@router.post("/{serial}/revoke", response_model=CertificateInfo)
def revoke(serial: str, body: RevokeRequest, who: Officer, context: Ctx) -> CertificateInfo:
    row = context.ca.revoke(serial, body.reason, actor=who.actor, invalidity_date=body.invalidity_date)
    return _info(row)


@router.get("/{serial}", response_model=CertificateInfo)
def get_certificate(serial: str, request: Request, context: Ctx) -> CertificateInfo:
    """Public for organisation and infrastructure certificates. A certificate of a `personal: true` profile
    (it carries a person's name and ID number) answers only officers, auditors and admins; anyone else gets
    the 404 an unknown serial gets, so the endpoint does not tell whether it exists. A token that is sent
    is checked first, whatever the serial: 401 for a bad one never depends on what was asked."""
    who = principal_in_thread(request, *ROLES) if _has_token(request) else None
    row = context.ca.get_certificate(serial)
    profile = context.ca.profiles.profiles.get(row.profile)
    if profile is not None and profile.personal and (who is None or who.role not in PERSON_READERS):
        raise CertificateNotFound(f"no certificate with serial {serial}")
    return _info(row)


def _has_token(request: Request) -> bool:
    return bool(request.headers.get("authorization"))


def _info(row: object) -> CertificateInfo:
    from store.models import Certificate

    assert isinstance(row, Certificate)
    return CertificateInfo(
        serial=row.serial,
        issuer_ca=row.issuer_ca,
        subject=row.subject,
        profile=row.profile,
        not_before=row.not_before.isoformat(),
        not_after=row.not_after.isoformat(),
        status=row.status,
        revoked_at=row.revoked_at.isoformat() if row.revoked_at else None,
        revocation_reason=row.revocation_reason,
        invalidity_date=row.invalidity_date.isoformat() if row.invalidity_date else None,
        certificate_pem=to_pem(row.der),
    )
