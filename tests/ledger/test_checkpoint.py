"""Checkpoints, cosignatures and receipts signed through real custody (a LocalKeystore), checked by
the OpenSSL CLI with the default SM2 ID as an auditor would, and refused when anything is tampered."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509

from ca.certificates import new_serial, sign_certificate
from keys.custody import KeyAlgorithm, SigningHandle
from keys.local import LocalKeystore
from ledger.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint, verify_checkpoint
from ledger.cosignature import cosign, cosignature_message, verify_cosignature
from ledger.errors import CheckpointError
from ledger.merkle import SHA256, SM3, MerkleTree
from ledger.node_store import MemoryNodeStore
from ledger.receipt import receipt_message, sign_receipt, verify_receipt
from tests.fixtures import flip, openssl, pem

DEFAULT_ID = "1234567812345678"
ORIGIN = "127.0.0.1:8000/ledger"
WHEN = datetime(2026, 5, 1, 8, 30, 15, 987654, tzinfo=UTC)


@pytest.fixture(scope="module")
def ledger_key(keystore: LocalKeystore) -> SigningHandle:
    keystore.create("ledger", KeyAlgorithm.SM2)
    return keystore.signer("ledger")


@pytest.fixture(scope="module")
def rotated_key(keystore: LocalKeystore, ledger_key: SigningHandle) -> SigningHandle:
    """The ledger key's next version: a handover signs with both."""
    keystore.rotate("ledger")
    return keystore.signer("ledger@2")


@pytest.fixture(scope="module")
def witness_key(keystore: LocalKeystore) -> SigningHandle:
    keystore.create("witness", KeyAlgorithm.SM2)
    return keystore.signer("witness")


def certificate(handle: SigningHandle) -> bytes:
    """A self-signed certificate of a custody key (the real one comes from cn-100000-sm2)."""
    name = x509.Name.build({"common_name": "trustseal ledger", "country_name": "CN"})
    now = datetime.now(UTC)
    return sign_certificate(
        issuer=name,
        subject=name,
        spki=asn1_keys.PublicKeyInfo.load(handle.public_key_der),
        serial=new_serial(),
        not_before=now,
        not_after=now + timedelta(days=1),
        extensions=[],
        signer=handle,
    ).dump()


def tree_root(count: int) -> bytes:
    tree = MerkleTree(MemoryNodeStore(), SM3)
    tree.append_leaves([b'{"type":"test","n":%d}' % i for i in range(count)])
    return tree.root()


def openssl_verifies(tmp: Path, key_pem: bytes, message: bytes, signature: bytes, *, certin: bool = False,
                     distid: str = DEFAULT_ID) -> bool:  # fmt: skip
    """`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:…`: all an auditor needs."""
    tag = secrets.token_hex(4)
    (tmp / f"{tag}.key").write_bytes(key_pem)
    (tmp / f"{tag}.msg").write_bytes(message)
    (tmp / f"{tag}.sig").write_bytes(signature)
    result = openssl(
        "pkeyutl", "-verify", "-certin" if certin else "-pubin", "-inkey", f"{tag}.key", "-rawin",
        "-in", f"{tag}.msg", "-sigfile", f"{tag}.sig", "-digest", "sm3", "-pkeyopt", f"distid:{distid}",
        check=False, cwd=tmp,
    )  # fmt: skip
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


@pytest.fixture(scope="module")
def signed(ledger_key: SigningHandle) -> dict[str, Any]:
    """A checkpoint as the API will serve it: JSON text, parsed back."""
    checkpoint = sign_checkpoint([ledger_key], origin=ORIGIN, size=1000, root_hash=tree_root(1000), timestamp=WHEN)
    parsed: dict[str, Any] = json.loads(json.dumps(checkpoint.to_json()))
    return parsed


