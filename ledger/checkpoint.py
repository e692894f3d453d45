"""Signed checkpoints (DESIGN.md, "Ledger wire format"): a C2SP tlog-checkpoint note signed with SM2.

`note` = "<origin>\\n<size>\\n<base64 root hash>\\n<timestamp>\\n" is the only signed text; the JSON
fields beside it repeat the note for readers and must agree with it exactly, or the checkpoint is
refused. `signatures` lists every ledger key that signed the note (two during a key handover), the
first being the current key, which `key_id` / `signature` repeat; `cosignatures` are witnesses'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keys.custody import SigningHandle
from ledger import sm2_signatures
from ledger.errors import CheckpointError
from ledger.merkle import HASHERS
from ledger.sm2_signatures import KEY_ID, b64decode, b64encode

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIZE = re.compile(r"^(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class KeySignature:
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": b64encode(self.signature)}


@dataclass(frozen=True)
class Cosignature:
    """A witness's SM2 signature over `cosignature_message(note, time)` (see ledger/cosignature.py)."""

    witness: str
    key_id: str
    time: int
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "key_id": self.key_id,
            "time": self.time,
            "signature": b64encode(self.signature),
        }


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    hash: str
    timestamp: datetime
    note: str
    signatures: tuple[KeySignature, ...]
    cosignatures: tuple[Cosignature, ...] = field(default=())

    @property
    def key_id(self) -> str:
        return self.signatures[0].key_id

    @property
    def signature(self) -> bytes:
        return self.signatures[0].signature

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "hash": self.hash,
            "timestamp": format_timestamp(self.timestamp),
            "key_id": self.key_id,
            "note": self.note,
            "signature": b64encode(self.signature),
            "signatures": [entry.to_json() for entry in self.signatures],
            "cosignatures": [entry.to_json() for entry in self.cosignatures],
        }


