"""The keys inventory and key rotation (api/keys.py): `GET /v1/keys` (officer / auditor / admin),
`POST /v1/keys/{key}/rotate` (officer). Rotating a CA, ledger or trust-list key, and a seal re-key that
revokes the old holder certificate, is the approved operation `key.rotate`: 202 with a pending approval
when the policy asks for more than one officer. Plain seal re-keys, seal-maker, TSA and OCSP-signer
rotations are an officer's alone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import keys
from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from api.operations import respond, submit

router = APIRouter(prefix="/v1/keys", tags=["keys"])
Ctx = Annotated[Context, Depends(get_context)]
Reader = Annotated[Principal, Depends(require("officer", "auditor", "admin"))]
Officer = Annotated[Principal, Depends(require("officer"))]


@router.get("")
def list_keys(_: Reader, context: Ctx) -> list[dict[str, Any]]:
    """Every custody key: versions, algorithm, age, the certificate in use and its expiry, what uses it."""
    return keys.inventory(context)


class RotateRequest(BaseModel):
    """Optional, for a seal holder's re-key: revoke the old holder certificate (a compromised key)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=64)  # RFC 5280 names, as the revoke endpoints take
    invalidity_date: datetime | None = None


@router.post("/{key}/rotate", responses={202: {"description": "pending approval"}})
def rotate_key(key: str, who: Officer, context: Ctx, body: RotateRequest | None = None) -> JSONResponse:
    """→ `{"key", "version", "certificate_pem", "previous_version"}` (DESIGN.md), plus `revoked_serial`
    when a seal re-key revoked the old holder certificate."""
    params: dict[str, Any] = {"key": key}
    if body is not None and body.reason:  # "" (an empty form field) is no reason
        params["reason"] = body.reason
    if body is not None and body.invalidity_date is not None:
        params["invalidity_date"] = body.invalidity_date.isoformat()
    if keys.needs_approval(keys.kind(context, key), params):
        return respond(submit(context, who, "key.rotate", params))
    return JSONResponse(keys.rotate(context, params, who.actor))
