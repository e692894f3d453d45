"""One module writes certificate rows (issue 12): ca/store.py. Before the split there were three write
paths (raw DBAPI, Core, ORM) spread over ca/authority.py; a new INSERT or revocation assignment elsewhere
would bypass the CA row re-check and the event written with each row."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "ca", "keys", "ledger", "policies", "seal", "signing", "store", "verify")
WRITES = re.compile(
    r"insert\(\s*Certificate\b"  # Core / raw INSERT into certificates
    r"|update\(\s*Certificate\b"  # Core UPDATE
    r"|\.(revocation_reason|revoked_at|invalidity_date)\s*=(?!=)"  # ORM assignments of revocation columns
    r"|add\(\s*Certificate\("  # ORM add of a new row
)


def test_only_ca_store_writes_certificate_rows() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "ca/store.py" or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if WRITES.search(line):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_the_pattern_finds_each_kind_of_write() -> None:
    """The scan above can fail: each write it forbids is recognised."""
    for line in (
        "session.execute(insert(Certificate.__table__), row)",
        "update(Certificate).where(Certificate.serial == s)",
        "row.revocation_reason = reason",
        "row.invalidity_date = moment",
        "session.add(Certificate(serial=s))",
    ):
        assert WRITES.search(line), line
    assert not WRITES.search("revocation_reason=row.revocation_reason,")
    assert not WRITES.search("if row.revoked_at == moment:")
