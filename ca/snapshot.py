"""One versioned, immutable view of the CAs: rows, parsed certificates, chains, name constraints and the
certificate templates built from them. Issuance, seals, signing, verification and OCSP read it; a change
of a CA row in this process calls `invalidate()` (the one place), another process's change is seen
within `ttl` seconds (the issuance transaction re-checks the CA row, so a withdrawn or re-keyed CA
issues nothing meanwhile). It replaces nine per-purpose caches that each had to be invalidated."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import certificates as certs
from ca import name_constraints
from ca.errors import UnknownCA, shown
from store.db import Database
from store.models import Certificate, CertificateAuthority

_T = CertificateAuthority.__table__.c
_SELECT_CAS = select(
    _T.name,
    _T.parent,
    _T.algorithm,
    _T.key_ref,
    _T.certificate_serial,
    _T.status,
    _T.certificate_der,
    _T.ocsp_key_ref,
    _T.ocsp_certificate_der,
    _T.crl_scope,
    _T.previous_keys,
    _T.offline,
).order_by(_T.name)
DEFAULT_TTL_SECONDS = 5.0  # how long an unchanged view is trusted for changes made by other processes


@dataclass(frozen=True)
class KeyGeneration:
    """One key of a CA (ca/rollover.py): its certificate, its CRL scope, its OCSP signer, its chain. A
    rolled-over key issues nothing more, but its CRL and OCSP signer keep answering for what it issued."""

    key_ref: str
    crl_scope: str
    certificate_der: bytes
    certificate: x509.Certificate = field(compare=False, repr=False)
    chain: tuple[bytes, ...] = field(compare=False, repr=False)  # this certificate first, root last
    ocsp_key_ref: str | None = None
    ocsp_certificate_der: bytes | None = None
    current: bool = True


@dataclass(frozen=True)
class CAEntry:
    name: str
    parent: str | None
    algorithm: str
    key_ref: str
    certificate_serial: str
    status: str
    certificate_der: bytes
    ocsp_key_ref: str | None
    ocsp_certificate_der: bytes | None
    offline: bool  # its key is in a ceremony home, not in custody (ca/ceremony.py)
    certificate: x509.Certificate = field(compare=False, repr=False)  # parsed once
    chain: tuple[bytes, ...] = field(compare=False, repr=False)  # this CA first, root last
    namespaces: tuple[frozenset[str], ...] = field(compare=False, repr=False)  # name constraints on the chain
    # certificate templates per (profile, CRL scope: the distribution point differs per partition), filled on
    # first use (ca/authority.py): they die with the entry
    templates: dict[tuple[str, str], certs.Template] = field(default_factory=dict, compare=False, repr=False)
    crl_scope: str = ""  # the current key's CRL scope (store/models.py CertificateAuthority.crl_scope)
    # every key of the CA, the current one first, then the rolled-over ones newest first
    generations: tuple[KeyGeneration, ...] = field(default=(), compare=False, repr=False)
    previous_keys: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)  # the row's

    def generation(self, key_identifier: bytes | None) -> KeyGeneration | None:
        """The key whose certificate has this subject key identifier (a child's authority key identifier)."""
        return next((g for g in self.generations if g.certificate.key_identifier == key_identifier), None)

    def chain_for(self, certificate: x509.Certificate) -> tuple[bytes, ...]:
        """The chain (issuing CA certificate first, root last) of a certificate this CA issued, under
        whichever of its keys signed it; the current chain when none matches."""
        found = self.generation(certificate.authority_key_identifier)
        return found.chain if found is not None else self.chain


@dataclass(frozen=True)
class CASnapshot:
    version: int
    taken_at: float  # time.monotonic()
    cas: Mapping[str, CAEntry]

    def get(self, name: str) -> CAEntry:
        found = self.cas.get(name)
        if found is None:
            raise UnknownCA(f"no CA named {shown(name)}")
        return found


class Snapshots:
    def __init__(self, db: Database, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self.db = db
        self.ttl = ttl
        self._versions = itertools.count(1)
        self._current: CASnapshot | None = None
        self._valid = False  # invalidate() clears it; the old view's entries are still reused if unchanged
        self._generation = 0  # bumped by invalidate(): a rebuild that raced with it is not trusted
        self._lock = threading.Lock()

    def current(self) -> CASnapshot:
        snapshot = self._current
        if snapshot is not None and self._valid and time.monotonic() - snapshot.taken_at < self.ttl:
            return snapshot
        return self._rebuild(snapshot)

    def entry(self, name: str) -> CAEntry:
        """`name`'s entry; a name not in the view makes one fresh read (a CA created by another process)."""
        snapshot = self.current()
        if name not in snapshot.cas:
            snapshot = self._rebuild(snapshot)
        return snapshot.get(name)

    def chain_for(self, ca_name: str, certificate_der: bytes) -> tuple[bytes, ...]:
        """The issuer chain of a certificate `ca_name` issued (under its current or an earlier key)."""
        return self.entry(ca_name).chain_for(x509.Certificate.load(certificate_der))

    def invalidate(self) -> None:
        """A CA row changed in this process (created, withdrawn, re-keyed): the next read rebuilds."""
        self._generation += 1
        self._valid = False

    def _rebuild(self, previous: CASnapshot | None) -> CASnapshot:
        with self._lock:
            generation = self._generation
            with self.db.session() as session:
                rows = {row.name: row for row in session.execute(_SELECT_CAS)}
                serials = {
                    str(p[column])
                    for row in rows.values()
                    for p in row.previous_keys or []
                    for column in ("certificate_serial", "ocsp_certificate_serial")
                    if p.get(column)
                }
                ders = _certificate_ders(session, serials)
            old = previous.cas if previous is not None else {}
            entries: dict[str, CAEntry] = {}

            def issuer_chain(parent: CAEntry | None, certificate: x509.Certificate) -> tuple[bytes, ...]:
                return parent.chain_for(certificate) if parent is not None else ()

            def build(name: str) -> CAEntry:
                if name in entries:
                    return entries[name]
                row = rows[name]
                parent = build(row.parent) if row.parent is not None and row.parent in rows else None
                kept = old.get(name)
                certificate = (
                    kept.certificate if kept is not None and kept.certificate_der == row.certificate_der else None
                )
                if certificate is None:
                    certificate = x509.Certificate.load(row.certificate_der)
                    certificate.native  # noqa: B018  (parse once, reuse across issuances)
                chain = (row.certificate_der, *issuer_chain(parent, certificate))
                columns = tuple(row)
                if kept is not None and _columns(kept) == columns and kept.chain == chain:
                    entries[name] = kept  # unchanged: keep its parsed certificate and templates
                    return kept
                generations = [
                    KeyGeneration(
                        row.key_ref,
                        row.crl_scope or "",
                        row.certificate_der,
                        certificate,
                        chain,
                        row.ocsp_key_ref,
                        row.ocsp_certificate_der,
                    )
                ]
                for p in reversed(row.previous_keys or []):
                    der = ders.get(str(p.get("certificate_serial")))
                    if der is None:
                        continue
                    cert = x509.Certificate.load(der)
                    ocsp_der = ders.get(str(p.get("ocsp_certificate_serial")))
                    generations.append(
                        KeyGeneration(
                            str(p["key_ref"]),
                            str(p.get("crl_scope") or ""),
                            der,
                            cert,
                            (der, *issuer_chain(parent, cert)),
                            p.get("ocsp_key_ref"),
                            ocsp_der,
                            current=False,
                        )
                    )
                entries[name] = CAEntry(
                    name=row.name,
                    parent=row.parent,
                    algorithm=row.algorithm,
                    key_ref=row.key_ref,
                    certificate_serial=row.certificate_serial,
                    status=row.status,
                    certificate_der=row.certificate_der,
                    ocsp_key_ref=row.ocsp_key_ref,
                    ocsp_certificate_der=row.ocsp_certificate_der,
                    offline=bool(row.offline),
                    certificate=certificate,
                    chain=chain,
                    namespaces=name_constraints.namespaces(x509.Certificate.load(der) for der in chain),
                    crl_scope=row.crl_scope or "",
                    generations=tuple(generations),
                    previous_keys=row.previous_keys,
                )
                return entries[name]

            for name in rows:
                build(name)
            snapshot = CASnapshot(version=next(self._versions), taken_at=time.monotonic(), cas=entries)
            self._current = snapshot
            self._valid = generation == self._generation
            return snapshot


def _columns(entry: CAEntry) -> tuple[object, ...]:
    return (
        entry.name,
        entry.parent,
        entry.algorithm,
        entry.key_ref,
        entry.certificate_serial,
        entry.status,
        entry.certificate_der,
        entry.ocsp_key_ref,
        entry.ocsp_certificate_der,
        entry.crl_scope,
        entry.previous_keys,
        entry.offline,
    )


def _certificate_ders(session: Session, serials: set[str]) -> dict[str, bytes]:
    """DER of the stored certificates with these serials (a CA's earlier certificates and OCSP signers)."""
    if not serials:
        return {}
    query = select(Certificate.serial, Certificate.der).where(Certificate.serial.in_(sorted(serials)))
    return {serial: der for serial, der in session.execute(query)}
