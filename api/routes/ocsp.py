"""RFC 6960 responder over HTTP (Appendix A): POST with a DER body, GET with base64 in the path.

Whatever this endpoint says is an OCSPResponse (application/ocsp-response, HTTP 200), refusals included:
a request it cannot read is `malformedRequest`, a client over its budget `tryLater` (with Retry-After),
both unsigned (RFC 6960 §2.3). OCSP clients understand only that: OpenSSL's treats any HTTP status but
200 as a transport failure and never reads a body, let alone a problem document.

Signing runs in the thread pool, whatever the deployment (unlike issuance, see
`Context.issuance_on_event_loop`): the endpoint is anonymous, and on the event loop a few clients asking
in a loop stalled every other request.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.context import Context
from api.deps import get_context
from ca.errors import OCSPMalformed
from ca.ocsp import MAX_REQUEST_BYTES, status_response

router = APIRouter(prefix="/v1/ocsp", tags=["ocsp"])
Ctx = Annotated[Context, Depends(get_context)]
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
_URL_SAFE = str.maketrans("-_", "+/")


def _unsuccessful(status: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status_response(status), media_type=OCSP_RESPONSE,
                    headers={"Cache-Control": "no-store", **(headers or {})})  # fmt: skip


def _over_budget(request: Request, context: Context) -> Response | None:
    wait = context.ocsp_rate_limiter.wait(request.client.host if request.client else "unknown")
    if wait is None:
        return None
    return _unsuccessful("try_later", {"Retry-After": str(max(1, math.ceil(wait)))})


async def _answer(context: Context, der: bytes, cache_control: str) -> Response:
    try:
        answer = await run_in_threadpool(context.ca.ocsp, der)
    except OCSPMalformed:
        return _unsuccessful("malformed_request")
    return Response(answer, media_type=OCSP_RESPONSE, headers={"Cache-Control": cache_control})


def request_from_path(encoded: str) -> bytes | None:
    """The DER of a GET request: base64, standard or URL-safe, padded or not, percent-encoded or not
    (the router has already decoded the path once). None when it is none of these."""
    text = unquote(encoded).translate(_URL_SAFE)
    if not text or len(text) > MAX_REQUEST_BYTES * 2 or len(text.rstrip("=")) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


@router.post("")
async def ocsp_post(request: Request, context: Ctx) -> Response:
    if (refused := _over_budget(request, context)) is not None:
        return refused
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() != OCSP_REQUEST:
        return _unsuccessful("malformed_request")  # Appendix A.1: the body is application/ocsp-request
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            return _unsuccessful("malformed_request")
    return await _answer(context, bytes(body), "no-store")


@router.get("/{encoded:path}")
async def ocsp_get(encoded: str, request: Request, context: Ctx) -> Response:
    if (refused := _over_budget(request, context)) is not None:
        return refused
    der = request_from_path(encoded)
    if der is None:
        return _unsuccessful("malformed_request")
    return await _answer(context, der, "max-age=60")
