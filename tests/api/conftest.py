from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.context import Context
from tests.fixtures import *  # noqa: F403


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    """The app over this module's context (a module may define its own `client` instead)."""
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    """Authorization headers of an officer token."""
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', f'officer-{secrets.token_hex(4)}')}"}
