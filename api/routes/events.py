"""`GET /v1/events`: officers', auditors' and admins' search over the event log (ledger/search.py).

Newest first; `next_cursor` pages on, stable while events are appended. Every parameter is checked
(an unknown or repeated one too: a misspelt filter must not silently widen the search); bad input is a
400 problem with a code. A read: it never runs a sequencer pass nor writes anything.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from ledger import search

router = APIRouter(prefix="/v1/events", tags=["events"])
Ctx = Annotated[Context, Depends(get_context)]
Reader = Annotated[Principal, Depends(require("officer", "auditor", "admin"))]


@router.get("")
def events(request: Request, who: Reader, context: Ctx) -> dict[str, Any]:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    return search.search(context.db, search.parse_query(params))
