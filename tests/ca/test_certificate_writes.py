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


CA_WRITES = re.compile(
    r"CertificateAuthority\(\s*$|CertificateAuthority\(\s*name="  # a new CA row
    r"|\.offline\s*=(?!=)"  # only CA rows have it
    r"|\bca\.(status|status_history|key_ref|certificate_der|certificate_serial|ocsp_key_ref|ocsp_certificate_der"
    r"|previous_keys|crl_scope|offline)\s*=(?!=)"  # a CA row's columns (seal and TSA rows share some names)
)


def test_only_ca_store_writes_ca_rows() -> None:
    """CA rows too (session 7's list: authority.py and withdrawal.py still wrote them): creation, key and
    certificate switches, OCSP signer, withdrawal — all in ca/store.py."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ("ca/store.py", "store/models.py") or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if CA_WRITES.search(line):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_the_ca_pattern_finds_each_kind_of_write() -> None:
    for line in (
        "row = CertificateAuthority(",
        "session.add(CertificateAuthority(name=n))",
        "ca.status = 'withdrawn'",
        "ca.key_ref = key_ref",
        "ca.status_history = [*old, new]",
        "ca.previous_keys = [*keys]",
        "row.offline = True",
    ):
        assert CA_WRITES.search(line), line
    assert not CA_WRITES.search("if ca.status == 'withdrawn':")
    assert not CA_WRITES.search("key_ref=plan.key_ref,")
