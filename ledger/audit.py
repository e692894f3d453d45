"""The auditor's check of a ledger (`trustseal ledger verify`): pure verification, no private key, no
database. "Don't trust the log, verify it": everything the log says is checked against what the
auditor already holds — a trusted ledger key (a certificate or its `key_id` pin) and the last
checkpoint it verified (ledger/audit_state.py).

One run, against a `LogSource` (the live API, or an export file: ledger/export.py):

1. the checkpoint parses and its note agrees with its fields (ledger/checkpoint.py);
2. at least one of its `signatures` is by a trusted key, and every one of them verifies; a key that
   signs beside a trusted key (a key handover: new key first, old key second) becomes trusted;
3. it is consistent with the kept checkpoint: a smaller size is a rollback, another root at the same
   size a fork, a larger size needs a consistency proof (or the entries themselves) from the kept one;
4. the root recomputed from the entries (leaf = H(0x00 ‖ leaf_input), RFC 9162) is the checkpoint's —
   for an export of a prefix, the prefix's root with a consistency proof to the checkpoint's;
5. the entries asked for (`--entry N`, or the `document.sealed` entries of a document) are included.

A failure is an `AuditFailure` with a stable `code`; a source that cannot answer (server away)
raises `SourceUnavailable`: the CLI maps them to exit codes 1 and 4.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gm.sm3 import sm3
from ledger import sm2_signatures
from ledger.checkpoint import Checkpoint, format_timestamp, parse_checkpoint
from ledger.errors import CheckpointError, LedgerError
from ledger.merkle import MerkleTree, TreeHasher, subtree_nodes, tree_hasher, verify_consistency, verify_inclusion
from ledger.node_store import MemoryNodeStore

PAGE = 1000  # the API's largest page of entries


class AuditFailure(Exception):
    """The log (or the export) failed a check: a bad signature, a rollback, a fork, a wrong root …"""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SourceUnavailable(Exception):
    """The source could not be read at all (server unreachable, 5xx): nothing was verified."""


class LogSource(Protocol):
    """What the audit reads. Everything it returns is untrusted and checked."""

    def checkpoint(self) -> object: ...

    def certificate(self, key_id: str) -> bytes | None:
        """The ledger certificate (DER or PEM) of a key, by its key id; None when unknown."""
        ...

    def span(self, size: int) -> tuple[int, int]:
        """The entries [start, end) this source gives, for a checkpoint of `size`."""
        ...

    def frontier(self) -> list[bytes]:
        """The hashes of the perfect subtrees of [0, start) (`merkle.subtree_nodes`), largest first."""
        ...

    def entries(self, start: int, end: int) -> Iterator[Mapping[str, Any]]:
        """`{"index", "leaf_input", "entry"}` for [start, end), in order."""
        ...

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        """The RFC 9162 proof between two sizes, or None when the source has none."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None: ...


@dataclass
class LogState:
    """The last checkpoint an auditor verified for one origin, and the keys it trusts for it."""

    origin: str
    hash: str
    size: int
    root_hash: bytes
    timestamp: str
    trusted_keys: dict[str, bytes]  # key_id -> SubjectPublicKeyInfo DER
    checkpoint: dict[str, Any] = field(default_factory=dict)


@dataclass
class Check:
    name: str
    status: str  # passed | failed | skipped
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class AuditResult:
    origin: str | None = None
    checkpoint: Checkpoint | None = None
    checks: list[Check] = field(default_factory=list)
    code: str | None = None
    reason: str | None = None
    state: LogState | None = None  # the state to keep, when everything verified
    new_keys: list[str] = field(default_factory=list)  # keys trusted from this run on (a handover)
    included: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is None

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, "passed", detail))

    def to_json(self) -> dict[str, Any]:
        checkpoint = self.checkpoint
        return {
            "result": "verified" if self.ok else "failed",
            "code": self.code,
            "reason": self.reason,
            "origin": self.origin,
            "checkpoint": None
            if checkpoint is None
            else {
                "size": checkpoint.size,
                "root_hash": checkpoint.root_hash.hex(),
                "timestamp": format_timestamp(checkpoint.timestamp),
                "key_ids": [entry.key_id for entry in checkpoint.signatures],
                "cosignatures": len(checkpoint.cosignatures),
            },
            "checks": [check.to_json() for check in self.checks],
            "new_trusted_keys": self.new_keys,
            "included": self.included,
            "trusted_key_ids": sorted(self.state.trusted_keys) if self.state else None,
        }


