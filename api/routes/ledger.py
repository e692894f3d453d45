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
from api.problems import Problem
from api.routes.certificates import to_pem

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Ctx = Annotated[Context, Depends(get_context)]
Size = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/checkpoint")
def checkpoint(context: Ctx) -> dict[str, Any]:
    """A public read that writes nothing while the background integrator runs: its latest published
    checkpoint (it covers every committed event within one period plus a pass). Only without an
    integrator (`TRUSTSEAL_LEDGER_INTEGRATE_SECONDS=0`) is one made on demand, with a pass first."""
    integrator = context.integrator
    if integrator is not None and integrator.alive:
        published = context.ledger.published()
        if published is None:  # the app publishes one before serving; only a failing start lacks it
            raise Problem(503, "checkpoint_unavailable", "no checkpoint published yet; retry in a second")
        return context.cosignatures.attach(published).to_json()
    return context.cosignatures.attach(context.ledger.checkpoint()).to_json()


@router.get("/key")
def key(context: Ctx, key_id: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None) -> Response:
    """The current ledger key's certificate; with `key_id`, that ledger key's (an older one too: it
    checks receipts made before a rotation and the old key's signature in a handover checkpoint)."""
    if key_id is None:
        der = context.ledger.signer().certificate_der
    else:
        found = context.ledger_key.certificate_for(key_id)
        if found is None:
            raise Problem(404, "ledger_key_unknown", f"no ledger key has key_id {key_id}")
        der = found
    return Response(to_pem(der), media_type="application/x-pem-file")


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
