"""RFC 6960 responder over HTTP: POST with a DER body, GET with base64 in the path (may hold '/')."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.context import Context
from api.deps import get_context
from ca.errors import OCSPMalformed
from ca.ocsp import MAX_REQUEST_BYTES

router = APIRouter(prefix="/v1/ocsp", tags=["ocsp"])
Ctx = Annotated[Context, Depends(get_context)]
OCSP_RESPONSE = "application/ocsp-response"


@router.post("")
async def ocsp_post(request: Request, context: Ctx) -> Response:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise OCSPMalformed("OCSP request larger than 16 KiB")
    return Response(context.ca.ocsp(bytes(body)), media_type=OCSP_RESPONSE)


@router.get("/{encoded:path}")
def ocsp_get(encoded: str, context: Ctx) -> Response:
    text = unquote(encoded)
    if len(text) > MAX_REQUEST_BYTES * 2:
        raise OCSPMalformed("OCSP request too large")
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise OCSPMalformed("GET OCSP request is not base64") from None
    return Response(context.ca.ocsp(der), media_type=OCSP_RESPONSE, headers={"Cache-Control": "max-age=60"})