# -- trust ------------------------------------------------------------------------------------------


def key_of_certificate(data: bytes) -> tuple[str, bytes]:
    """(key_id, SubjectPublicKeyInfo DER) of a ledger certificate (PEM or DER) or a bare SPKI."""
    spki = sm2_signatures.public_key_der(data)
    return sm2_signatures.key_id(spki), spki


def check_pin(pin: str) -> str:
    value = pin.strip().lower()
    if not sm2_signatures.KEY_ID.match(value):
        raise ValueError(f"a pin is the key_id: 64 hex digits (SM3 of the key's SubjectPublicKeyInfo), not {pin!r}")
    return value


# -- documents --------------------------------------------------------------------------------------

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s*\]")


def document_digests(data: bytes) -> dict[str, str]:
    """The digests a `document.sealed` entry may hold for this file, each with what it covers: SM3 of
    the file as it was handed in for sealing (`document_sm3`) and, for a sealed PDF, the SM3 / SHA-256
    of each signature's byte ranges (`signed_digest`, the CMS messageDigest) — which leave out whatever
    was appended after sealing, so the match says so. A match only selects entries: inclusion is proven."""
    found = {sm3(data).hex(): "document_sm3: the file itself"}
    for match in _BYTE_RANGE.finditer(data):
        a, b, c, d = (int(value) for value in match.groups())
        if a + b <= c and c + d <= len(data):
            signed = data[a : a + b] + data[c : c + d]
            rest = len(data) - (c + d)
            what = f"signed_digest: the byte ranges [{a} {b} {c} {d}]" + (
                f"; {rest} bytes after them are not covered (a revision after sealing)"
                if rest
                else ", the whole file but the signature"
                if a == 0
                else f"; the {a} bytes before them are not covered"
            )
            found.setdefault(sm3(signed).hex(), what)
            found.setdefault(hashlib.sha256(signed).hexdigest(), what)
    return found


# -- the compact range: a root from a frontier and the leaves after it ------------------------------


class _CompactRange:
    """Perfect subtrees of [0, n), largest first (Trillian's compact range): leaves are pushed one at a
    time and the root of [0, n) is their right fold, as `MerkleTree.root` folds stored nodes."""

    def __init__(self, hasher: TreeHasher, start: int, frontier: list[bytes]) -> None:
        ids = subtree_nodes(0, start)
        if len(frontier) != len(ids) or any(len(value) != hasher.size for value in frontier):
            raise AuditFailure(
                "export_malformed", f"the frontier of {start} entries has {len(ids)} hashes, not {len(frontier)}"
            )
        self.hasher = hasher
        self.size = start
        self.stack: list[tuple[int, bytes]] = [(level, value) for (level, _), value in zip(ids, frontier, strict=True)]

    def push(self, leaf_hash: bytes) -> None:
        level, value = 0, leaf_hash
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            level, value = level + 1, self.hasher.node(left, value)
        self.stack.append((level, value))
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return self.hasher.empty_root()
        value = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            value = self.hasher.node(left, value)
        return value


# -- the audit --------------------------------------------------------------------------------------


def audit(
    source: LogSource,
    *,
    trusted: Mapping[str, bytes | None],
    state: LogState | None = None,
    entries_wanted: tuple[int, ...] = (),
    document: bytes | None = None,
    kept: Mapping[str, LogState] | None = None,
) -> AuditResult:
    """Verify the log `source` shows (see the module docstring). `trusted`: key_id → SPKI DER (from a
    certificate) or None (a pin: the key comes from the source and must hash to the pin). `state`: the
    last verified checkpoint of this origin, if any (its trusted keys are trusted too). `kept`: every
    origin the auditor keeps, so that a known key signing an unknown origin is caught."""
    result = AuditResult()
    try:
        _audit(result, source, dict(trusted), state, entries_wanted, document, kept or {})
    except AuditFailure as failure:
        result.code = str(failure.code)
        result.reason = str(failure)
        result.checks.append(Check(_CHECK_OF.get(failure.code, "log"), "failed", str(failure)))
        result.state = None
    return result


