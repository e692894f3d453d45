"""`GET /v1/approvals`, `POST /v1/approvals/{id}/approve`, `…/reject`: M-of-N approvals (api/approvals.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from api.operations import execute

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
Ctx = Annotated[Context, Depends(get_context)]
Reader = Annotated[Principal, Depends(require("officer", "auditor", "admin"))]
# Only officers approve; an admin reaches the service's own refusal (`approval_role`: admins do not
# approve) and may withdraw a request of its own; every other role is refused here like any write.
Decider = Annotated[Principal, Depends(require("officer", "admin"))]
Status = Literal["pending", "executing", "executed", "rejected", "expired", "failed"]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=256)


@router.get("")
def list_approvals(
    who: Reader,
    context: Ctx,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"approvals": context.approvals.find(status, limit)}


@router.get("/{approval_id}")
def get_approval(approval_id: str, who: Reader, context: Ctx) -> dict[str, Any]:
    return {"approval": context.approvals.get(approval_id)}


@router.post("/{approval_id}/approve")
def approve(approval_id: str, who: Decider, context: Ctx) -> dict[str, Any]:
    """Each approve answers the approval; the one that completes it runs the operation and answers its
    `result` too (the same as the operation's direct answer)."""
    approval, result = context.approvals.approve(approval_id, who, execute(context))
    return {"approval": approval} if result is None else {"approval": approval, "result": result}


@router.post("/{approval_id}/reject")
def reject(approval_id: str, who: Decider, context: Ctx, body: Decision | None = None) -> dict[str, Any]:
    return {"approval": context.approvals.reject(approval_id, who, body.reason if body else None)}
