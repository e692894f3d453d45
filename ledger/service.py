"""The ledger as the API serves it: entries, proofs, signed checkpoints and receipts (DESIGN.md,
"Ledger wire format"). Reads are public and change nothing, except that a checkpoint first runs a
sequencer pass when events wait, so that it covers every event committed before it was asked for.
`integrate()` is the background integrator's round (ledger/integrator.py): it signs a new checkpoint
whenever the tree grew, so that one covers every committed event within a second even when nobody asks.

The ledger key and its certificate come from a `LedgerSigner` source (ca/ledger_key.py certifies the
custody key `ledger.sm2` under cn-100000-sm2): ledger/ never issues certificates itself.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select

from keys.custody import SigningHandle
from ledger import entries, receipt, sm2_signatures
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import LedgerRangeError
from ledger.merkle import SM3, MerkleTree, TreeHasher
from ledger.sequencer import Sequenced, Sequencer
from ledger.sql_node_store import SqlNodeStore
from store.db import Database
from store.models import Event

MAX_PAGE = 1000

_E = Event.__table__.c
_PAGE = (
    select(_E.ledger_index, _E.leaf_input)
    .where(_E.ledger_index >= bindparam("start"), _E.ledger_index < bindparam("end"))
    .order_by(_E.ledger_index)
)


@dataclass(frozen=True)
class LedgerSigner:
    """The current ledger key (a custody handle) and its certificate (DER); during a key handover
    (ca/ledger_key.py) also the previous key, which co-signs checkpoints after the current one."""

    handle: SigningHandle
    certificate_der: bytes
    handover: tuple[SigningHandle, ...] = ()

    @property
    def key_id(self) -> str:
        return sm2_signatures.key_id(self.handle.public_key_der)

    @property
    def handles(self) -> list[SigningHandle]:
        """Who signs a checkpoint, in `signatures` order: the current key first."""
        return [self.handle, *self.handover]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sm2_signatures.key_id(handle.public_key_der) for handle in self.handles)


def origin_of(public_url: str) -> str:
    """DESIGN.md: the host and path of TRUSTSEAL_PUBLIC_URL + "/ledger" (e.g. `127.0.0.1:8000/ledger`)."""
    parts = urllib.parse.urlsplit(public_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/ledger"


class Ledger:
    def __init__(
        self,
        db: Database,
        origin: str,
        signer: Callable[[], LedgerSigner],
        hasher: TreeHasher = SM3,
    ) -> None:
        self.db = db
        self.origin = origin
        self.signer = signer
        self.hasher = hasher
        self.sequencer = Sequencer(db, hasher)
        self._checkpoint: Checkpoint | None = None
        self._checkpoint_lock = threading.Lock()

    # -- reads -----------------------------------------------------------------------------------

    def size(self) -> int:
        with self.db.engine.connect() as connection:
            return MerkleTree(SqlNodeStore(connection), self.hasher).size()

    def entries(self, start: int, end: int) -> list[dict[str, Any]]:
        """Entries [start, end) as `{"index", "leaf_input" (base64), "entry"}`, at most MAX_PAGE."""
        if start < 0 or end <= start:
            raise LedgerRangeError(f"no entries in [{start}, {end}): start ≥ 0 and end > start", code="range_invalid")
        if end - start > MAX_PAGE:
            raise LedgerRangeError(f"at most {MAX_PAGE} entries a page, not {end - start}", code="page_too_large")
        with self.db.engine.connect() as connection:
            size = MerkleTree(SqlNodeStore(connection), self.hasher).size()
            if end > size:
                raise LedgerRangeError(f"end {end} is beyond the log's size {size}", code="size_beyond_tree")
            rows = connection.execute(_PAGE, {"start": start, "end": end}).all()
        return [
            {
                "index": int(row.ledger_index),
                "leaf_input": sm2_signatures.b64encode(bytes(row.leaf_input)),
                "entry": entries.parse_leaf_input(bytes(row.leaf_input)),
            }
            for row in rows
        ]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self.db.engine.connect() as connection:
            return MerkleTree(SqlNodeStore(connection), self.hasher).inclusion_proof(index, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.db.engine.connect() as connection:
            return MerkleTree(SqlNodeStore(connection), self.hasher).consistency_proof(first, second)

    # -- signed ----------------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """A checkpoint over every event committed before the call (a sequencer pass runs first),
        signed by the ledger key; the same one while the log does not grow."""
        signer = self.signer()  # first: certifying a new ledger key is itself an event to cover
        if self.sequencer.waiting():  # committed before the call, so visible: no write lock when none waits
            self.sequencer.run_pass()
        with self.db.engine.connect() as connection:
            tree = MerkleTree(SqlNodeStore(connection), self.hasher)
            size = tree.size()
            root = tree.root(size)
        with self._checkpoint_lock:
            current = self._checkpoint
            if (
                current is not None
                and current.size >= size
                and tuple(entry.key_id for entry in current.signatures) == signer.key_ids
                and current.hash == self.hasher.name
            ):
                return current
            fresh = sign_checkpoint(
                signer.handles,  # two keys during a key handover
                origin=self.origin,
                size=size,
                root_hash=root,
                timestamp=datetime.now(UTC),
                hash_name=self.hasher.name,
            )
            self._checkpoint = fresh
            return fresh

    def published(self) -> Checkpoint | None:
        """The checkpoint this process last signed, without a pass (None before the first)."""
        return self._checkpoint

    def integrate(self) -> Checkpoint | None:
        """One round of the background integrator (ledger/integrator.py): a pass if events wait, and a
        new signed checkpoint when the tree grew past the last one; returns that new checkpoint, if any."""
        if self.sequencer.waiting():
            self.sequencer.run_pass()
        published = self._checkpoint
        size = self.size()
        if published is not None and published.size >= size and self._signed_by_current(published):
            return None  # (the first round publishes even an empty log: GET /checkpoint serves it)
        fresh = self.checkpoint()
        return fresh if fresh is not published else None

    def _signed_by_current(self, checkpoint: Checkpoint) -> bool:
        """Signed by the keys that sign now (a rotation or the end of a handover calls for a new one)."""
        return tuple(entry.key_id for entry in checkpoint.signatures) == self.signer().key_ids

    def receipt(self, sequenced: Sequenced) -> bytes:
        """The ledger key's signed promise that the event is logged at its index (`X-Trustseal-Receipt`)."""
        return receipt.sign_receipt(self.signer().handle, self.origin, sequenced.index, sequenced.leaf_hash)

    def wait_for(self, event_id: int) -> Sequenced:
        return self.sequencer.wait_for(event_id)
