"""`POST /v1/witness/add-checkpoint`: this instance as a witness of other regions' logs (ledger/witness.py).

Public, as C2SP witnesses are: a submission is only as good as the log signature on its checkpoint.
Rate-limited per client like the other public POSTs (its own budget, so a busy log's once-a-second
submissions fit) and size-limited well below the upload limit: a proof has at most 63 hashes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request

from api.context import Context
from api.deps import get_context
from api.problems import Problem
from ledger.errors import WitnessError

router = APIRouter(prefix="/v1/witness", tags=["witness"])
Ctx = Annotated[Context, Depends(get_context)]
MAX_BODY = 64 * 1024


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise Problem(413, "payload_too_large", f"a checkpoint submission has at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > MAX_BODY:
            raise Problem(413, "payload_too_large", f"a checkpoint submission has at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/add-checkpoint")
async def add_checkpoint(request: Request, context: Ctx) -> dict[str, Any]:
    context.witness_rate_limiter.check(request.client.host if request.client else "unknown")
    data = await _body(request)
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # invalid UTF-8 or JSON, an integer of over 4,300 digits, deep nesting
        raise Problem(400, "witness_request_malformed", "the body is not JSON") from None
    try:
        cosignature = await anyio.to_thread.run_sync(context.witness.add_checkpoint, body)
    except WitnessError as exc:
        raise Problem(exc.status, exc.code, str(exc), **exc.extra) from None
    return {"cosignature": cosignature.to_json()}