@pytest.mark.openssl
def test_checkpoint_verified_by_openssl_with_the_default_id(
    tmp_path: Path, signed: dict[str, Any], ledger_key: SigningHandle
) -> None:
    root = tree_root(1000)
    spki = ledger_key.public_key_der
    assert signed["note"] == f"{ORIGIN}\n1000\n{base64.b64encode(root).decode()}\n2026-05-01T08:30:15Z\n"
    assert signed["root_hash"] == root.hex() and signed["hash"] == "sm3" and signed["size"] == 1000
    assert signed["timestamp"] == "2026-05-01T08:30:15Z"
    assert signed["key_id"] == hashlib.new("sm3", spki).hexdigest()
    assert signed["signatures"] == [{"key_id": signed["key_id"], "signature": signed["signature"]}]
    assert signed["cosignatures"] == []

    note = signed["note"].encode("utf-8")
    signature = base64.b64decode(signed["signature"])
    key_pem = pem(spki, "PUBLIC KEY")
    cert_pem = pem(certificate(ledger_key))
    assert openssl_verifies(tmp_path, key_pem, note, signature)
    assert openssl_verifies(tmp_path, cert_pem, note, signature, certin=True)
    # the twins OpenSSL must refuse: another note, the empty ID OpenSSL assumes elsewhere, a flipped bit
    assert not openssl_verifies(tmp_path, key_pem, note.replace(b"\n1000\n", b"\n1001\n"), signature)
    assert not openssl_verifies(tmp_path, key_pem, note, signature, distid="1234567812345679")
    assert not openssl_verifies(tmp_path, key_pem, note, flip(signature, -1))

    for key in (spki, certificate(ledger_key), cert_pem):
        checkpoint = verify_checkpoint(signed, key)
        assert (checkpoint.size, checkpoint.root_hash, checkpoint.origin) == (1000, root, ORIGIN)
        assert checkpoint.to_json() == signed


