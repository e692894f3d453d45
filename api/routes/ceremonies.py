"""Ceremony requests of an offline root (ca/ceremony.py): `GET /v1/ceremonies` and `GET /v1/ceremonies/{id}`
(officer / auditor / admin: the request document, TBS included, that the offline machine signs), and
`POST /v1/ceremonies/{id}/import` (officer: the ceremony's output; completes the waiting operation),
`POST /v1/ceremonies/{id}/cancel` (officer: withdraws a pending request, `ceremony.cancelled`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from ca import ceremony
from ca.ceremony_import import import_output

router = APIRouter(prefix="/v1/ceremonies", tags=["ceremonies"])
Ctx = Annotated[Context, Depends(get_context)]
Reader = Annotated[Principal, Depends(require("officer", "auditor", "admin"))]
Officer = Annotated[Principal, Depends(require("officer"))]


@router.get("")
def list_ceremonies(
    _: Reader, context: Ctx, status: Literal["pending", "completed", "superseded", "cancelled"] | None = None
) -> dict[str, list[dict[str, Any]]]:
    return {"ceremonies": ceremony.list_requests(context.db, status)}


@router.get("/{request_id}")
def get_ceremony(request_id: str, _: Reader, context: Ctx) -> dict[str, Any]:
    """The request document (`trustseal-ceremony-request/v1`, with the TBS) to carry to the offline machine."""
    return ceremony.get_request(context.db, request_id, with_tbs=True)


@router.post("/{request_id}/import")
def import_ceremony(
    request_id: str, who: Officer, context: Ctx, output: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """The output `trustseal ca ceremony sign` wrote → the completed request (its `result`)."""
    done = import_output(
        context.ca, output, who.actor, expected_id=request_id, publisher=context.verification.publisher
    )
    return {"ceremony": done}


class CancelBody(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post("/{request_id}/cancel")
def cancel_ceremony(
    request_id: str, who: Officer, context: Ctx, body: Annotated[CancelBody | None, Body()] = None
) -> dict[str, Any]:
    """A pending request, cancelled: its output is refused from then on; a `ca.create` releases the name, a
    trust-list signer rotation disables its provisional key version."""
    reason = body.reason if body is not None else None
    done = ceremony.cancel_request(context.db, context.custody, request_id, who.actor, reason)
    context.ca.invalidate()
    return {"ceremony": done}