_CHECK_OF = {
    "checkpoint_malformed": "checkpoint",
    "checkpoint_note_mismatch": "checkpoint",
    "untrusted_key": "signature",
    "key_unavailable": "signature",
    "key_id_mismatch": "signature",
    "checkpoint_signature_invalid": "signature",
    "origin_mismatch": "consistency",
    "hash_mismatch": "consistency",
    "rollback": "consistency",
    "fork": "consistency",
    "inconsistent": "consistency",
    "consistency_unproven": "consistency",
    "entries_malformed": "entries",
    "entries_out_of_order": "entries",
    "entries_incomplete": "entries",
    "entry_mismatch": "entries",
    "export_malformed": "entries",
    "root_mismatch": "root",
    "entry_out_of_range": "inclusion",
    "inclusion_failed": "inclusion",
    "document_not_found": "inclusion",
}


def _audit(
    result: AuditResult,
    source: LogSource,
    trusted: dict[str, bytes | None],
    state: LogState | None,
    entries_wanted: tuple[int, ...],
    document: bytes | None,
    kept: Mapping[str, LogState],
) -> None:
    document_json = source.checkpoint()
    try:
        checkpoint = parse_checkpoint(document_json)
        hasher = tree_hasher(checkpoint.hash)
    except (CheckpointError, LedgerError) as exc:
        raise AuditFailure(getattr(exc, "code", "checkpoint_malformed"), f"checkpoint refused: {exc}") from None
    result.origin, result.checkpoint = checkpoint.origin, checkpoint
    result.passed("checkpoint", f"{checkpoint.origin} size {checkpoint.size}, note agrees with its fields")

    if state is not None:
        if state.origin != checkpoint.origin:
            raise AuditFailure("origin_mismatch", f"the kept state is of {state.origin!r}, not {checkpoint.origin!r}")
        trusted.update(state.trusted_keys)  # keys the auditor already holds (a pin then gets its key)
    else:  # a log that changes its origin would escape its kept checkpoint (a rewrite verifies as a first run)
        signers = {entry.key_id for entry in checkpoint.signatures}
        for other in kept.values():
            if other.origin != checkpoint.origin and signers & set(other.trusted_keys):
                raise AuditFailure(
                    "origin_mismatch",
                    f"a key trusted for {other.origin!r} signs {checkpoint.origin!r}, an origin the state does not "
                    "keep: a log escaping its kept checkpoint (a log that really moved: use another --state)",
                )
    keys = _check_signatures(result, checkpoint, trusted, source)

    start, end = source.span(checkpoint.size)
    if not 0 <= start <= end <= checkpoint.size:
        raise AuditFailure("export_malformed", f"entries [{start}, {end}) do not fit a log of {checkpoint.size}")
    rng = _CompactRange(hasher, start, source.frontier())
    kept_root: bytes | None = None
    if state is not None and state.size == start:
        kept_root = rng.root()
    # the whole tree in memory only when an inclusion is asked for (a root needs only the compact range)
    full_tree = MerkleTree(MemoryNodeStore(), hasher) if start == 0 and (entries_wanted or document) else None
    leaf_hashes: dict[int, bytes] = {}
    wanted = set(entries_wanted)
    digests = document_digests(document) if document is not None else {}
    documents: dict[int, str] = {}
    expected = start
    for item in source.entries(start, end):
        index, leaf = _entry(item, expected)
        value = hasher.leaf(leaf)
        rng.push(value)
        if full_tree is not None:
            full_tree.append_hashes([value])
        if index in wanted:
            leaf_hashes[index] = value
        matched = _seals(item, digests) if digests else None
        if matched is not None:
            documents[index] = matched
            leaf_hashes[index] = value
        expected += 1
        if state is not None and rng.size == state.size:
            kept_root = rng.root()
    if expected != end:
        raise AuditFailure("entries_incomplete", f"{expected - start} entries given for [{start}, {end})")
    root_end = rng.root()
    if end == checkpoint.size:
        if root_end != checkpoint.root_hash:
            raise AuditFailure(
                "root_mismatch",
                f"the root of entries [0, {end}) is {root_end.hex()}, the checkpoint's {checkpoint.root_hash.hex()}",
            )
        result.passed("root", f"root recomputed from entries [{start}, {end}) equals the checkpoint's")
    else:
        proof = source.consistency_proof(end, checkpoint.size)
        if proof is None or not verify_consistency(
            end, checkpoint.size, root_end, checkpoint.root_hash, proof, hasher=hasher
        ):
            raise AuditFailure(
                "root_mismatch",
                f"the root of entries [0, {end}) is not consistent with the checkpoint of size {checkpoint.size}",
            )
        result.passed("root", f"root of entries [{start}, {end}) proven a prefix of the checkpoint's tree")

    _check_consistency(result, checkpoint, state, kept_root, source, hasher)
    _check_inclusion(result, checkpoint, source, hasher, sorted(wanted), leaf_hashes, full_tree, start, end)
    if document is not None:
        if not documents:
            raise AuditFailure(
                "document_not_found",
                f"no document.sealed entry in [{start}, {end}) names this document (SM3 {sm3(document).hex()})",
            )
        _check_inclusion(
            result, checkpoint, source, hasher, sorted(documents), leaf_hashes, full_tree, start, end, documents
        )

    trusted_keys = {**(state.trusted_keys if state else {}), **keys}
    result.state = LogState(
        origin=checkpoint.origin,
        hash=checkpoint.hash,
        size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        timestamp=format_timestamp(checkpoint.timestamp),
        trusted_keys=trusted_keys,
        checkpoint=checkpoint.to_json(),
    )


