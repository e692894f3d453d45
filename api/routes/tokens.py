"""`POST /v1/tokens` (admin): a new API token. An officer or admin token is an approved operation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, new_token
from api.context import Context
from api.deps import get_context, require
from api.operations import submit

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
Ctx = Annotated[Context, Depends(get_context)]
Admin = Annotated[Principal, Depends(require("admin"))]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["issuer", "verifier", "officer", "auditor", "admin"]
    name: str = Field(min_length=1, max_length=128)
    seal_ids: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)


@router.post("", status_code=201)
def create(body: TokenCreate, who: Admin, context: Ctx) -> JSONResponse:
    """The token is made now and answered to the caller only (201 with `result` fields, or 202 beside the
    pending approval); it works once stored, which for officer and admin tokens is when the approval
    completes. No approval row, result or event holds it."""
    token, token_hash = new_token()
    params = {"role": body.role, "name": body.name, "seal_ids": body.seal_ids, "token_sha256": token_hash}
    done = submit(context, who, f"token.create.{body.role}", params)
    if done.approval is not None:
        location = {"Location": f"/v1/approvals/{done.approval['id']}"}
        return JSONResponse({"approval": done.approval, "token": token}, status_code=202, headers=location)
    assert done.result is not None
    return JSONResponse({**done.result, "token": token}, status_code=201)
