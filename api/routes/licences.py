"""The licence registry: public status for verifiers; details and status changes for the issuing system."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from signing.licences import STATUSES, LicenceNotPermitted
from store.models import Licence

router = APIRouter(prefix="/v1/licences", tags=["licences"])
Ctx = Annotated[Context, Depends(get_context)]
# No auditor: a licence names its holder; an auditor reads the log, where the holder is a keyed digest.
Reader = Annotated[Principal, Depends(require("issuer", "officer", "admin"))]
Changer = Annotated[Principal, Depends(require("issuer", "officer", "admin"))]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(pattern=r"^0[123]$")
    reason: str | None = Field(default=None, max_length=256)


def _public(row: Licence) -> dict[str, object]:
    return {
        "identifier": row.identifier,
        "status": row.status,
        "status_name": STATUSES[row.status],
        "reason": row.status_reason,
        "type_code": row.type_code,
        "type_name": row.type_name,
        "issuer_name": row.issuer_name,
        "issuer_uscc": row.issuer_uscc,
        "issue_date": row.issue_date,
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
        "seal_id": row.seal_id,
        "updated_at": row.updated_at.isoformat(),
    }


@router.get("/{identifier}/status")
def licence_status(identifier: str, context: Ctx) -> dict[str, object]:
    return _public(context.signing.licences.get(identifier))


@router.get("/{identifier}")
def licence(identifier: str, who: Reader, context: Ctx) -> dict[str, object]:
    row = context.signing.licences.get(identifier)
    if who.role == "issuer" and row.owner != who.name:
        raise LicenceNotPermitted("an issuing system reads its own licences only")
    return {
        **_public(row),
        "number": row.number,
        "holder": {"name": row.holder_name, "id": row.holder_id, "id_type": row.holder_id_type},
        "document_sm3": row.document_sm3,
    }


@router.post("/{identifier}/status")
def change_status(identifier: str, body: StatusChange, who: Changer, context: Ctx) -> dict[str, object]:
    row = context.signing.licences.set_status(identifier, body.status, body.reason, role=who.role, caller=who.name)
    return _public(row)
