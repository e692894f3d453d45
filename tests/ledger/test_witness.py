"""The witness (ledger/witness.py) on SQLite and PostgreSQL: it cosigns a real log's checkpoints that
prove consistent with the last one it cosigned (cosignatures checked by OpenSSL with the default SM2
ID), refuses every malformed, foreign or replayed submission with its C2SP status and a code while
changing nothing, refuses an inconsistent one with 422 and an alarm event (once per refused note), and
advances by compare-and-swap: of concurrent submissions from one old size exactly one cosigns."""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from keys.custody import KeyAlgorithm, SigningHandle
from keys.local import LocalKeystore
from ledger.checkpoint import sign_checkpoint
from ledger.cosignature import cosignature_message, verify_cosignature
from ledger.errors import WitnessError
from ledger.events import record_event
from ledger.merkle import SHA256, SM3
from ledger.witness import ALARM, Head, Witness
from ledger.witness_config import WitnessedLog
from store.db import Database
from store.models import Event
from tests.fixtures import pem
from tests.ledger.test_checkpoint import openssl_verifies
from tests.ledger.witnessing import SignedLog


def _key(keystore: LocalKeystore, name: str) -> SigningHandle:
    keystore.create(name, KeyAlgorithm.SM2)
    return keystore.signer(name)


@pytest.fixture(scope="module")
def keys(keystore: LocalKeystore) -> dict[str, SigningHandle]:
    return {name: _key(keystore, name) for name in ("log-a", "log-b", "witness")}


@pytest.fixture
def setup(database: Database, keys: dict[str, SigningHandle]) -> tuple[Witness, SignedLog, SignedLog]:
    """A witness of two logs with fresh origins (the module's database is shared), log A at size 5."""
    tag = secrets.token_hex(4)
    a = SignedLog(keys["log-a"], f"a-{tag}.example/ledger", 5)
    b = SignedLog(keys["log-b"], f"b-{tag}.example/ledger", 3)
    logs = {
        a.origin: WitnessedLog(a.origin, (keys["log-a"].public_key_der,), SM3),
        b.origin: WitnessedLog(b.origin, (keys["log-b"].public_key_der,), SM3),
    }
    witness = Witness(database, f"w-{tag}.example/ledger", lambda: keys["witness"], logs)
    return witness, a, b


def _events(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Event)).scalar_one())


def _alarms(db: Database, origin: str) -> list[dict[str, Any]]:
    with db.engine.connect() as connection:
        rows = connection.execute(select(Event.payload).where(Event.type == ALARM, Event.subject == origin)).all()
    return [row.payload for row in rows]


def _refused(witness: Witness, body: object) -> WitnessError:
    with pytest.raises(WitnessError) as caught:
        witness.add_checkpoint(body)
    return caught.value


@pytest.mark.openssl
def test_first_sight_then_growth_is_cosigned(
    setup: tuple[Witness, SignedLog, SignedLog], keys: dict[str, SigningHandle], tmp_path: Path
) -> None:
    witness, a, _ = setup
    first = a.submission(0)
    cosignature = witness.add_checkpoint(first)
    assert cosignature.witness == witness.name
    verify_cosignature(cosignature, first["checkpoint"]["note"], keys["witness"].public_key_der)
    message = cosignature_message(first["checkpoint"]["note"], cosignature.time)
    assert message.startswith(f"cosignature/v1\ntime {cosignature.time}\n{a.origin}\n5\n".encode())
    key_pem = pem(keys["witness"].public_key_der, "PUBLIC KEY")
    assert openssl_verifies(tmp_path, key_pem, message, cosignature.signature)
    assert not openssl_verifies(tmp_path, key_pem, message.replace(b"\n5\n", b"\n6\n"), cosignature.signature)
    head = witness.head(a.origin)
    assert head is not None and (head.size, head.root_hash) == (5, a.tree.root(5))

    a.grow(7)
    body = a.submission(5)
    second = witness.add_checkpoint(body)
    verify_cosignature(second, body["checkpoint"]["note"], keys["witness"].public_key_der)
    assert witness.head(a.origin).note == body["checkpoint"]["note"]  # type: ignore[union-attr]
    assert witness.head(a.origin).size == 12  # type: ignore[union-attr]
    # the same tree head again (a log that asks twice, a second process of the log): cosigned again
    witness.add_checkpoint(a.submission(12))
    assert witness.head(a.origin).size == 12  # type: ignore[union-attr]
    # a log of one entry per step, from 1 and through powers of two, the proof shapes RFC 9162 knows
    witness_b, b = setup[0], setup[2]
    b_log = SignedLog(b.handle, b.origin, 1)
    witness_b.add_checkpoint(b_log.submission(0))
    for _ in range(9):
        old = b_log.size
        b_log.grow(1)
        witness_b.add_checkpoint(b_log.submission(old))
    assert witness_b.head(b.origin).size == 10  # type: ignore[union-attr]


