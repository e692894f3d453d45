"""Electronic seals: make (officer), list and read (any role), status / DER / picture (public), lifecycle."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, principal, require
from api.operations import respond, submit
from policies.seals import may_apply
from seal.errors import SealNotFound
from store.models import Seal

router = APIRouter(prefix="/v1/seals", tags=["seals"])
Ctx = Annotated[Context, Depends(get_context)]
Officer = Annotated[Principal, Depends(require("officer", "admin"))]
Anyone = Annotated[Principal, Depends(principal)]


class SealCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=40)
    organisation_name: str = Field(max_length=200)
    organisation_uscc: str = Field(max_length=18)
    ca: str = Field(max_length=64)
    seal_type: Literal["official", "personal", "finance", "contract", "invoice", "licence"] = "official"
    purpose: str = Field(default="", max_length=12)
    shape: Literal["round", "square"] = "round"
    code: str = Field(default="", max_length=13)
    valid_days: int = Field(default=1095, ge=1, le=3650)
    allowed_callers: list[str] = Field(default_factory=list, max_length=100)


class SealInfo(BaseModel):
    id: str
    es_id: str
    name: str
    seal_type: int
    purpose: str
    shape: str
    organisation_name: str
    organisation_uscc: str
    ca: str
    algorithm: str
    status: str
    valid_start: str
    valid_end: str
    certificate_serial: str
    maker_certificate_serial: str
    width_mm: int
    height_mm: int
    esl_url: str
    image_url: str
    status_url: str


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=256)


def _info(row: Seal, context: Context) -> SealInfo:
    base = f"{context.settings.public_url}/v1/seals/{row.id}"
    return SealInfo(
        id=row.id,
        es_id=row.es_id,
        name=row.name,
        seal_type=row.seal_type,
        purpose=row.purpose,
        shape=row.shape,
        organisation_name=row.organisation_name,
        organisation_uscc=row.organisation_uscc,
        ca=row.ca_name,
        algorithm=row.algorithm,
        status=context.seals.effective_status(row),
        valid_start=row.valid_start.isoformat(),
        valid_end=row.valid_end.isoformat(),
        certificate_serial=row.certificate_serial,
        maker_certificate_serial=row.maker_certificate_serial,
        width_mm=row.width_mm,
        height_mm=row.height_mm,
        esl_url=base + "/esl",
        image_url=base + "/image",
        status_url=base + "/status",
    )


@router.post("", response_model=SealInfo, status_code=201, responses={202: {"description": "pending approval"}})
def create_seal(body: SealCreate, who: Officer, context: Ctx) -> JSONResponse:
    return respond(submit(context, who, "seal.create", body.model_dump()), 201)


def _visible(who: Principal, row: Seal) -> bool:
    """An issuer system sees the seals it may apply; the other roles see every seal."""
    if who.role != "issuer":
        return True
    return may_apply(
        role=who.role, caller=who.name, caller_seal_ids=who.seal_ids, seal_id=row.id, allowed=row.allowed_callers
    )


@router.get("", response_model=list[SealInfo])
def list_seals(who: Anyone, context: Ctx, uscc: str | None = None) -> list[SealInfo]:
    return [_info(r, context) for r in context.seals.list(uscc) if _visible(who, r)]


@router.get("/{seal_id}", response_model=SealInfo)
def get_seal(seal_id: str, who: Anyone, context: Ctx) -> SealInfo:
    """Another system's seal answers an issuer as an unknown one does (its public face is `/status`,
    `/esl` and `/image`)."""
    row = context.seals.get(seal_id)
    if not _visible(who, row):
        raise SealNotFound(f"no seal {seal_id!r}")
    return _info(row, context)


@router.get("/{seal_id}/esl")
def seal_der(seal_id: str, context: Ctx) -> Response:
    row = context.seals.get(seal_id)
    return Response(
        row.esl_der,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{row.id}.esl"'},
    )


@router.get("/{seal_id}/image")
def seal_image(seal_id: str, context: Ctx) -> Response:
    return Response(context.seals.get(seal_id).picture_png, media_type="image/png")


@router.get("/{seal_id}/status")
def seal_status(seal_id: str, context: Ctx) -> dict[str, object]:
    return context.seals.status(seal_id)


@router.post("/{seal_id}/suspend", response_model=SealInfo)
def suspend(seal_id: str, body: Transition, who: Officer, context: Ctx) -> SealInfo:
    return _info(context.seals.transition(seal_id, "suspended", body.reason, who.actor), context)


@router.post("/{seal_id}/resume", response_model=SealInfo)
def resume(seal_id: str, body: Transition, who: Officer, context: Ctx) -> SealInfo:
    return _info(context.seals.transition(seal_id, "active", body.reason, who.actor), context)


@router.post("/{seal_id}/revoke", response_model=SealInfo, responses={202: {"description": "pending approval"}})
def revoke(seal_id: str, body: Transition, who: Officer, context: Ctx) -> JSONResponse:
    """Revoking is an approved operation when the policy says so; suspending stays one officer's call."""
    return respond(submit(context, who, "seal.revoke", {"seal_id": seal_id, "reason": body.reason}))
