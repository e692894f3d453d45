"""Every (method, path) an app serves, enumerated from the app itself, so a route added later is in every
matrix that uses this at once (tests/api/test_auditor_matrix.py, tests/api/test_token_scope_matrix.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI ≥ 0.165 keeps included routers nested
        if inner is not None:
            yield from _walk(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif isinstance(route, Route) and route.methods:
            for method in route.methods:
                yield method, re.sub(r":\w+\}", "}", prefix + route.path)  # {encoded:path} as OpenAPI writes it


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves; cross-checked with its OpenAPI document, so that a change of
    FastAPI's internals cannot empty a matrix."""
    found = sorted(set(_walk(app.routes)))
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert documented <= set(found), documented - set(found)
    return found