def _check_signatures(
    result: AuditResult, checkpoint: Checkpoint, trusted: Mapping[str, bytes | None], source: LogSource
) -> dict[str, bytes]:
    """Every signature verifies and one is by a trusted key; returns every signer's key (now trusted)."""
    signers = [entry.key_id for entry in checkpoint.signatures]
    if not any(key_id in trusted for key_id in signers):
        raise AuditFailure(
            "untrusted_key",
            f"checkpoint signed only by key(s) {', '.join(signers)}, none of them trusted "
            f"(trusted: {', '.join(sorted(trusted)) or 'none'})",
        )
    keys: dict[str, bytes] = {}
    for entry in checkpoint.signatures:
        spki = trusted.get(entry.key_id)
        if spki is None:
            data = source.certificate(entry.key_id)
            if data is None:
                raise AuditFailure("key_unavailable", f"no certificate for key {entry.key_id} to check its signature")
            try:
                key_id, spki = key_of_certificate(data)
            except CheckpointError as exc:
                raise AuditFailure("key_unavailable", f"the certificate for key {entry.key_id}: {exc}") from None
            if key_id != entry.key_id:
                raise AuditFailure("key_id_mismatch", f"the certificate given for key {entry.key_id} is of {key_id}")
        if not sm2_signatures.verify(spki, entry.signature, checkpoint.note.encode("utf-8")):
            raise AuditFailure("checkpoint_signature_invalid", f"the signature of key {entry.key_id} does not verify")
        keys[entry.key_id] = spki
    result.new_keys = [key_id for key_id in signers if key_id not in trusted]
    detail = f"signed by {', '.join(signers)}"
    if result.new_keys:
        detail += f"; key handover followed: {', '.join(result.new_keys)} signs beside a trusted key and is trusted"
    result.passed("signature", detail)
    return keys


def _entry(item: Mapping[str, Any], expected: int) -> tuple[int, bytes]:
    if not isinstance(item, Mapping):
        raise AuditFailure("entries_malformed", f"entry {expected} is not an object")
    index = item.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise AuditFailure("entries_malformed", f"entry {expected} has no integer index")
    if index != expected:
        raise AuditFailure("entries_out_of_order", f"entry {index} where entry {expected} belongs")
    try:
        leaf = base64.b64decode(str(item.get("leaf_input")).encode("ascii"), validate=True)
        shown = json.loads(leaf.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError):
        raise AuditFailure("entries_malformed", f"entry {index}: leaf_input is not base64 of JSON") from None
    if shown != item.get("entry"):
        raise AuditFailure("entry_mismatch", f"entry {index}: `entry` is not the JSON its leaf_input holds")
    return index, leaf


def _seals(item: Mapping[str, Any], digests: Mapping[str, str]) -> str | None:
    """What of the document a `document.sealed` entry names (see `document_digests`), or None."""
    entry = item.get("entry")
    if not isinstance(entry, Mapping) or entry.get("type") != "document.sealed":
        return None
    for name in ("document_sm3", "signed_digest"):
        value = entry.get(name)
        if isinstance(value, str) and value in digests and digests[value].startswith(name):
            return digests[value]
    return None


