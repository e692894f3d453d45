"""Public CA material (the CA list, CA certificates, CRLs) and withdrawing a CA (officer / admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from api.routes.certificates import to_pem
from ca.withdrawal import withdraw_ca

router = APIRouter(prefix="/v1/cas", tags=["cas"])
Ctx = Annotated[Context, Depends(get_context)]
Officer = Annotated[Principal, Depends(require("officer", "admin"))]


class CAInfo(BaseModel):
    name: str
    parent: str | None
    algorithm: str
    region_code: str | None
    region_name: str | None
    serial: str
    status: str
    certificate_url: str
    crl_url: str


@router.get("", response_model=list[CAInfo])
def list_cas(context: Ctx) -> list[CAInfo]:
    return [
        CAInfo(
            name=ca.name,
            parent=ca.parent,
            algorithm=ca.algorithm,
            region_code=ca.region_code,
            region_name=ca.region_name,
            serial=ca.certificate_serial,
            status=ca.status,
            certificate_url=context.ca.issuer_url(ca.name),
            crl_url=context.ca.crl_url(ca.name),
        )
        for ca in context.ca.list_cas()
    ]


@router.get("/{ca}/certificate")
def ca_certificate(ca: str, request: Request, context: Ctx) -> Response:
    der = context.ca.ca_certificate(ca).dump()
    if "pem" in request.headers.get("accept", "") or request.query_params.get("format") == "pem":
        return Response(to_pem(der), media_type="application/x-pem-file")
    return Response(der, media_type="application/pkix-cert")


@router.get("/{ca}/crl")
def crl(ca: str, context: Ctx) -> Response:
    return Response(
        context.ca.current_crl(ca), media_type="application/pkix-crl", headers={"Cache-Control": "public, max-age=300"}
    )


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=64)
    invalidity_date: datetime | None = None


class WithdrawResponse(BaseModel):
    ca: str
    status: str
    withdrawn_at: str
    revoked_serial: str | None


@router.post("/{ca}/withdraw", response_model=WithdrawResponse)
def withdraw(ca: str, body: WithdrawRequest, who: Officer, context: Ctx) -> WithdrawResponse:
    done = withdraw_ca(
        context.ca,
        ca,
        reason=body.reason,
        invalidity_date=body.invalidity_date,
        actor=who.actor,
        publisher=context.verification.publisher,
    )
    return WithdrawResponse.model_validate(done.as_json())
