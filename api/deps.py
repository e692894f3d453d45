"""Request-scoped dependencies: the process context and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.to_thread
from fastapi import Depends, Request

from api.auth import TOKEN_PREFIX, Principal, authenticate, cached
from api.context import Context
from api.problems import Problem

# Dependencies are `async def`: a sync dependency costs a thread-pool hop per request.


async def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


async def principal(request: Request, context: Context = Depends(get_context)) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "send Authorization: Bearer <token>")
    token = token.strip()
    found = cached(token) if token.startswith(TOKEN_PREFIX) else None
    if found is None:
        found = await anyio.to_thread.run_sync(authenticate, context.db, token)
    if found is None:
        raise Problem(401, "invalid_token", "unknown or disabled token")
    return found


def require(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Principal = Depends(principal)) -> Principal:
        if who.role not in roles:
            raise Problem(403, "forbidden_role", f"role {who.role} may not do this; needs {' or '.join(roles)}")
        return who

    return check
