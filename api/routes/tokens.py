"""API tokens: create, list and read (admin); rotate and revoke (an admin, or the holder for its own).

`{ref}` is a token's id, the name of a live token, or `me` (the caller's own token). Creating an officer
or admin token is an approved operation. So an admin never obtains the secret of an officer or admin
token without approval, an admin rotates issuer, verifier and auditor tokens only: officer and admin
tokens are rotated by their holder (no approval: it adds no privilege, and the old secret dies with
it) or revoked and created again (approved).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import (
    MAX_DAYS,
    Principal,
    TokenInfo,
    get_token,
    list_tokens,
    new_token,
    revoke_token,
    rotate_token,
)
from api.context import Context
from api.deps import get_context, principal, require
from api.operations import submit
from api.problems import Problem

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
Ctx = Annotated[Context, Depends(get_context)]
Admin = Annotated[Principal, Depends(require("admin"))]
Anyone = Annotated[Principal, Depends(principal)]
ADMIN_ROTATES = ("issuer", "verifier", "auditor")  # an admin could create these without approval
SELF = "me"


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["issuer", "verifier", "officer", "auditor", "admin"]
    name: str = Field(min_length=1, max_length=128)
    seal_ids: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    expires_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class TokenRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


@router.post("", status_code=201)
def create(body: TokenCreate, who: Admin, context: Ctx) -> JSONResponse:
    """The token is made now and answered to the caller only (201 with `result` fields, or 202 beside the
    pending approval); it works once stored, which for officer and admin tokens is when the approval
    completes. No approval row, result or event holds it. A bad or taken name, a role given seals or an
    unknown seal is refused before any approval is opened."""
    token, token_hash = new_token()
    params: dict[str, Any] = {
        "role": body.role,
        "name": body.name,
        "seal_ids": body.seal_ids,
        "token_sha256": token_hash,
    }
    if body.expires_days is not None:
        params["expires_days"] = body.expires_days
    done = submit(context, who, f"token.create.{body.role}", params)
    if done.approval is not None:
        location = {"Location": f"/v1/approvals/{done.approval['id']}"}
        return JSONResponse({"approval": done.approval, "token": token}, status_code=202, headers=location)
    assert done.result is not None
    return JSONResponse({**done.result, "token": token}, status_code=201)


@router.get("")
def list_all(
    who: Admin, context: Ctx, status: Literal["active", "expired", "revoked"] | None = None
) -> list[dict[str, Any]]:
    """Every token (never a secret or hash), oldest first; `status` filters."""
    return [t.as_json() for t in list_tokens(context.db, status)]


@router.get("/me")
def me(who: Anyone, context: Ctx) -> dict[str, Any]:
    """The caller's own token."""
    assert who.token_id is not None
    return get_token(context.db, who.token_id).as_json()


@router.get("/{ref}")
def read(ref: str, who: Admin, context: Ctx) -> dict[str, Any]:
    return get_token(context.db, ref).as_json()


def _own(who: Principal, ref: str) -> bool:
    return ref in (SELF, who.name, str(who.token_id))


def _target(who: Principal, ref: str, context: Context) -> TokenInfo:
    """The token `ref` names, if the caller may act on it: its own, or any as an admin. Anyone else is
    refused before the lookup, so it learns nothing about other tokens."""
    if _own(who, ref):
        assert who.token_id is not None
        return get_token(context.db, who.token_id)
    if who.role != "admin":
        raise Problem(403, "forbidden_role", f"role {who.role} may act on its own token only (`me`)")
    return get_token(context.db, ref)


@router.post("/{ref}/revoke")
def revoke(ref: str, who: Anyone, context: Ctx) -> dict[str, Any]:
    """Revoke at once (other processes within seconds); `token.revoked`. Its name is free again."""
    target = _target(who, ref, context)
    return revoke_token(context.db, target.id, who.actor).as_json()


@router.post("/{ref}/rotate")
def rotate(ref: str, who: Anyone, context: Ctx, body: TokenRotate | None = None) -> dict[str, Any]:
    """A new secret with the same name, role and seals, and a fresh expiry; the old token is revoked in
    the same transaction. Answers the new token's record with `token` (shown once) and `rotated_from`."""
    target = _target(who, ref, context)
    if target.id != who.token_id and target.role not in ADMIN_ROTATES:
        raise Problem(
            403,
            "rotation_needs_holder",
            f"a {target.role} token is rotated by its holder; an admin revokes it and creates a new one (approved)",
        )
    days = body.expires_days if body is not None else None
    token, fresh = rotate_token(context.db, target.id, who.actor, days=days, expected_role=target.role)
    return {**fresh.as_json(), "token": token, "rotated_from": target.id}
