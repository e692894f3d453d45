"""One error taxonomy → RFC 9457 problem+json, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ca.ceremony import CeremonyRequired
from ca.errors import CAError
from keys.custody import CustodyError, KeyDisabled, KeyExists, KeyNotFound
from ledger.errors import LedgerError
from seal.errors import SealError
from signing.errors import SigningError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("trustseal.api")


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:trustseal:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


_CUSTODY_STATUS = {KeyNotFound: 404, KeyExists: 409, KeyDisabled: 409}


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        response = problem_response(exc.status, exc.code, exc.detail, **exc.extra)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(max(1, round(float(exc.extra["retry_after"]))))
        return response

    @app.exception_handler(SealError)
    async def _seal(_: Request, exc: SealError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(SigningError)
    async def _signing(_: Request, exc: SigningError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, **exc.extra)

    @app.exception_handler(CeremonyRequired)
    async def _ceremony(_: Request, exc: CeremonyRequired) -> JSONResponse:
        # Not a problem: the operation waits for the offline CA's ceremony (ca/ceremony.py)
        location = {"Location": f"/v1/ceremonies/{exc.request['id']}"}
        return JSONResponse(exc.as_json(), status_code=202, headers=location)

    @app.exception_handler(CAError)
    async def _ca(_: Request, exc: CAError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        return problem_response(400, exc.code, str(exc))

    @app.exception_handler(CustodyError)
    async def _custody(_: Request, exc: CustodyError) -> JSONResponse:
        status = next((s for t, s in _CUSTODY_STATUS.items() if isinstance(exc, t)), 503)
        return problem_response(status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return problem_response(400, "invalid_request", "the request does not match the API schema", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return problem_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never echo internals (they might name key material or paths); the log has the trace.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "internal_error", "internal error; see the service log")
