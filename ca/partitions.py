"""Which CRL partition a new subscriber certificate goes into (issue 12: "partition CRLs once one list
would pass a configured size").

A certificate carries its CRL distribution point, so its partition is decided when it is issued (Let's
Encrypt shards the same way). Each CA key has an open scope, its base list first: once `size`
subscriber certificates have been issued into it (so its list *could* pass `size` if all were
revoked), the next partition is opened (its first CRL made, ca/crl.py `open_partition`) and later
certificates go there. CA certificates, OCSP signers and other infrastructure stay on the base list.

The count is kept in process, so the hot path costs no query: a soft bound. It is read from the
database when the CA snapshot is rebuilt (ca/snapshot.py: on any CA change, and at least every few
seconds), which takes in what other processes issued; between two rebuilds, several processes each
counting their own issuances may overfill the open partition by what the others issued meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from ca.crl import CRLs, Scope, partition_scope, partitions, scopes
from ca.snapshot import CAEntry
from store.db import Database
from store.models import Certificate, CertificateAuthority

DEFAULT_PARTITION_SIZE = 50_000


@dataclass
class _Open:
    version: int  # the snapshot version the count was read at
    number: int  # the open partition (0: the key's base list)
    count: int  # certificates issued into it


class Partitions:
    """`size` entries a partition may reach; 0 never partitions (one list per CA key)."""

    def __init__(self, db: Database, crls: CRLs, size: int = DEFAULT_PARTITION_SIZE) -> None:
        if size < 0:
            raise ValueError("a CRL partition size is 0 (never partition) or positive")
        self.db = db
        self.crls = crls
        self.size = size
        self._open: dict[tuple[str, str], _Open] = {}
        self._lock = threading.Lock()

    def assign(self, ca: CAEntry, version: int) -> str:
        """The CRL scope of the next subscriber certificate of `ca`'s current key (`version`: the snapshot's,
        whose change means the count is read again). Opens the next partition when the current one is full."""
        if self.size <= 0:
            return ca.crl_scope
        with self._lock:  # issuers of this process wait here only while a partition is opened
            found = self._open.get((ca.name, ca.key_ref))
            if found is None or found.version != version:
                found = self._read(ca, version)
                self._open[(ca.name, ca.key_ref)] = found
            if found.count >= self.size:
                self.crls.open_partition(ca.name, ca.key_ref, found.number + 1)
                found.number, found.count = found.number + 1, 0
            found.count += 1
            return partition_scope(ca.crl_scope, found.number)

    def _read(self, ca: CAEntry, version: int) -> _Open:
        """The key's highest partition, and how many certificates were issued into it."""
        with self.db.session() as session:
            row = session.get(CertificateAuthority, ca.name)
            key = next((s for s in scopes(session, row) if s.key_ref == ca.key_ref), None) if row else None
            if key is None:  # a rollover this snapshot has not seen yet: the commit will refuse anyway
                return _Open(version, 0, 0)
            parts = partitions(session, ca.name, key)
            current: Scope = parts[-1] if parts else key
            recorded = Certificate.crl_scope == current.name
            if not current.partition:  # rows written before scopes were recorded are on the base list
                recorded = or_(
                    recorded, and_(Certificate.crl_scope.is_(None), Certificate.issuer_key_ref == ca.key_ref)
                )
            count = session.scalar(
                select(func.count()).select_from(Certificate).where(Certificate.issuer_ca == ca.name, recorded)
            )
        return _Open(version, current.partition, int(count or 0))
