"""Migration 0014 (CA key rollover) on a database that already holds CAs, certificates and CRLs: every
certificate a CA issued is recorded as signed by the one key the CA had (`issuer_key_ref`), a root's own
certificate names none, CRLs and CAs get the first key's scope "" (the plain `/v1/cas/{ca}/crl` URL they
already serve), and downgrading drops the columns again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from store.db import MIGRATIONS
from tests.fixtures import _drop_schema, _pg_database, postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgres":
        if postgres_url() is None:
            pytest.skip("PostgreSQL tests need TRUSTSEAL_TEST_DATABASE_URL")
        url, schema = _pg_database("mig13")
        made = create_engine(url)
        yield made
        made.dispose()
        _drop_schema(schema)
    else:
        made = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield made
        made.dispose()


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    (command.downgrade if down else command.upgrade)(cfg, revision)


def _certificate(connection: Connection, serial: str, issuer: str | None, now: datetime) -> None:
    connection.execute(
        text(
            "INSERT INTO certificates (serial, issuer_ca, subject, profile, algorithm, not_before, not_after, status,"
            " fingerprint_sha256, der, is_ca, created_at) VALUES (:serial, :issuer, 's', 'org-seal', 'sm2', :now,"
            " :now, 'good', :fp, :der, :is_ca, :now)"
        ),
        {
            "serial": serial,
            "issuer": issuer,
            "now": now,
            "fp": serial.rjust(64, "0"),
            "der": b"\x30\x00",
            "is_ca": issuer is None,
        },
    )


def test_existing_rows_are_attributed_to_the_one_key_each_ca_had(engine: Engine) -> None:
    _migrate(engine, "0012")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for name, parent, key in (("root", None, "root@1"), ("regional", "root", "regional@3")):
            connection.execute(
                text(
                    "INSERT INTO cas (name, parent, algorithm, key_ref, certificate_serial, certificate_der, status,"
                    " created_at) VALUES (:name, :parent, 'sm2', :key, :serial, :der, 'active', :now)"
                ),
                {"name": name, "parent": parent, "key": key, "serial": f"{name}-cert", "der": b"\x30\x00", "now": now},
            )
        _certificate(connection, "a1", None, now)  # a root's self-signed certificate
        _certificate(connection, "a2", "root", now)  # the regional CA's certificate
        _certificate(connection, "a3", "regional", now)  # an end entity
        connection.execute(
            text(
                "INSERT INTO crls (ca_name, number, this_update, next_update, der) VALUES ('regional', 1, :now, :now,"
                " :der)"
            ),
            {"now": now, "der": b"\x30\x00"},
        )
    _migrate(engine, "0014")
    with engine.connect() as connection:
        keys: dict[str, str | None] = dict(
            connection.execute(text("SELECT serial, issuer_key_ref FROM certificates")).all()
        )
        scopes = connection.execute(text("SELECT crl_scope, previous_keys FROM cas")).all()
        crl_scopes = connection.execute(text("SELECT scope FROM crls")).scalars().all()
    assert keys == {"a1": None, "a2": "root@1", "a3": "regional@3"}
    assert scopes == [("", None), ("", None)]
    assert crl_scopes == [""]
    _migrate(engine, "0012", down=True)
    columns = {c["name"] for c in inspect(engine).get_columns("certificates")}
    assert "issuer_key_ref" not in columns


def test_partitions_refuse_a_downgrade_of_0016(engine: Engine) -> None:
    """A certificate issued into a CRL partition names that partition's list: dropping the column would put
    its revocation on a list it never names, so 0016 refuses to go down while partitions exist (and goes
    down when none do)."""
    _migrate(engine, "0016")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cas (name, parent, algorithm, key_ref, certificate_serial, certificate_der, status,"
                " created_at, crl_scope) VALUES ('regional', NULL, 'sm2', 'regional@1', 'r', :der, 'active', :now,"
                " '')"
            ),
            {"der": b"\x30\x00", "now": now},
        )
        _certificate(connection, "b1", "regional", now)
        connection.execute(text("UPDATE certificates SET crl_scope = 'p2' WHERE serial = 'b1'"))
    with pytest.raises(RuntimeError, match="CRL partitions"):
        _migrate(engine, "0015", down=True)
    assert "crl_scope" in {c["name"] for c in inspect(engine).get_columns("certificates")}
    with engine.begin() as connection:
        connection.execute(text("UPDATE certificates SET crl_scope = '' WHERE serial = 'b1'"))
    _migrate(engine, "0015", down=True)
    assert "crl_scope" not in {c["name"] for c in inspect(engine).get_columns("certificates")}