def format_timestamp(moment: datetime) -> str:
    """RFC 3339, UTC, whole seconds: `2026-05-01T08:00:00Z`."""
    if moment.tzinfo is None:
        raise CheckpointError("a checkpoint timestamp must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object) -> datetime:
    if not isinstance(text, str) or not TIMESTAMP.match(text):
        raise CheckpointError(f"timestamp {text!r} is not RFC 3339 UTC seconds (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CheckpointError(f"timestamp {text!r} is not a valid time") from None


def check_origin(origin: object) -> str:
    """A C2SP origin line: non-empty text without control characters (a newline would forge lines)."""
    if not isinstance(origin, str) or not origin or _CONTROL.search(origin) or origin != origin.strip():
        raise CheckpointError(f"origin {origin!r} must be non-empty text without control characters or edge spaces")
    return origin


def checkpoint_note(origin: str, size: int, root_hash: bytes, timestamp: datetime) -> str:
    """The signed text: C2SP tlog-checkpoint body plus one extension line, the timestamp."""
    check_origin(origin)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise CheckpointError(f"size {size!r} must be a non-negative integer")
    return f"{origin}\n{size}\n{b64encode(root_hash)}\n{format_timestamp(timestamp)}\n"


def sign_checkpoint(
    signers: Sequence[SigningHandle],
    *,
    origin: str,
    size: int,
    root_hash: bytes,
    timestamp: datetime,
    hash_name: str = "sm3",
) -> Checkpoint:
    """A checkpoint signed by each of `signers` through custody; the first is the current ledger key
    (more than one only during a key handover)."""
    if not signers:
        raise CheckpointError("a checkpoint needs at least one signing key")
    _check_root(root_hash, hash_name)
    if timestamp.tzinfo is None:
        raise CheckpointError("a checkpoint timestamp must be timezone-aware")
    timestamp = timestamp.astimezone(UTC).replace(microsecond=0)
    note = checkpoint_note(origin, size, root_hash, timestamp)
    message = note.encode("utf-8")
    signatures = tuple(
        KeySignature(sm2_signatures.key_id(handle.public_key_der), sm2_signatures.sign(handle, message))
        for handle in signers
    )
    if len({entry.key_id for entry in signatures}) != len(signatures):
        raise CheckpointError("the same key signs a checkpoint once")
    return Checkpoint(origin, size, root_hash, hash_name, timestamp, note, signatures)


def _check_root(root_hash: bytes, hash_name: str) -> None:
    hasher = HASHERS.get(hash_name)
    if hasher is None:
        raise CheckpointError(f"unknown hash {hash_name!r} (known: {', '.join(HASHERS)})")
    if len(root_hash) != hasher.size:
        raise CheckpointError(f"a {hash_name} root hash has {hasher.size} bytes, not {len(root_hash)}")


def _field(document: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in document:
        raise CheckpointError(f"checkpoint has no {name!r}")
    value = document[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CheckpointError(f"checkpoint {name!r} has the wrong type ({type(value).__name__})")
    return value


def _key_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not KEY_ID.match(value):
        raise CheckpointError(f"{where} must be 64 lowercase hex digits (SM3 of the key's SubjectPublicKeyInfo)")
    return value


def parse_checkpoint(document: object) -> Checkpoint:
    """A checkpoint JSON object, checked for structure and for agreement of every field with the
    note — but not for its signature (`verify_checkpoint`). Unknown fields are ignored."""
    if not isinstance(document, Mapping):
        raise CheckpointError("a checkpoint is a JSON object")
    origin = check_origin(_field(document, "origin", str))
    size = _field(document, "size", int)
    if size < 0:
        raise CheckpointError(f"checkpoint size {size} is negative")
    hash_name = _field(document, "hash", str)
    root_hex = _field(document, "root_hash", str)
    if not re.fullmatch(r"[0-9a-f]+", root_hex) or len(root_hex) % 2:
        raise CheckpointError("checkpoint root_hash must be lowercase hex")
    root_hash = bytes.fromhex(root_hex)
    _check_root(root_hash, hash_name)
    timestamp = parse_timestamp(_field(document, "timestamp", str))
    note = _field(document, "note", str)
    _check_note(note, origin, size, root_hash, timestamp)
    top = KeySignature(
        _key_id(_field(document, "key_id", str), "key_id"), b64decode(_field(document, "signature", str), "signature")
    )
    signatures = tuple(_signature(entry, n) for n, entry in enumerate(_field(document, "signatures", list)))
    if top not in signatures:
        raise CheckpointError("signatures must repeat key_id and signature (the current ledger key's)")
    if len({entry.key_id for entry in signatures}) != len(signatures):
        raise CheckpointError("signatures name a key twice")
    ordered = (top, *(entry for entry in signatures if entry != top))
    cosignatures = tuple(
        parse_cosignature(entry, f"cosignatures[{n}]") for n, entry in enumerate(_field(document, "cosignatures", list))
    )
    return Checkpoint(origin, size, root_hash, hash_name, timestamp, note, ordered, cosignatures)


def _check_note(note: str, origin: str, size: int, root_hash: bytes, timestamp: datetime) -> None:
    """The note must be exactly the one the fields make; say which line differs."""
    expected = checkpoint_note(origin, size, root_hash, timestamp)
    if note == expected:
        return
    lines = note.split("\n")
    if len(lines) != 5 or lines[4] != "":
        raise CheckpointError(
            "note must be four lines, each ending in a newline: origin, size, base64 root hash, timestamp",
            code="checkpoint_note_mismatch",
        )
    for name, got, want in zip(("origin", "size", "root hash", "timestamp"), lines, expected.split("\n"), strict=False):
        if got != want:
            raise CheckpointError(
                f"note's {name} line {got!r} does not match the checkpoint's {want!r}", code="checkpoint_note_mismatch"
            )
    raise CheckpointError("note does not match the checkpoint's fields", code="checkpoint_note_mismatch")


def _signature(entry: object, n: int) -> KeySignature:
    if not isinstance(entry, Mapping):
        raise CheckpointError(f"signatures[{n}] is not an object")
    return KeySignature(
        _key_id(entry.get("key_id"), f"signatures[{n}].key_id"),
        b64decode(entry.get("signature"), f"signatures[{n}].signature"),
    )


def parse_cosignature(entry: object, where: str = "cosignature") -> Cosignature:
    """A cosignature JSON object `{"witness", "key_id", "time", "signature"}`, checked for structure only
    (`ledger.cosignature.verify_cosignature` checks the signature)."""
    if not isinstance(entry, Mapping):
        raise CheckpointError(f"{where} is not an object")
    witness = entry.get("witness")
    time = entry.get("time")
    if not isinstance(witness, str) or not witness or _CONTROL.search(witness):
        raise CheckpointError(f"{where}.witness must be non-empty text")
    if isinstance(time, bool) or not isinstance(time, int) or time < 0:
        raise CheckpointError(f"{where}.time must be unix seconds")
    return Cosignature(
        witness,
        _key_id(entry.get("key_id"), f"{where}.key_id"),
        time,
        b64decode(entry.get("signature"), f"{where}.signature"),
    )


def verify_checkpoint(document: object, key: bytes) -> Checkpoint:
    """Parse a checkpoint and check the signature of `key` (SubjectPublicKeyInfo DER, or the ledger
    certificate in DER or PEM) over its note. During a key handover either key verifies it. The
    certificate's validity and chain are the caller's to check; cosignatures are not checked here."""
    checkpoint = parse_checkpoint(document)
    spki = sm2_signatures.public_key_der(key)
    wanted = sm2_signatures.key_id(spki)
    entry = next((entry for entry in checkpoint.signatures if entry.key_id == wanted), None)
    if entry is None:
        signed_by = ", ".join(entry.key_id for entry in checkpoint.signatures)
        raise CheckpointError(
            f"checkpoint is signed by key(s) {signed_by}, not by the given key {wanted}", code="checkpoint_key_mismatch"
        )
    if not sm2_signatures.verify(spki, entry.signature, checkpoint.note.encode("utf-8")):
        raise CheckpointError(
            f"the signature of key {wanted} over the note does not verify", code="checkpoint_signature_invalid"
        )
    return checkpoint