def _set(name: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc[name] = value

    return change


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        del doc[name]

    return change


def _note(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        assert old in doc["note"]
        doc["note"] = doc["note"].replace(old, new, 1)

    return change


def _resign_field(name: str, value: Any, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Change a field and the note together: they agree, the signature does not."""

    def change(doc: dict[str, Any]) -> None:
        doc[name] = value
        _note(old, new)(doc)

    return change


def _both_signatures(transform: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["signature"] = transform(doc["signature"])
        doc["signatures"][0]["signature"] = doc["signature"]

    return change


def _flip_b64(text: str) -> str:
    return base64.b64encode(flip(base64.b64decode(text), -3)).decode()


def _other_key_id(doc: dict[str, Any]) -> None:
    doc["key_id"] = "0" * 64
    doc["signatures"][0]["key_id"] = "0" * 64


TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("note size line", _note("\n1000\n", "\n1001\n"), "checkpoint_note_mismatch"),
    ("size field", _set("size", 999), "checkpoint_note_mismatch"),
    ("root_hash field", _set("root_hash", "00" * 32), "checkpoint_note_mismatch"),
    ("origin field", _set("origin", "other.example/ledger"), "checkpoint_note_mismatch"),
    ("timestamp field", _set("timestamp", "2026-05-01T08:30:16Z"), "checkpoint_note_mismatch"),
    ("note extra line", _note("Z\n", "Z\nextra\n"), "checkpoint_note_mismatch"),
    ("note CRLF", _note("\n1000\n", "\r\n1000\n"), "checkpoint_note_mismatch"),
    ("note without final newline", _note("Z\n", "Z"), "checkpoint_note_mismatch"),
    ("size and note together", _resign_field("size", 1001, "\n1000\n", "\n1001\n"), "checkpoint_signature_invalid"),
    ("origin and note together",
     _resign_field("origin", "evil.example/ledger", ORIGIN, "evil.example/ledger"), "checkpoint_signature_invalid"),
    ("signature flipped", _both_signatures(_flip_b64), "checkpoint_signature_invalid"),
    ("signature not base64", _both_signatures(lambda s: "!!" + s[2:]), "checkpoint_malformed"),
    ("signature with extra padding", _both_signatures(lambda s: s + "=="), "checkpoint_malformed"),
    ("signature with a newline", _both_signatures(lambda s: s[:20] + "\n" + s[20:]), "checkpoint_malformed"),
    ("signature empty", _both_signatures(lambda s: ""), "checkpoint_malformed"),
    ("key_id only at the top", _set("key_id", "0" * 64), "checkpoint_malformed"),
    ("key_id everywhere", _other_key_id, "checkpoint_key_mismatch"),
    ("key_id uppercase", _set("key_id", "A" * 64), "checkpoint_malformed"),
    ("signatures empty", _set("signatures", []), "checkpoint_malformed"),
    ("signatures not objects", _set("signatures", ["x"]), "checkpoint_malformed"),
    ("root_hash uppercase", _set("root_hash", "AB" * 32), "checkpoint_malformed"),
    ("root_hash short", _set("root_hash", "ab" * 31), "checkpoint_malformed"),
    ("hash unknown", _set("hash", "md5"), "checkpoint_malformed"),
    ("size a string", _set("size", "1000"), "checkpoint_malformed"),
    ("size a boolean", _set("size", True), "checkpoint_malformed"),
    ("size negative", _set("size", -1), "checkpoint_malformed"),
    ("timestamp with fraction", _set("timestamp", "2026-05-01T08:30:15.5Z"), "checkpoint_malformed"),
    ("timestamp with offset", _set("timestamp", "2026-05-01T16:30:15+08:00"), "checkpoint_malformed"),
    ("timestamp impossible", _set("timestamp", "2026-02-30T08:30:15Z"), "checkpoint_malformed"),
    ("origin with a newline", _set("origin", "a\nb"), "checkpoint_malformed"),
    ("origin empty", _set("origin", ""), "checkpoint_malformed"),
    ("cosignature malformed", _set("cosignatures", [{"witness": "w"}]), "checkpoint_malformed"),
    ("cosignatures missing", _drop("cosignatures"), "checkpoint_malformed"),
    ("note missing", _drop("note"), "checkpoint_malformed"),
    ("signature missing", _drop("signature"), "checkpoint_malformed"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "tamper", "code"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_checkpoints_are_refused(
    signed: dict[str, Any], ledger_key: SigningHandle, name: str, tamper: Callable[[dict[str, Any]], None], code: str
) -> None:
    doc = copy.deepcopy(signed)
    tamper(doc)
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(doc, ledger_key.public_key_der)
    assert caught.value.code == code, str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_only_the_ledger_key_verifies(
    signed: dict[str, Any], witness_key: SigningHandle, keystore: LocalKeystore
) -> None:
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(signed, witness_key.public_key_der)
    assert caught.value.code == "checkpoint_key_mismatch"
    assert witness_key.public_key_der.hex() not in str(caught.value)
    keystore.create("p256-key", KeyAlgorithm.P256)
    for key in (keystore.get("p256-key").public_key_der, b"not a key", pem(b"garbage")):
        with pytest.raises(CheckpointError) as caught:
            verify_checkpoint(signed, key)
        assert caught.value.code == "ledger_key_invalid"
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint([signed], witness_key.public_key_der)
    assert caught.value.code == "checkpoint_malformed"


def test_the_ledger_signs_with_sm2_only(keystore: LocalKeystore) -> None:
    keystore.create("p256-signer", KeyAlgorithm.P256)
    with pytest.raises(CheckpointError, match="SM2"):
        sign_checkpoint(
            [keystore.signer("p256-signer")], origin=ORIGIN, size=0, root_hash=SM3.empty_root(), timestamp=WHEN
        )


@pytest.mark.openssl
def test_key_handover_signs_with_both(tmp_path: Path, ledger_key: SigningHandle, rotated_key: SigningHandle) -> None:
    """During a rotation `signatures` carries the new (current) key and the old one: an auditor pinned
    to either verifies, OpenSSL included; without the old key's entry the old pin refuses."""
    checkpoint = sign_checkpoint(
        [rotated_key, ledger_key], origin=ORIGIN, size=7, root_hash=tree_root(7), timestamp=WHEN
    )
    doc = json.loads(json.dumps(checkpoint.to_json()))
    assert doc["key_id"] == hashlib.new("sm3", rotated_key.public_key_der).hexdigest()
    assert [entry["key_id"] for entry in doc["signatures"]] == [
        hashlib.new("sm3", handle.public_key_der).hexdigest() for handle in (rotated_key, ledger_key)
    ]
    for handle, entry in zip((rotated_key, ledger_key), doc["signatures"], strict=True):
        verify_checkpoint(doc, handle.public_key_der)
        key_pem = pem(handle.public_key_der, "PUBLIC KEY")
        assert openssl_verifies(tmp_path, key_pem, doc["note"].encode(), base64.b64decode(entry["signature"]))
    doc["signatures"] = doc["signatures"][:1]
    verify_checkpoint(doc, rotated_key.public_key_der)
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(doc, ledger_key.public_key_der)
    assert caught.value.code == "checkpoint_key_mismatch"
    # the old key's signature under the new key's id: refused, not mistaken for the new key's
    doc["signature"] = checkpoint.signatures[1].to_json()["signature"]
    doc["signatures"] = [{"key_id": doc["key_id"], "signature": doc["signature"]}]
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(doc, rotated_key.public_key_der)
    assert caught.value.code == "checkpoint_signature_invalid"


@pytest.mark.openssl
def test_cosignature_over_the_c2sp_message(
    tmp_path: Path, signed: dict[str, Any], witness_key: SigningHandle, ledger_key: SigningHandle
) -> None:
    checkpoint = parse_checkpoint(signed)
    cosignature = cosign(witness_key, checkpoint, witness="yunnan.example/witness", time=1_777_624_215)
    message = cosignature_message(checkpoint.note, 1_777_624_215)
    assert message == b"cosignature/v1\ntime 1777624215\n" + signed["note"].encode()
    assert openssl_verifies(tmp_path, pem(witness_key.public_key_der, "PUBLIC KEY"), message, cosignature.signature)
    verify_cosignature(cosignature, checkpoint.note, witness_key.public_key_der)
    verify_cosignature(cosignature, checkpoint.note, certificate(witness_key))

    # served with the checkpoint, it survives the JSON round trip
    doc = {**signed, "cosignatures": [cosignature.to_json()]}
    served = verify_checkpoint(json.loads(json.dumps(doc)), ledger_key.public_key_der)
    assert served.cosignatures == (cosignature,)
    verify_cosignature(served.cosignatures[0], served.note, witness_key.public_key_der)

    refusals = [
        (cosignature, checkpoint.note.replace("\n1000\n", "\n1001\n"), witness_key.public_key_der),
        (replace(cosignature, time=cosignature.time + 1), checkpoint.note, witness_key.public_key_der),
        (replace(cosignature, signature=flip(cosignature.signature, -2)), checkpoint.note,
         witness_key.public_key_der),
        (cosignature, checkpoint.note, ledger_key.public_key_der),  # another key: key id differs
        (replace(cosignature, key_id=signed["key_id"]), checkpoint.note, ledger_key.public_key_der),
    ]  # fmt: skip
    for candidate, note, key in refusals:
        with pytest.raises(CheckpointError) as caught:
            verify_cosignature(candidate, note, key)
        assert caught.value.code == "cosignature_invalid"


@pytest.mark.openssl
def test_receipt_message_and_signature(tmp_path: Path, ledger_key: SigningHandle) -> None:
    leaf_hash = SM3.leaf(b'{"type":"document.sealed"}')
    message = receipt_message(ORIGIN, 41, leaf_hash)
    assert message == f"trustseal-receipt/v1\n{ORIGIN}\n41\n{base64.b64encode(leaf_hash).decode()}\n".encode()
    signature = sign_receipt(ledger_key, ORIGIN, 41, leaf_hash)
    assert openssl_verifies(tmp_path, pem(ledger_key.public_key_der, "PUBLIC KEY"), message, signature)
    verify_receipt(signature, ORIGIN, 41, leaf_hash, ledger_key.public_key_der)
    wrong = ((ORIGIN, 42, leaf_hash), ("x/ledger", 41, leaf_hash), (ORIGIN, 41, flip(leaf_hash, 0)))
    for origin, index, value in wrong:
        with pytest.raises(CheckpointError) as caught:
            verify_receipt(signature, origin, index, value, ledger_key.public_key_der)
        assert caught.value.code == "receipt_invalid"
    for origin, index, value in ((ORIGIN, -1, leaf_hash), ("a\nb", 1, leaf_hash), (ORIGIN, 1, leaf_hash[:20])):
        with pytest.raises(CheckpointError):
            receipt_message(origin, index, value)


def test_sha256_logs_and_the_empty_tree(ledger_key: SigningHandle) -> None:
    checkpoint = sign_checkpoint(
        [ledger_key], origin=ORIGIN, size=0, root_hash=SHA256.empty_root(), timestamp=WHEN, hash_name="sha256"
    )
    assert isinstance(checkpoint, Checkpoint)
    doc = checkpoint.to_json()
    assert doc["hash"] == "sha256" and doc["size"] == 0
    assert doc["note"].split("\n")[2] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    verify_checkpoint(doc, ledger_key.public_key_der)
    with pytest.raises(CheckpointError):
        sign_checkpoint([ledger_key], origin=ORIGIN, size=1, root_hash=bytes(20), timestamp=WHEN)
    with pytest.raises(CheckpointError):
        sign_checkpoint([ledger_key], origin=ORIGIN, size=1, root_hash=bytes(32), timestamp=WHEN.replace(tzinfo=None))
    with pytest.raises(CheckpointError):
        sign_checkpoint([ledger_key, ledger_key], origin=ORIGIN, size=1, root_hash=bytes(32), timestamp=WHEN)
