"""Public CA material (the CA list, CA certificates, CRLs); creating, cross-certifying and withdrawing a
CA (officer / admin; approved operations when the approvals policy says so: api/operations.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from api.operations import respond, submit
from api.routes.certificates import to_pem
from store.models import CertificateAuthority

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
    crl_url: str  # the current key's CRL
    crls: list[str] = []  # every live CRL scope's URL: the current key's, its partitions, earlier keys' (ca/crl.py)
    offline: bool = False  # its key is in a ceremony home: what it signs waits for a ceremony (ca/ceremony.py)


class CADetail(CAInfo):
    certificate_pem: str  # the CA's current certificate (after a rollover: its newest key's)


def _info(context: Context, ca: CertificateAuthority, crl_urls: dict[str, list[str]]) -> dict[str, Any]:
    """A CA row as listed: `serial` and `certificate_url` are its current key's (the plain certificate URL
    serves the first key's certificate, the issuer of what carries it: `ca_certificate` below); `crls`
    every live CRL scope's URL (`crl_urls`: ca/authority.py `live_crl_urls`)."""
    return {
        "name": ca.name,
        "parent": ca.parent,
        "algorithm": ca.algorithm,
        "region_code": ca.region_code,
        "region_name": ca.region_name,
        "serial": ca.certificate_serial,
        "status": ca.status,
        "certificate_url": context.ca.issuer_url(ca.name, ca.crl_scope or ""),
        "crl_url": context.ca.crl_url(ca.name, ca.crl_scope or ""),
        "crls": crl_urls.get(ca.name) or [context.ca.crl_url(ca.name, ca.crl_scope or "")],
        "offline": bool(ca.offline),
    }


@router.get("", response_model=list[CAInfo])
def list_cas(context: Ctx) -> list[CAInfo]:
    urls = context.ca.live_crl_urls()
    return [CAInfo(**_info(context, ca, urls)) for ca in context.ca.list_cas()]


@router.get("/{ca}", response_model=CADetail)
def get_ca(ca: str, context: Ctx) -> CADetail:
    """One CA as `GET /v1/cas` lists it, with its current certificate; 404 `unknown_ca`."""
    from ca.errors import UnknownCA, shown

    found = next((row for row in context.ca.list_cas() if row.name == ca), None)
    if found is None:
        raise UnknownCA(f"no CA named {shown(ca)}")
    urls = context.ca.live_crl_urls()
    return CADetail(**_info(context, found, urls), certificate_pem=to_pem(found.certificate_der))


@router.get("/{ca}/certificate")
def ca_certificate(ca: str, request: Request, context: Ctx) -> Response:
    """The caIssuers URL of the CA's first key: that key's certificate (the issuer of what carries this URL)
    while it is valid, even after a rollover; later keys are at `/certificate/k<version>`, and the CA's
    current certificate is in `GET /v1/cas/{ca}` (`certificate_pem`)."""
    der = context.ca.first_key_certificate(ca)
    if "pem" in request.headers.get("accept", "") or request.query_params.get("format") == "pem":
        return Response(to_pem(der), media_type="application/x-pem-file")
    return Response(der, media_type="application/pkix-cert")


@router.get("/{ca}/certificate/{scope}")
def key_certificate(ca: str, scope: str, request: Request, context: Ctx) -> Response:
    """One CA key's certificate after a rollover (the caIssuers URL certificates under that key carry)."""
    der = context.ca.key_certificate(ca, scope)
    if "pem" in request.headers.get("accept", "") or request.query_params.get("format") == "pem":
        return Response(to_pem(der), media_type="application/x-pem-file")
    return Response(der, media_type="application/pkix-cert")


@router.get("/{ca}/crl")
def crl(ca: str, context: Ctx) -> Response:
    """The CRL of the CA's first key: the URL every certificate it issued before any rollover carries."""
    return Response(
        context.ca.current_crl(ca), media_type="application/pkix-crl", headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/{ca}/crl/{scope}")
def scoped_crl(ca: str, scope: str, context: Ctx) -> Response:
    """The CRL of one CA key after a rollover (`k<version>`) or of a partition (`p3`, `k2-p1`: ca/crl.py);
    404 `unknown_crl_scope` otherwise."""
    return Response(
        context.ca.current_crl(ca, scope),
        media_type="application/pkix-crl",
        headers={"Cache-Control": "public, max-age=300"},
    )


class CACreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63)
    parent: str = Field(max_length=64)
    region: str = Field(max_length=6)
    algorithm: Literal["sm2", "p256"] = "sm2"
    region_name: str | None = Field(default=None, max_length=64)
    organization: str = Field(default="trustseal", min_length=1, max_length=64)
    common_name: str | None = Field(default=None, max_length=64)
    # the region's DNS namespace: a critical nameConstraints extension (ca/name_constraints.py)
    permitted_dns: list[Annotated[str, Field(max_length=253)]] = Field(default_factory=list, max_length=20)


@router.post("", status_code=201, responses={202: {"description": "pending approval"}})
def create_ca(body: CACreate, who: Officer, context: Ctx) -> JSONResponse:
    """A CA under `parent` (the national issuing kind for region 100000, else regional), on the trust list at
    once; with `permitted_dns`, constrained to that DNS namespace (names outside it are neither issued nor
    accepted by relying parties)."""
    params = body.model_dump()
    params["common_name"] = body.common_name or f"{body.name} CA"
    return respond(submit(context, who, "ca.create", params), 201)


class CrossCertifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate_pem: str = Field(max_length=20_000)


@router.post("/{ca}/cross-certify", responses={202: {"description": "pending approval"}})
def cross_certify(ca: str, body: CrossCertifyRequest, who: Officer, context: Ctx) -> JSONResponse:
    """Certify another hierarchy's root under CA `ca` → `{serial, certificate_pem, chain_pem}`."""
    return respond(submit(context, who, "ca.cross_certify", {"ca": ca, "certificate_pem": body.certificate_pem}))


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=64)
    invalidity_date: datetime | None = None


class WithdrawResponse(BaseModel):
    ca: str
    status: str
    withdrawn_at: str
    revoked_serial: str | None
    trust_list_published: bool  # false: withdrawn, the list follows at the scheduler's next round


@router.post("/{ca}/withdraw", response_model=WithdrawResponse, responses={202: {"description": "pending approval"}})
def withdraw(ca: str, body: WithdrawRequest, who: Officer, context: Ctx) -> JSONResponse:
    """ca/withdrawal.py's withdraw_ca, at once or once approved."""
    moment = body.invalidity_date.isoformat() if body.invalidity_date else None
    return respond(submit(context, who, "ca.withdraw", {"ca": ca, "reason": body.reason, "invalidity_date": moment}))
