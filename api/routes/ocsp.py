"""RFC 6960 responder over HTTP (Appendix A): POST with a DER body, GET with base64 in the path.

Whatever this endpoint says is an OCSPResponse (application/ocsp-response, HTTP 200), refusals included:
a request it cannot read is `malformedRequest`, a client over its budget `tryLater` (with Retry-After),
both unsigned (RFC 6960 §2.3). OCSP clients understand only that: OpenSSL's treats any HTTP status but
200 as a transport failure and never reads a body, let alone a problem document.

Caching (RFC 5019 §6): a GET answered from a stored pre-signed response (ca/ocsp.py) carries
`Cache-Control: public, max-age` no longer than nextUpdate − now, `ETag`, `Last-Modified` (thisUpdate) and
`Expires` (nextUpdate), and a matching `If-None-Match` gets 304. Every other answer is `no-store`: a live one
was signed for that request (a nonce, several certificates, an unknown serial), a refusal is not an answer,
and POST responses are not cached by HTTP caches anyway (RFC 5019 §5).

Answering (reading the stored response, or signing) runs in the thread pool, whatever the deployment
(unlike issuance, see `Context.issuance_on_event_loop`): the endpoint is anonymous, and on the event loop
a few clients asking in a loop stalled every other request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.context import Context
from ca.errors import OCSPMalformed
from ca.ocsp import MAX_REQUEST_BYTES, status_response

router = APIRouter(prefix="/v1/ocsp", tags=["ocsp"])
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
_URL_SAFE = str.maketrans("-_", "+/")


def _context(request: Request) -> Context:
    """The context without a FastAPI dependency (api/deps.py `get_context`): solving one costs about as
    much as answering from a stored response."""
    context: Context = request.app.state.context
    return context


def _unsuccessful(status: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status_response(status), media_type=OCSP_RESPONSE,
                    headers={"Cache-Control": "no-store", **(headers or {})})  # fmt: skip


def _over_budget(request: Request, context: Context) -> Response | None:
    wait = context.ocsp_rate_limiter.wait(request.client.host if request.client else "unknown")
    if wait is None:
        return None
    return _unsuccessful("try_later", {"Retry-After": str(max(1, math.ceil(wait)))})


MAX_CACHE_SECONDS = 300  # as GET /v1/cas/{ca}/crl (api/routes/cas.py)


async def _answer(context: Context, der: bytes, request: Request | None = None) -> Response:
    """`request`: the GET being answered (its answer may be cached); None for POST."""
    try:
        # a request seen before, answered from its stored response here; anything that may parse, sign or
        # write (a first request, a nonce, a stale answer) goes to a worker thread
        answer = context.ca.ocsp_responder.stored_answer(der)
        if answer is None:
            answer = await run_in_threadpool(context.ca.ocsp_answer, der)
    except (OCSPMalformed, ValueError, TypeError, KeyError):  # a part of the request parsed lazily, found bad
        return _unsuccessful("malformed_request")
    if request is None or answer.this_update is None or answer.next_update is None:
        return Response(answer.der, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-store"})
    headers = caching_headers(answer.der, answer.this_update, answer.next_update, datetime.now(UTC))
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(answer.der, media_type=OCSP_RESPONSE, headers=headers)


def caching_headers(der: bytes, this_update: datetime, next_update: datetime, now: datetime) -> dict[str, str]:
    """RFC 5019 §6.2 headers of a pre-signed response: cacheable until its nextUpdate, never beyond, and
    never longer than MAX_CACHE_SECONDS — an intermediary holding a `good` answer keeps serving it after a
    revocation (nothing purges caches), so the window is kept to what a CRL's max-age allows."""
    max_age = max(0, min(MAX_CACHE_SECONDS, math.floor((next_update - now).total_seconds())))
    return {
        "Cache-Control": f"public, max-age={max_age}, no-transform, must-revalidate",
        "ETag": f'"{hashlib.sha256(der).hexdigest()[:32]}"',
        "Last-Modified": format_datetime(this_update, usegmt=True),
        "Expires": format_datetime(next_update, usegmt=True),
    }


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
async def ocsp_post(request: Request) -> Response:
    context = _context(request)
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
    return await _answer(context, bytes(body))


_ENCODED = {"name": "encoded", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "the DER OCSPRequest in base64, standard or URL-safe, padded or not"}  # fmt: skip


@router.get("/{encoded:path}", openapi_extra={"parameters": [_ENCODED]})
async def ocsp_get(request: Request) -> Response:
    context = _context(request)
    if (refused := _over_budget(request, context)) is not None:
        return refused
    der = request_from_path(request.path_params["encoded"])  # as routed; no parameter validation to pay for
    if der is None:
        return _unsuccessful("malformed_request")
    return await _answer(context, der, request)