def _check_consistency(
    result: AuditResult,
    checkpoint: Checkpoint,
    state: LogState | None,
    kept_root: bytes | None,
    source: LogSource,
    hasher: TreeHasher,
) -> None:
    if state is None:
        result.checks.append(Check("consistency", "skipped", "no kept checkpoint for this origin: first run"))
        return
    if state.hash != checkpoint.hash:
        raise AuditFailure("hash_mismatch", f"the kept checkpoint hashes with {state.hash}, this one {checkpoint.hash}")
    if checkpoint.size < state.size:
        raise AuditFailure(
            "rollback", f"checkpoint size {checkpoint.size} is smaller than the kept checkpoint's {state.size}"
        )
    if checkpoint.size == state.size:
        if checkpoint.root_hash != state.root_hash:
            raise AuditFailure(
                "fork",
                f"checkpoint of size {checkpoint.size} has root {checkpoint.root_hash.hex()}, the kept one "
                f"{state.root_hash.hex()}: the log was rewritten",
            )
        result.passed("consistency", f"same size {state.size} and root as the kept checkpoint")
        return
    how = []
    if kept_root is not None:  # the entries themselves give the kept size's root
        if kept_root != state.root_hash:
            raise AuditFailure(
                "fork",
                f"entries [0, {state.size}) have root {kept_root.hex()}, the kept checkpoint {state.root_hash.hex()}",
            )
        how.append("recomputed from the entries")
    proof = source.consistency_proof(state.size, checkpoint.size)
    if proof is not None:
        if not verify_consistency(
            state.size, checkpoint.size, state.root_hash, checkpoint.root_hash, proof, hasher=hasher
        ):
            raise AuditFailure(
                "inconsistent", f"the consistency proof from the kept size {state.size} to {checkpoint.size} fails"
            )
        how.append("consistency proof")
    if not how:
        raise AuditFailure(
            "consistency_unproven",
            f"nothing shows the kept checkpoint (size {state.size}) a prefix of this one: the entries do not "
            "start at 0 and the source has no proof",
        )
    result.passed("consistency", f"size {state.size} → {checkpoint.size}: {' and '.join(how)}")


def _check_inclusion(
    result: AuditResult,
    checkpoint: Checkpoint,
    source: LogSource,
    hasher: TreeHasher,
    indices: list[int],
    leaf_hashes: dict[int, bytes],
    full_tree: MerkleTree | None,
    start: int,
    end: int,
    matches: Mapping[int, str] | None = None,
) -> None:
    """Each index's inclusion; `matches` (a --document's entries): what of the document each one names."""
    what = "entry" if matches is None else "document"
    for index in indices:
        if not start <= index < end:
            raise AuditFailure("entry_out_of_range", f"entry {index} is not among the entries [{start}, {end})")
        leaf_hash = leaf_hashes[index]
        ways = []
        proof = source.inclusion_proof(index, checkpoint.size)
        if proof is not None:
            if not verify_inclusion(leaf_hash, index, checkpoint.size, proof, checkpoint.root_hash, hasher=hasher):
                raise AuditFailure("inclusion_failed", f"the inclusion proof of entry {index} does not verify")
            ways.append(f"inclusion proof against the checkpoint (size {checkpoint.size})")
        if full_tree is not None:  # our own proof from the entries, against their verified root
            path = full_tree.inclusion_proof(index, end)
            if not verify_inclusion(leaf_hash, index, end, path, full_tree.root(end), hasher=hasher):
                raise AuditFailure("inclusion_failed", f"entry {index} is not in the tree of its own entries")
            ways.append(f"inclusion proof in the verified tree of entries [0, {end})")
        if not ways:
            ways.append(f"covered by the verified root of entries [{start}, {end})")
        item = {"index": index, "what": what, "leaf_hash": leaf_hash.hex(), "how": ways}
        if matches is not None:
            item["match"] = matches[index]
            ways = [f"names {matches[index]}", *ways]
        result.included.append(item)
        result.passed("inclusion", f"{what} {index}: {'; '.join(ways)}")
