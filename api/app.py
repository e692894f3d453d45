"""The FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.context import Context, open_context
from api.routes import (
    approvals,
    cas,
    ceremonies,
    certificates,
    events,
    keys,
    ledger,
    licences,
    ocsp,
    seals,
    sign,
    tokens,
    verify,
    witness,
)
from ledger.cosigning import Collector
from ledger.integrator import Integrator

log = logging.getLogger("trustseal")


class _TooLarge(Exception):
    """Raised from `receive` once a streamed body passes the limit; turned into a 413 by BodyLimit."""


class BodyLimit:
    """Refuse bodies over the limit before reading them (Content-Length) and while streaming.

    Also sets the response headers every answer carries; a pure ASGI middleware (BaseHTTPMiddleware
    costs a task and a queue per request on the issuance hot path).
    """

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
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, limited, headers)
        except _TooLarge:
            if started:
                raise
            response = problems.problem_response(413, "payload_too_large", f"request body over {self.limit} bytes")
            await response(scope, receive, send)


async def _every(every: float, job: Callable[[], object], what: str) -> None:
    """Run `job` in a thread every `every` seconds until cancelled; a failed round is logged and the next
    one retries."""
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(job)
        except Exception:  # keep the scheduler alive; the next round retries
            log.exception("scheduled %s failed", what)


def refresh_due(context: Context) -> None:
    """One scheduler round: CRLs past half their validity, and for an offline CA whose OCSP signer
    certificate ends within 30 days an `ocsp.signer` ceremony request (ca/ocsp_renewal.py)."""
    from ca.ocsp_renewal import request_due

    context.ca.refresh_due_crls()
    request_due(context.ca)


async def _refresh_crls(context: Context, every: float) -> None:
    """CRLs on schedule: each CA's CRL is re-issued once past half its validity (reads never sign one)."""
    await _every(every, lambda: refresh_due(context), "CRL refresh")


async def _republish_trust_list(context: Context, every: float) -> None:
    """The trust list on schedule: published again whenever its CAs or seal makers differ from the newest
    list's (a withdrawal whose own publish failed: ca/withdrawal.py) or the newest is half expired."""
    await _every(every, lambda: context.verification.publisher.current(scheduled=True), "trust-list publish")


def sweep_approvals(context: Context) -> dict[str, str]:
    """Approvals a crash left `executing` past `approval_stuck_seconds`: resolved (api/operations.sweep)."""
    from api.operations import sweep

    resolved = sweep(context, timedelta(seconds=context.settings.approval_stuck_seconds))
    for approval_id, status in resolved.items():
        log.warning("approval %s was left executing by a stopped run: now %s", approval_id, status)
    return resolved


async def _sweep_approvals(context: Context, every: float) -> None:
    await _every(every, lambda: sweep_approvals(context), "approvals sweep")


def _sweep_at_start(context: Context) -> None:
    try:
        sweep_approvals(context)
    except Exception:
        log.exception("approvals left executing could not be swept at startup; the schedule retries")


async def _refresh_ocsp(context: Context, every: float) -> None:
    """Pre-signed OCSP responses on schedule (ca/ocsp.py `refresh_due`), the way CRLs are: each re-signed
    before half its validity has passed, so a stored answer is never served stale."""
    await _every(every, context.ca.refresh_due_ocsp, "OCSP response refresh")


async def _renew_ocsp_signers(context: Context, every: float) -> None:
    """OCSP signers on schedule: each CA key's (an earlier key's too, while its certificates live) renewed
    within 30 days of its expiry, so no responder goes silent before the certificates it answers for."""
    await _every(every, context.ca.renew_due_ocsp_signers, "OCSP signer renewal")


def _provision_ledger_key(context: Context) -> None:
    """The ledger key and its certificate before serving, not from the integrator's first round in the
    middle of a request: certifying the key writes a certificate and an event. A service not yet
    initialised (no national CA) still starts; the integrator's rounds retry and log."""
    try:
        context.ledger.signer()
    except Exception:
        log.exception("the ledger key could not be provisioned at startup; the integrator will retry")


def _reconcile_keys(context: Context) -> None:
    """Before serving: custody key versions the log does not name get `key.discovered`
    (ledger/key_events.py). A failure is logged, not fatal: the next start tries again."""
    try:
        found = context.reconcile_keys()
    except Exception:
        log.exception("key events could not be reconciled with custody at startup")
        return
    if found:
        log.warning("recorded %d key event(s) the ledger was missing", len(found))


def _collector(context: Context) -> Collector | None:
    """Witnesses' cosignatures for each new checkpoint (witnesses.yaml), in a thread of their own."""
    every = context.settings.witness_collect_seconds
    if not context.witnesses or every <= 0:
        return None
    ledger_ = context.ledger
    return Collector(
        ledger_.published, ledger_.consistency_proof, context.cosignatures, context.witnesses, every=every
    ).start()


def create_app(context: Context | None = None) -> FastAPI:
    context = context or open_context(serving=True)  # the service: a private home, no demo home in production
    ctx = context

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        every = ctx.settings.crl_refresh_seconds
        tasks = [asyncio.create_task(_refresh_crls(ctx, every))] if every > 0 else []
        if ctx.settings.ocsp_refresh_seconds > 0:
            tasks.append(asyncio.create_task(_refresh_ocsp(ctx, ctx.settings.ocsp_refresh_seconds)))
            tasks.append(asyncio.create_task(_renew_ocsp_signers(ctx, ctx.settings.ocsp_refresh_seconds)))
        await asyncio.to_thread(_sweep_at_start, ctx)
        if ctx.settings.approval_sweep_seconds > 0:
            tasks.append(asyncio.create_task(_sweep_approvals(ctx, ctx.settings.approval_sweep_seconds)))
        if ctx.settings.trust_list_publish_seconds > 0:
            tasks.append(asyncio.create_task(_republish_trust_list(ctx, ctx.settings.trust_list_publish_seconds)))
        period = ctx.settings.ledger_integrate_seconds
        integrator = None
        await asyncio.to_thread(_reconcile_keys, ctx)
        if period > 0:
            await asyncio.to_thread(_provision_ledger_key, ctx)
            integrator = Integrator(ctx.ledger.integrate, period)
            await asyncio.to_thread(integrator.tick)  # a published checkpoint before the first request
            integrator.start()
        ctx.integrator = integrator
        ctx.collector = _collector(ctx)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if ctx.collector is not None:
                await asyncio.to_thread(ctx.collector.stop)
                ctx.collector = None
            if integrator is not None:
                await asyncio.to_thread(integrator.stop)  # a tick under way ends its transaction first
            ctx.integrator = None

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
    app.include_router(seals.router)
    app.include_router(sign.router)
    app.include_router(licences.router)
    app.include_router(verify.router)
    app.include_router(ledger.router)
    app.include_router(events.router)
    app.include_router(approvals.router)
    app.include_router(tokens.router)
    app.include_router(keys.router)
    app.include_router(ceremonies.router)
    context.approvals.record_policy()  # the policy in force, in the ledger (only when it changed)
    app.include_router(witness.router)

    @app.get("/v1/health", tags=["health"])
    async def health() -> dict[str, str]:  # no thread-pool hop: a liveness probe needs no thread
        return {"status": "ok"}

    app.add_middleware(BodyLimit, limit=context.settings.max_upload_bytes)
    return app
