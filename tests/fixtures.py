"""Shared fixtures: real databases (SQLite file and PostgreSQL), a real keystore, a real hierarchy.

Import with `from tests.fixtures import *` in a folder's conftest.py.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from api.context import Context
from api.settings import Settings
from bench.documents import make_pdf as make_pdf  # re-exported for tests
from ca.authority import CertificateAuthorityService
from ca.hierarchy import create_demo_hierarchy
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from seal.service import SealService
from store.db import Database
from store.models import ApiToken, Base

PG_ENV = "TRUSTSEAL_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV)


def _pg_database(tmp_name: str) -> tuple[str, str]:
    """A fresh schema in the test database; the URL pins search_path to it."""
    base = postgres_url()
    assert base is not None
    schema = f"t_{tmp_name}_{secrets.token_hex(4)}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    base = postgres_url()
    assert base is not None
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated, empty database; every module runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        if postgres_url() is None:
            pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
        url, schema = _pg_database("m")
        db = Database(url)
        db.migrate()
        yield db
        db.dispose()
        _drop_schema(schema)
    else:
        path = tmp_path_factory.mktemp("db") / "trustseal.db"
        db = Database(f"sqlite:///{path}")
        db.migrate()
        yield db
        db.dispose()


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> LocalKeystore:
    return LocalKeystore(tmp_path_factory.mktemp("keystore"), passphrase="test-passphrase", scrypt_n=2**10)


PUBLIC_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def ca_service(database: Database, keystore: LocalKeystore) -> CertificateAuthorityService:
    """The demo hierarchy (cn-root-sm2 → cn-370000-sm2 / cn-530000-sm2, same for p256), freshly made."""
    service = CertificateAuthorityService(database, keystore, default_profiles(), PUBLIC_URL)
    create_demo_hierarchy(service, actor="test")
    return service


@pytest.fixture(scope="module")
def context(
    ca_service: CertificateAuthorityService, keystore: LocalKeystore, tmp_path_factory: pytest.TempPathFactory
) -> Context:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(
        home=home,
        database_url=ca_service.db.url,
        public_url=PUBLIC_URL,
        keystore="local",
        passphrase="test-passphrase",
        max_upload_bytes=1024 * 1024,
    )
    return Context(settings=settings, db=ca_service.db, custody=keystore, ca=ca_service)


def openssl(
    *args: str, input: bytes | None = None, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the OpenSSL 3 CLI; output captured."""
    return subprocess.run(["openssl", *args], input=input, capture_output=True, check=check, cwd=cwd, timeout=60)


def make_csr(
    directory: Path, *, algorithm: str, subject: str, sigopt_distid: bool = True, extra: list[str] | None = None
) -> bytes:
    """A real CSR made by the OpenSSL CLI. `subject` in openssl form, e.g. '/C=CN/O=Org/CN=Name'."""
    key = directory / f"{secrets.token_hex(4)}.key"
    if algorithm == "sm2":
        openssl("genpkey", "-algorithm", "SM2", "-out", str(key))
        args = ["req", "-new", "-key", str(key), "-sm3", "-subj", subject]
        if sigopt_distid:
            args += ["-sigopt", "distid:1234567812345678"]
    else:
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        args = ["req", "-new", "-key", str(key), "-sha256", "-subj", subject]
    args += extra or []
    return openssl(*args).stdout


ORG_SUBJECT = (
    "/C=CN/O=Jinan Market Regulation Bureau/organizationIdentifier=91350100M000100Y43"
    "/CN=Jinan Market Regulation Bureau Seal"
)


@pytest.fixture(scope="module")
def live_url(context: Context) -> Iterator[str]:
    """The real app served by uvicorn on a free loopback port, in a thread, for CLI clients (openssl ocsp)."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("test server did not start")
    yield url
    server.should_exit = True
    thread.join(10)


def pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def flip(data: bytes, offset: int) -> bytes:
    """`data` with one bit flipped at `offset` (negative counts from the end): a tampered twin."""
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def examples(bounded: int) -> int:
    """Hypothesis example count: bounded in `make test`, a hundred times more in `make soak`."""
    return bounded * 100 if os.environ.get("TRUSTSEAL_SOAK") else bounded


@pytest.fixture(scope="module")
def seal_service(ca_service: CertificateAuthorityService) -> SealService:
    """Seal service over the demo hierarchy, with the four demo seals made."""
    from seal.demo import create_demo_seals

    service = SealService(ca_service.db, ca_service.custody, ca_service)
    create_demo_seals(service, actor="test")
    return service


BOOKKEEPING = {ApiToken.__table__.c.last_used_at}  # written when a token is used (at most once a minute)


def table_snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, but for bookkeeping columns: "nothing changed" means exactly that."""
    with db.engine.connect() as connection:
        return {
            table.name: sorted(
                repr(tuple(row))
                for row in connection.execute(select(*[c for c in table.columns if c not in BOOKKEEPING]))
            )
            for table in Base.metadata.sorted_tables
        }
