"""The FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import problems
from api.context import Context, open_context
from api.routes import cas, certificates, ocsp

log = logging.getLogger("trustseal")


class BodyLimit:
    """Refuse bodies over the limit before reading them (Content-Length) and while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = problems.problem_response(413, "payload_too_large", f"request body over {self.limit} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, object]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise problems.Problem(413, "payload_too_large", f"request body over {self.limit} bytes")
            return dict(message)

        await self.app(scope, limited, send)


async def _refresh_crls(context: Context, every: float) -> None:
    """CRLs on schedule: each CA's CRL is re-issued once past half its validity."""
    while True:
        await asyncio.sleep(every)
        for ca in await asyncio.to_thread(context.ca.list_cas):
            try:
                await asyncio.to_thread(context.ca.current_crl, ca.name)
            except Exception:  # keep the scheduler alive; the next round retries
                log.exception("scheduled CRL refresh failed for %s", ca.name)


def create_app(context: Context | None = None) -> FastAPI:
    context = context or open_context()
    ctx = context

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        every = ctx.settings.crl_refresh_seconds
        task = asyncio.create_task(_refresh_crls(ctx, every)) if every > 0 else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        title="trustseal",
        version="0.1.0",
        description="SM2 CA, electronic seals, verification, ledger",
        lifespan=lifespan,
    )
    app.state.context = context
    problems.install(app)
    app.include_router(certificates.router)
    app.include_router(cas.router)
    app.include_router(ocsp.router)

    @app.get("/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    app.add_middleware(BodyLimit, limit=context.settings.max_upload_bytes)
    return app
