"""The ledger's public reads (DESIGN.md, "Ledger wire format"): checkpoint, key, entries, proofs.

No token, like CRLs. A range the log cannot answer is a 400 problem with the ledger's code
(`size_beyond_tree`, `proof_out_of_range`, `proof_inverted`, `range_invalid`, `page_too_large`, …)
and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.context import Context
from api.deps import get_context
from api.routes.certificates import to_pem

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Ctx = Annotated[Context, Depends(get_context)]
Size = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/checkpoint")
def checkpoint(context: Ctx) -> dict[str, Any]:
    return context.cosignatures.attach(context.ledger.checkpoint()).to_json()


@router.get("/key")
def key(context: Ctx) -> Response:
    return Response(to_pem(context.ledger.signer().certificate_der), media_type="application/x-pem-file")


@router.get("/entries")
def entries(context: Ctx, start: Size, end: Size) -> dict[str, Any]:
    return {"entries": context.ledger.entries(start, end)}


@router.get("/proofs/inclusion")
def inclusion(context: Ctx, index: Size, size: Size) -> dict[str, Any]:
    path = context.ledger.inclusion_proof(index, size)
    return {"index": index, "size": size, "path": [value.hex() for value in path]}


@router.get("/proofs/consistency")
def consistency(context: Ctx, first: Size, second: Size) -> dict[str, Any]:
    path = context.ledger.consistency_proof(first, second)
    return {"first": first, "second": second, "path": [value.hex() for value in path]}
