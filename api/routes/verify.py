"""Public verification: POST /v1/verify (JSON report, or HTML for Accept: text/html) and the trust list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.context import Context
from api.deps import get_context, principal_in_thread
from api.problems import Problem
from verify.html import render

router = APIRouter(prefix="/v1", tags=["verify"])
Ctx = Annotated[Context, Depends(get_context)]
AT_ROLES = ("verifier", "officer", "auditor", "admin")


@router.get("/trust-list")
def trust_list(context: Ctx) -> JSONResponse:
    return JSONResponse(context.verification.trust_list(), headers={"Cache-Control": "public, max-age=300"})


@router.post("/verify", response_model=None)
def verify(
    request: Request,
    context: Ctx,
    file: Annotated[UploadFile, File()],
    content: Annotated[UploadFile | None, File()] = None,
    at: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    context.rate_limiter.check(request.client.host if request.client else "unknown")
    moment = None
    if at is not None:  # validating as of a past time is a question for those who audit, not the public
        principal_in_thread(request, *AT_ROLES)
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise Problem(400, "invalid_request", "at is an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise Problem(400, "invalid_request", "at needs a time zone")
    data = file.file.read()
    if not data:
        raise Problem(400, "invalid_request", "the file is empty")
    detached = content.file.read() if content is not None else None
    report = context.verification.verifier().verify(data, content=detached, at=moment)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(render(report, file.filename or ""))
    return JSONResponse(report.as_json())
