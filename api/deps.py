"""Request-scoped dependencies: the process context and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.to_thread
from fastapi import Request

from api.auth import TOKEN_PREFIX, Principal, cached, check_token
from api.context import Context
from api.problems import Problem

# Dependencies are `async def` (a sync dependency costs a thread-pool hop per request) and flat:
# each one takes the Request itself rather than other dependencies, since FastAPI's dependency
# solving costs ~100 µs per level, which on the issuance path was 15 % of the request.


async def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "send Authorization: Bearer <token>")
    return token.strip()


async def principal(request: Request) -> Principal:
    """Any authenticated caller; 401 `invalid_token`, `token_expired` or `token_revoked` otherwise."""
    token = _bearer(request)
    found = cached(token) if token.startswith(TOKEN_PREFIX) else None
    if found is None:
        context: Context = request.app.state.context
        found = await anyio.to_thread.run_sync(check_token, context.db, token)
    return found


def principal_in_thread(request: Request, *roles: str) -> Principal:
    """`require(*roles)` for a synchronous route (already on a worker thread) whose need for a token
    depends on what it was asked (e.g. `at=` on the otherwise public POST /v1/verify)."""
    token = _bearer(request)
    found = cached(token) if token.startswith(TOKEN_PREFIX) else None
    if found is None:
        context: Context = request.app.state.context
        found = check_token(context.db, token)
    if found.role not in roles:
        raise Problem(403, "forbidden_role", f"role {found.role} may not do this; needs {' or '.join(roles)}")
    return found


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """An authenticated caller in one of `roles` (401 without a valid token, 403 with another role)."""

    async def check(request: Request) -> Principal:
        who = await principal(request)
        if who.role not in roles:
            raise Problem(403, "forbidden_role", f"role {who.role} may not do this; needs {' or '.join(roles)}")
        return who

    return check
