"""Public CA material: the CA list, CA certificates, CRLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.context import Context
from api.deps import get_context
from api.routes.certificates import to_pem

router = APIRouter(prefix="/v1/cas", tags=["cas"])
Ctx = Annotated[Context, Depends(get_context)]


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
