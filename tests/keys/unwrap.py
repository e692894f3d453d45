"""The auditor's view of a stored MAC key: unwrapped with the KEK (local) or the Vault token, or read from
the PKCS#11 token after login, not through custody's API, so tests can check MACs against independent
implementations and scan for leaks."""

from __future__ import annotations

import base64
import json
from typing import Any

from keys.custody import KeyCustody
from keys.local import LocalKeystore
from keys.pkcs11 import Pkcs11Keystore
from keys.vault import VaultKeystore
from keys.wrapping import derive_kek, unwrap


def stored_binding(name: str, algorithm: str, entry: dict[str, Any]) -> bytes:
    """Both keystores' format-2 binding (local: SM4-GCM associated data; vault: Transit context),
    written out here from its documented form."""
    bound = {k: entry[k] for k in ("version", "enabled", "public_key", "created_at")}
    bound |= {"name": name, "algorithm": algorithm}
    return b"trustseal-key/v2\n" + json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def stored_key(custody: KeyCustody, name: str, version: int, passphrase: str) -> bytes:
    """Unwrap the stored MAC key the way an auditor with the KEK could (not through custody's API)."""
    custody = getattr(custody, "inner", custody)  # the store behind ledger/key_events.py's RecordedCustody
    if isinstance(custody, LocalKeystore):
        header = json.loads((custody.root / "keystore.json").read_text())
        kek = derive_kek(passphrase, base64.b64decode(header["salt"]), header["n"], header["r"], header["p"])
        data = json.loads((custody.root / f"{name}.key.json").read_text())
        entry = next(e for e in data["versions"] if e["version"] == version)
        return unwrap(kek, base64.b64decode(entry["wrapped"]), stored_binding(name, "hmac-sm3", entry))
    if isinstance(custody, Pkcs11Keystore):
        import pkcs11

        label = f"{custody.config.prefix}/{name}/v{version}"
        (obj,) = list(custody._login.session.get_objects({pkcs11.Attribute.LABEL: label}))
        return bytes(obj[pkcs11.Attribute.VALUE])
    assert isinstance(custody, VaultKeystore)
    data = custody.client.secrets.kv.v2.read_secret_version(
        path=f"{custody.prefix}/{name}", mount_point=custody.kv_mount, raise_on_deleted_version=True
    )["data"]["data"]
    entry = next(e for e in data["versions"] if int(e["version"]) == version)
    plain = custody.client.secrets.transit.decrypt_data(
        name=custody.wrapping_key,
        ciphertext=entry["wrapped"],
        context=base64.b64encode(stored_binding(name, "hmac-sm3", entry)).decode(),
        mount_point=custody.transit_mount,
    )["data"]["plaintext"]
    return base64.b64decode(plain)


def encodings(key: bytes) -> list[bytes]:
    """The forms in which a leaked key would show up in a log line, a JSON body or a database file."""
    return [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        base64.b64encode(key),
        base64.urlsafe_b64encode(key),
        base64.b64encode(key).rstrip(b"="),
        base64.urlsafe_b64encode(key).rstrip(b"="),
    ]
