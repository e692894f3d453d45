"""POST /v1/sign: seal a PDF (issuer systems). The sealed PDF comes back; headers name its ledger entry
(`X-Trustseal-Event`: the index) and carry the ledger key's receipt for it (`X-Trustseal-Receipt`)."""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.context import Context
from api.deps import get_context, require
from api.problems import Problem
from signing.batch import BatchItem
from signing.licences import LicenceRequest
from signing.pdf import Placement
from signing.service import LEVELS, Caller
from signing.tsa import MAX_REQUEST_BYTES

router = APIRouter(prefix="/v1", tags=["sign"])
Ctx = Annotated[Context, Depends(get_context)]
Issuer = Annotated[Principal, Depends(require("issuer"))]
PDF_TYPES = {"application/pdf", "application/octet-stream", "application/x-pdf", ""}


@router.post("/sign")
def sign(
    who: Issuer,
    context: Ctx,
    file: Annotated[UploadFile, File()],
    seal_id: Annotated[str, Form(max_length=64)],
    page: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    x_mm: Annotated[float | None, Form(ge=0, le=5000)] = None,
    y_mm: Annotated[float | None, Form(ge=0, le=5000)] = None,
    size_mm: Annotated[float, Form(gt=5, le=200)] = 42.0,
    keyword: Annotated[str | None, Form(max_length=200)] = None,
    level: Annotated[str, Form(max_length=8)] = "B-T",
    licence: Annotated[str | None, Form(max_length=65536)] = None,
    certify: Annotated[bool, Form()] = False,
    allow_active_content: Annotated[bool, Form()] = False,
) -> Response:
    if (file.content_type or "").split(";")[0].strip().lower() not in PDF_TYPES:
        raise Problem(415, "unsupported_media_type", f"send a PDF, not {file.content_type}")
    if level not in LEVELS:
        raise Problem(400, "invalid_level", f"level must be one of {', '.join(LEVELS)}")
    licence_request = None
    if licence is not None:
        try:
            licence_request = LicenceRequest.from_json(json.loads(licence))
        except json.JSONDecodeError:
            raise Problem(400, "invalid_licence", "licence must be JSON") from None
    if (x_mm is None) != (y_mm is None):
        raise Problem(400, "placement_invalid", "give both x_mm and y_mm, or neither")
    if keyword is not None and x_mm is not None:
        raise Problem(400, "placement_invalid", "give a keyword or coordinates, not both")
    data = file.file.read()
    sealed = context.signing.seal_pdf(
        data,
        seal_id=seal_id,
        caller=Caller(role=who.role, name=who.name, seal_ids=who.seal_ids),
        placement=Placement(page=page, x_mm=x_mm, y_mm=y_mm, size_mm=size_mm, keyword=keyword),
        level=level,
        certify=certify,
        allow_active_content=allow_active_content,
        licence=licence_request,
    )
    sequenced = context.ledger.wait_for(sealed.event_id)
    headers = {
        "X-Trustseal-Event": str(sequenced.index),
        "X-Trustseal-Receipt": base64.b64encode(context.ledger.receipt(sequenced)).decode("ascii"),
        "X-Trustseal-Seal": sealed.seal_id,
        "X-Trustseal-Certificate": sealed.certificate_serial,
        "Content-Disposition": 'attachment; filename="sealed.pdf"',
    }
    if sealed.licence_id:
        headers["X-Trustseal-Licence-Id"] = sealed.licence_id
    return Response(sealed.pdf, media_type="application/pdf", headers=headers)


MAX_BATCH = 500


@router.post("/sign/jobs", status_code=202)
def sign_batch(
    who: Issuer,
    context: Ctx,
    files: Annotated[list[UploadFile], File()],
    seal_id: Annotated[str, Form(max_length=64)],
    page: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    x_mm: Annotated[float | None, Form(ge=0, le=5000)] = None,
    y_mm: Annotated[float | None, Form(ge=0, le=5000)] = None,
    size_mm: Annotated[float, Form(gt=5, le=200)] = 42.0,
    keyword: Annotated[str | None, Form(max_length=200)] = None,
    level: Annotated[str, Form(max_length=8)] = "B-T",
    licences: Annotated[str | None, Form(max_length=10_000_000)] = None,
) -> dict[str, object]:
    """Seal many PDFs as one job: 202 with the job's manifest; poll GET /v1/sign/jobs/{id}."""
    if not files or len(files) > MAX_BATCH:
        raise Problem(400, "invalid_request", f"send 1 to {MAX_BATCH} files")
    if level not in LEVELS:
        raise Problem(400, "invalid_level", f"level must be one of {', '.join(LEVELS)}")
    if (x_mm is None) != (y_mm is None):
        raise Problem(400, "placement_invalid", "give both x_mm and y_mm, or neither")
    per_file: list[LicenceRequest | None] = [None] * len(files)
    if licences is not None:
        try:
            raw = json.loads(licences)
        except json.JSONDecodeError:
            raise Problem(400, "invalid_licence", "licences must be a JSON array (null for no licence)") from None
        if not isinstance(raw, list) or len(raw) != len(files):
            raise Problem(400, "invalid_licence", "licences: one entry (or null) per file")
        per_file = [None if entry is None else LicenceRequest.from_json(entry) for entry in raw]
    items = []
    for upload, licence in zip(files, per_file, strict=True):
        if (upload.content_type or "").split(";")[0].strip().lower() not in PDF_TYPES:
            raise Problem(415, "unsupported_media_type", f"{upload.filename}: send PDFs")
        items.append(BatchItem(name=upload.filename or "document.pdf", data=upload.file.read(), licence=licence))
    return context.jobs.submit(
        items,
        seal_id=seal_id,
        caller=Caller(role=who.role, name=who.name, seal_ids=who.seal_ids),
        placement=Placement(page=page, x_mm=x_mm, y_mm=y_mm, size_mm=size_mm, keyword=keyword),
        level=level,
    )


@router.get("/sign/jobs/{job_id}")
def batch_status(job_id: str, who: Issuer, context: Ctx) -> dict[str, object]:
    return context.jobs.status(job_id, f"{who.role}:{who.name}")


@router.get("/sign/jobs/{job_id}/files/{index}")
def batch_file(job_id: str, index: int, who: Issuer, context: Ctx) -> Response:
    pdf = context.jobs.result(job_id, index, f"{who.role}:{who.name}")
    return Response(pdf, media_type="application/pdf")


@router.post("/tsa")
async def timestamp(request: Request, context: Ctx) -> Response:
    """RFC 3161 over HTTP (application/timestamp-query → application/timestamp-reply). SM3 imprints are
    stamped by the SM2 unit, others by the P-256 unit; `?family=` chooses explicitly."""
    context.rate_limiter.check(request.client.host if request.client else "unknown")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise Problem(413, "payload_too_large", "timestamp requests are at most 16 KiB")
    family = request.query_params.get("family")
    if family not in (None, "sm2", "p256"):
        raise Problem(400, "invalid_request", "family is sm2 or p256")
    reply = await run_in_threadpool(context.signing.tsa.respond, bytes(body), family)
    return Response(reply, media_type="application/timestamp-reply")