def _future(body: dict[str, Any], log: SignedLog) -> None:
    body["checkpoint"] = log.checkpoint(timestamp=datetime.now(UTC) + timedelta(days=1))


def _bad_signature(body: dict[str, Any], log: SignedLog) -> None:
    signature = bytearray(base64.b64decode(body["checkpoint"]["signature"]))
    signature[-1] ^= 1
    text = base64.b64encode(bytes(signature)).decode()
    body["checkpoint"]["signature"] = text
    body["checkpoint"]["signatures"][0]["signature"] = text


def _beyond_int64(body: dict[str, Any], log: SignedLog) -> None:
    checkpoint = log.checkpoint()
    huge = 2**63
    checkpoint["note"] = checkpoint["note"].replace(f"\n{log.size}\n", f"\n{huge}\n")
    checkpoint["size"] = huge
    body["checkpoint"] = checkpoint


def _replace_all(body: dict[str, Any], fields: dict[str, Any]) -> None:
    body.clear()
    body.update(fields)


def _hex(values: list[bytes]) -> list[str]:
    return [value.hex() for value in values]


# (name, edit of a valid submission from the stored head (size 5) to size 9, status, code)
BAD: list[tuple[str, Callable[[dict[str, Any], SignedLog], None], int, str]] = [
    ("other fields", lambda b, _: _replace_all(b, {"x": 1}), 400, "witness_request_malformed"),
    ("no proof", lambda b, _: b.pop("proof"), 400, "witness_request_malformed"),
    ("old_size negative", lambda b, _: b.update(old_size=-1), 400, "witness_old_size_invalid"),
    ("old_size a string", lambda b, _: b.update(old_size="5"), 400, "witness_old_size_invalid"),
    ("old_size true", lambda b, _: b.update(old_size=True), 400, "witness_old_size_invalid"),
    ("old_size 2^63", lambda b, _: b.update(old_size=2**63), 400, "witness_old_size_invalid"),
    ("proof not a list", lambda b, _: b.update(proof="ab" * 32), 400, "witness_proof_malformed"),
    ("proof non-hex", lambda b, _: b["proof"].__setitem__(0, "zz" * 32), 400, "witness_proof_malformed"),
    ("proof upper hex", lambda b, _: b["proof"].__setitem__(0, b["proof"][0].upper()), 400, "witness_proof_malformed"),
    ("proof short hash", lambda b, _: b["proof"].__setitem__(0, b["proof"][0][:-2]), 400, "witness_proof_malformed"),
    ("proof a number", lambda b, _: b["proof"].__setitem__(0, 7), 400, "witness_proof_malformed"),
    ("proof of 64", lambda b, _: b.update(proof=["ab" * 32] * 64), 400, "witness_proof_too_long"),
    ("size beyond 2^63", _beyond_int64, 400, "checkpoint_size_out_of_range"),
    ("note disagrees", lambda b, _: b["checkpoint"].update(size=8), 400, "checkpoint_note_mismatch"),
    ("checkpoint a list", lambda b, _: b.update(checkpoint=[]), 400, "checkpoint_malformed"),
    ("bad log signature", _bad_signature, 403, "witness_log_signature_invalid"),
    ("old_size > size", lambda b, _: b.update(old_size=10), 400, "witness_old_size_too_large"),
    ("proof from size 0", lambda b, _: b.update(old_size=0), 400, "witness_proof_not_empty"),
    ("far-future timestamp", _future, 400, "checkpoint_timestamp_future"),
    ("old_size not the head", lambda b, log: b.update(old_size=4, proof=_hex(log.tree.consistency_proof(4, 9))),
     409, "witness_old_size_mismatch"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "status", "code"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_submissions_are_refused_and_change_nothing(
    setup: tuple[Witness, SignedLog, SignedLog],
    database: Database,
    edit: Callable[[dict[str, Any], SignedLog], None],
    status: int,
    code: str,
) -> None:
    witness, a, _ = setup
    witness.add_checkpoint(a.submission(0))
    before = (witness.head(a.origin), _events(database))
    a.grow(4)
    body = a.submission(5)
    edit(body, a)
    refused = _refused(witness, body)
    assert (refused.status, refused.code) == (status, code), refused
    if status == 409:
        assert refused.extra == {"size": 5}
    assert (witness.head(a.origin), _events(database)) == before
    witness.add_checkpoint(a.submission(5))  # the genuine one still goes through
    assert witness.head(a.origin).size == 9  # type: ignore[union-attr]


def test_foreign_submissions(setup: tuple[Witness, SignedLog, SignedLog], keys: dict[str, SigningHandle],
                             database: Database) -> None:  # fmt: skip
    witness, a, b = setup
    witness.add_checkpoint(a.submission(0))
    witness.add_checkpoint(b.submission(0))
    before = (witness.head(a.origin), witness.head(b.origin), _events(database))
    not_objects: list[object] = [[], "x", None, 5]
    for body in not_objects:
        assert (_refused(witness, body).status, _refused(witness, body).code) == (400, "witness_request_malformed")
    unknown = SignedLog(keys["log-a"], "elsewhere.example/ledger", 4)
    assert _refused(witness, unknown.submission(0)).status == 404
    assert _refused(witness, unknown.submission(0)).code == "witness_origin_unknown"
    # log B's key (known to this witness) signing a checkpoint of A's origin: not A's key, so 403
    impostor = SignedLog(keys["log-b"], a.origin, 9)
    refused = _refused(witness, impostor.submission(5))
    assert (refused.status, refused.code) == (403, "witness_log_signature_invalid")
    # a log of another hash than the one configured
    sha = SignedLog(keys["log-a"], a.origin, 9, hasher=SHA256)
    refused = _refused(witness, {"old_size": 0, "proof": [], "checkpoint": sha.checkpoint()})
    assert (refused.status, refused.code) == (400, "witness_hash_mismatch")
    assert (witness.head(a.origin), witness.head(b.origin), _events(database)) == before


def test_the_head_keeps_the_signature_that_verified(setup: tuple[Witness, SignedLog, SignedLog]) -> None:
    """A submitter may put another key's signature first (the `key_id` / `signature` fields) beside the
    pinned key's in `signatures`: the witness keeps, as evidence, the one it verified."""
    witness, a, _ = setup
    body = a.submission(0)
    genuine = body["checkpoint"]["signatures"][0]
    decoy = {"key_id": "ab" * 32, "signature": genuine["signature"]}
    body["checkpoint"].update(key_id=decoy["key_id"], signature=decoy["signature"], signatures=[decoy, genuine])
    witness.add_checkpoint(body)
    head = witness.head(a.origin)
    assert head is not None and head.key_id == genuine["key_id"]
    assert base64.b64encode(head.signature).decode() == genuine["signature"]


def test_a_first_use_of_the_witness_key_may_write(
    setup: tuple[Witness, SignedLog, SignedLog], database: Database, keys: dict[str, SigningHandle]
) -> None:
    """The witness's ledger key is certified on first use, which writes (a certificate, an event): that
    happens before the witness's own write transaction, never inside it (on SQLite the process's writer
    lock is not reentrant: it would hang)."""
    witness, a, _ = setup

    def certifying_signer() -> SigningHandle:
        with database.write_connection() as connection:
            record_event(connection, "test.key_certified", actor="test", subject=None, payload={})
        return keys["witness"]

    witness.signer = certifying_signer
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(witness.add_checkpoint(a.submission(0))), daemon=True)
    thread.start()
    thread.join(20)
    assert done and witness.head(a.origin).size == 5  # type: ignore[union-attr]


def test_the_empty_tree(setup: tuple[Witness, SignedLog, SignedLog], database: Database) -> None:
    witness, _, b = setup
    empty = SignedLog(b.handle, b.origin, 0)
    witness.add_checkpoint(empty.submission(0))  # a log with no entry yet is cosigned at size 0
    assert witness.head(b.origin).size == 0  # type: ignore[union-attr]
    other_root = dict(empty.submission(0))
    forged = SignedLog(b.handle, b.origin, 1)
    signed = sign_checkpoint([b.handle], origin=b.origin, size=0, root_hash=forged.tree.root(1),
                             timestamp=datetime.now(UTC))  # fmt: skip
    other_root["checkpoint"] = json.loads(json.dumps(signed.to_json()))
    before = (witness.head(b.origin), _events(database))
    refused = _refused(witness, other_root)
    assert (refused.status, refused.code) == (400, "checkpoint_root_invalid")
    assert (witness.head(b.origin), _events(database)) == before
    witness.add_checkpoint(b.submission(0))  # from size 0 any tree is consistent: no proof
    assert witness.head(b.origin).size == 3  # type: ignore[union-attr]


def test_replayed_older_checkpoint(setup: tuple[Witness, SignedLog, SignedLog], database: Database) -> None:
    witness, a, _ = setup
    old = a.submission(0)
    witness.add_checkpoint(old)
    a.grow(3)
    witness.add_checkpoint(a.submission(5))
    before = (witness.head(a.origin), _events(database))
    refused = _refused(witness, old)  # as it was first sent
    assert (refused.status, refused.code, refused.extra) == (409, "witness_old_size_mismatch", {"size": 8})
    refused = _refused(witness, {**old, "old_size": 8})  # claiming the head: a smaller size
    assert (refused.status, refused.code) == (400, "witness_old_size_too_large")
    assert (witness.head(a.origin), _events(database)) == before


def test_inconsistent_checkpoint_is_422_with_one_alarm(
    setup: tuple[Witness, SignedLog, SignedLog], database: Database, keys: dict[str, SigningHandle]
) -> None:
    witness, a, _ = setup
    witness.add_checkpoint(a.submission(0))
    head = witness.head(a.origin)
    a.grow(6)
    rewritten = a.fork(2)  # history rewritten, every hash recomputed, signed by the log's real key
    body = rewritten.submission(5)
    events = _events(database)
    refused = _refused(witness, body)
    assert (refused.status, refused.code, refused.extra["kind"]) == (422, "witness_inconsistent", "proof_failed")
    assert witness.head(a.origin) == head and _events(database) == events + 1
    [alarm] = _alarms(database, a.origin)
    assert alarm["kind"] == "proof_failed" and alarm["origin"] == a.origin
    assert alarm["cosigned"]["size"] == 5 and alarm["cosigned"]["note"] == head.note  # type: ignore[union-attr]
    assert alarm["cosigned"]["root_hash"] == a.tree.root(5).hex()
    assert alarm["submitted"]["note"] == body["checkpoint"]["note"] and alarm["submitted"]["proof"] == body["proof"]
    assert alarm["submitted"]["signatures"] == body["checkpoint"]["signatures"]
    assert isinstance(refused.extra["alarm_event"], int) and refused.extra["alarm_event"] > 0

    # the same refused note again (a replay, a retrying log): 422 again, no second alarm
    again = _refused(witness, copy.deepcopy(body))
    assert again.status == 422 and again.extra["alarm_event"] == refused.extra["alarm_event"]
    assert _events(database) == events + 1
    # a garbage proof for the log's genuine checkpoint is refused as well (evidence to weigh, not proof)
    genuine = a.submission(5)
    genuine["proof"] = list(reversed(genuine["proof"]))
    assert _refused(witness, genuine).status == 422
    # the genuine consistent one still goes through: the head never moved
    witness.add_checkpoint(a.submission(5))
    assert witness.head(a.origin).size == 11  # type: ignore[union-attr]


def test_same_size_other_root_is_a_fork(setup: tuple[Witness, SignedLog, SignedLog], database: Database) -> None:
    witness, a, _ = setup
    witness.add_checkpoint(a.submission(0))
    head = witness.head(a.origin)
    forked = a.fork(4)
    refused = _refused(witness, forked.submission(5))  # old_size 5, size 5, empty proof, another root
    assert (refused.status, refused.code, refused.extra["kind"]) == (422, "witness_inconsistent", "fork")
    [alarm] = _alarms(database, a.origin)
    assert alarm["kind"] == "fork" and alarm["submitted"]["root_hash"] == forked.tree.root(5).hex()
    # both signed notes are in the alarm: anyone holding the log's key can check the split view
    assert alarm["cosigned"]["note"] != alarm["submitted"]["note"] and alarm["cosigned"]["size"] == 5
    assert witness.head(a.origin) == head


@pytest.mark.parametrize("start", [0, 5], ids=["first-sight", "from-a-head"])
def test_concurrent_submissions_from_one_old_size_advance_once(
    setup: tuple[Witness, SignedLog, SignedLog], database: Database, start: int
) -> None:
    """From a head (compare-and-swap on the row) and at first sight (the primary key: one insert wins)."""
    witness, a, _ = setup
    if start:
        witness.add_checkpoint(a.submission(0))
    a.grow(8)
    bodies = [a.submission(start, size) for size in range(6, 14)]
    barrier = threading.Barrier(len(bodies))
    outcomes: list[object] = [None] * len(bodies)

    def submit(n: int) -> None:
        barrier.wait()
        try:
            outcomes[n] = witness.add_checkpoint(bodies[n])
        except WitnessError as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [n for n, outcome in enumerate(outcomes) if not isinstance(outcome, WitnessError)]
    assert len(winners) == 1, outcomes
    losers = [outcome for outcome in outcomes if isinstance(outcome, WitnessError)]
    assert {(loser.status, loser.code) for loser in losers} == {(409, "witness_old_size_mismatch")}
    winner_size = bodies[winners[0]]["checkpoint"]["size"]
    assert all(loser.extra == {"size": winner_size} for loser in losers)
    head = witness.head(a.origin)
    assert isinstance(head, Head) and head.size == winner_size and head.root_hash == a.tree.root(winner_size)


def test_same_tree_head_with_a_proof_is_malformed_not_a_fork(
    setup: tuple[Witness, SignedLog, SignedLog], database: Database
) -> None:
    """Review: anyone could replay the log's genuine, already cosigned checkpoint with old_size = size and
    a junk proof and get a `fork` alarm ("two notes signed by the log for one size") into this ledger.
    C2SP: from old_size = size the proof is empty; a proof there is malformed and changes nothing."""
    witness, a, _ = setup
    body = a.submission(0)
    witness.add_checkpoint(body)
    head, events = witness.head(a.origin), _events(database)
    for same in (body, a.submission(5)):  # the very note, and the same tree head signed again
        refused = _refused(witness, {**same, "old_size": 5, "proof": [a.tree.root(5).hex()]})
        assert (refused.status, refused.code) == (400, "witness_proof_not_empty")
    assert _alarms(database, a.origin) == [] and _events(database) == events
    assert witness.head(a.origin) == head
