"""Vault / OpenBao custody.

Transit cannot sign SM2, so Transit is used only as the key-encryption service: each private key
is encrypted by a Transit key (`aes256-gcm96`, `derived`, never exportable) with the entry's every
field (key name, version, algorithm, public key, enabled flag, creation time: keys/wrapping.py) as
derivation context, and the ciphertext plus public metadata lives in KV v2 at
`<kv_mount>/<prefix>/<name>`. An entry edited in KV fails to decrypt (`KeyTampered`); entries of
format 1 (context: name, version and algorithm only) are migrated when first read. KV writes use
check-and-set, so concurrent rotations cannot lose a version. Plaintext key material exists only in
the memory of the process holding a handle.

HMAC-SM3 keys are kept the same way. Transit has an `hmac` key type and endpoint, but its algorithms
are SHA-2 and SHA-3 only (`algorithm` sm3 is refused: tests/keys/test_custody.py checks this against
a real OpenBao), so the 32-byte MAC key is wrapped by Transit like a signing key and the MAC is
computed in the process holding the handle.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from datetime import UTC, datetime
from typing import Any

import hvac
from hvac.exceptions import InvalidPath, InvalidRequest, VaultError

from keys import material
from keys.custody import (
    KEY_NAME,
    CustodyError,
    CustodyLocked,
    KeyAlgorithm,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyTampered,
    KeyVersion,
    KeyWrongType,
    MacHandle,
    SigningHandle,
    parse_ref,
    select,
)
from keys.wrapping import entry_binding

CAS_RETRIES = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


FORMAT = 2  # of each KV secret; 1 = the old context, migrated when read


def _context_v1(name: str, version: int, algorithm: str) -> str:
    return _b64(f"trustseal-key|{name}|{version}|{algorithm}".encode())


def _context(name: str, algorithm: str, entry: dict[str, Any]) -> str:
    return _b64(entry_binding(name, algorithm, entry))


AEAD_KEY_TYPES = frozenset({"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"})


def check_wrapping_key(path: str, config: dict[str, Any]) -> None:
    """The Transit key must be `derived`: only then is the context (key name, version, algorithm) part
    of the encryption key, and a ciphertext moved to another key's entry fails to decrypt. A
    non-derived key ignores the context, so the root's wrapped key pasted into a seal's KV entry
    would sign for that seal. It must also be an AEAD key that never leaves Transit."""
    fix = (
        "Transit cannot change this on an existing key; create one with `bao write -f <transit>/keys/<name> "
        "type=aes256-gcm96 derived=true` and name it in TRUSTSEAL_VAULT_TRANSIT_KEY"
    )
    if config.get("type") not in AEAD_KEY_TYPES:
        raise CustodyError(f"vault transit key {path} is of type {config.get('type')!r}, not an AEAD cipher: {fix}")
    if config.get("derived") is not True:
        raise CustodyError(f"vault transit key {path} is not derived (it would ignore the key context): {fix}")
    if config.get("exportable") or config.get("allow_plaintext_backup"):
        raise CustodyError(f"vault transit key {path} is exportable or allows a plaintext backup: {fix}")


class VaultKeystore:
    def __init__(
        self,
        client: hvac.Client,
        *,
        kv_mount: str = "secret",
        transit_mount: str = "transit",
        prefix: str = "trustseal/keys",
        wrapping_key: str = "trustseal-kek",
    ) -> None:
        self.client = client
        self.kv_mount = kv_mount
        self.transit_mount = transit_mount
        self.prefix = prefix.strip("/")
        self.wrapping_key = wrapping_key
        self._handles: dict[str, tuple[SigningHandle, int]] = {}
        self._macs: dict[str, tuple[MacHandle, int]] = {}
        self._authenticated: dict[str, int] = {}  # key name → the KV version whose entries Transit opened
        self._mutex = threading.Lock()
        self._ensure_wrapping_key()

    @classmethod
    def from_env(cls) -> VaultKeystore:
        addr = os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR")
        token = os.environ.get("VAULT_TOKEN") or os.environ.get("BAO_TOKEN")
        if not addr or not token:
            raise CustodyError("vault keystore needs VAULT_ADDR and VAULT_TOKEN (or BAO_ADDR / BAO_TOKEN)")
        wrapping_key = os.environ.get("TRUSTSEAL_VAULT_TRANSIT_KEY", "trustseal-kek")
        return cls(hvac.Client(url=addr, token=token, timeout=10), wrapping_key=wrapping_key)

    # -- Vault plumbing --------------------------------------------------------------------------

    def _ensure_wrapping_key(self) -> None:
        """Create the wrapping key if missing, and refuse one that does not bind the context."""
        try:
            config = self._read_wrapping_key()
        except InvalidPath:
            with contextlib.suppress(InvalidRequest):  # created concurrently by another process
                self.client.secrets.transit.create_key(
                    name=self.wrapping_key,
                    key_type="aes256-gcm96",
                    derived=True,
                    exportable=False,
                    mount_point=self.transit_mount,
                )
            config = self._read_wrapping_key()
        check_wrapping_key(f"{self.transit_mount}/keys/{self.wrapping_key}", config)

    def _read_wrapping_key(self) -> dict[str, Any]:
        try:
            response = self.client.secrets.transit.read_key(name=self.wrapping_key, mount_point=self.transit_mount)
        except InvalidPath:
            raise  # no such key: the caller creates it
        except VaultError as exc:
            raise CustodyError(f"vault transit unavailable: {type(exc).__name__}") from None
        data: dict[str, Any] = response["data"]
        return data

    def _path(self, name: str) -> str:
        if not KEY_NAME.match(name):
            raise KeyNotFound(f"invalid key name {name!r}")
        return f"{self.prefix}/{name}"

    def _read(self, name: str) -> tuple[dict[str, Any], int]:
        """The key's secret, every entry authenticated by Transit (once per KV version), migrated first
        if it is of format 1."""
        for _ in range(CAS_RETRIES):
            data, kv_version = self._read_raw(name)
            if data.get("format") == FORMAT:
                break
            self._migrate(name, data, kv_version)
        else:
            raise CustodyError(f"could not migrate {name}: too many concurrent writers")
        with self._mutex:
            known = self._authenticated.get(name) == kv_version
        if not known:
            for entry in data["versions"]:
                self._open_entry(name, data["algorithm"], entry)
            with self._mutex:
                self._authenticated[name] = kv_version
        return data, kv_version

    def _migrate(self, name: str, data: dict[str, Any], kv_version: int) -> None:
        """Format 1 → 2: each private key must match its stored public key, then is rewrapped."""
        algorithm = data["algorithm"]
        for entry in data["versions"]:
            number = int(entry["version"])
            secret = self._unwrap(_context_v1(name, number, algorithm), entry["wrapped"], f"{name}@{number}")
            if _public_key_of(algorithm, secret) != base64.b64decode(entry["public_key"]):
                raise KeyTampered(f"key {name}@{number}: stored public key is not the key's own; not migrated")
            entry["wrapped"] = self._wrap(_context(name, algorithm, entry), secret)
        data["format"] = FORMAT
        self._write(name, data, cas=kv_version)  # lost to a concurrent writer: the caller reads again

    def _open_entry(self, name: str, algorithm: str, entry: dict[str, Any]) -> bytes:
        return self._unwrap(
            _context(name, algorithm, entry), entry.get("wrapped", ""), f"{name}@{entry.get('version')}"
        )

    def _read_raw(self, name: str) -> tuple[dict[str, Any], int]:
        try:
            response = self.client.secrets.kv.v2.read_secret_version(
                path=self._path(name), mount_point=self.kv_mount, raise_on_deleted_version=True
            )
        except InvalidPath:
            raise KeyNotFound(f"no key named {name}") from None
        except VaultError as exc:
            raise CustodyError(f"vault read failed: {type(exc).__name__}") from None
        data: dict[str, Any] = response["data"]["data"]
        return data, int(response["data"]["metadata"]["version"])

    def _write(self, name: str, data: dict[str, Any], cas: int) -> bool:
        """Check-and-set write; False when another writer got there first."""
        try:
            self.client.secrets.kv.v2.create_or_update_secret(
                path=self._path(name), secret=data, cas=cas, mount_point=self.kv_mount
            )
        except InvalidRequest as exc:
            if "check-and-set" in str(exc):
                return False
            raise CustodyError(f"vault write refused: {type(exc).__name__}") from None
        except VaultError as exc:
            raise CustodyError(f"vault write failed: {type(exc).__name__}") from None
        return True

    def _wrap(self, context: str, secret: bytes) -> str:
        response = self.client.secrets.transit.encrypt_data(
            name=self.wrapping_key, plaintext=_b64(secret), context=context, mount_point=self.transit_mount
        )
        ciphertext: str = response["data"]["ciphertext"]
        return ciphertext

    def _unwrap(self, context: str, ciphertext: str, ref: str) -> bytes:
        try:
            response = self.client.secrets.transit.decrypt_data(
                name=self.wrapping_key, ciphertext=ciphertext, context=context, mount_point=self.transit_mount
            )
        except InvalidRequest:
            raise KeyTampered(
                f"key {ref} fails authentication: its public key, enabled flag or another bound field (or the "
                "ciphertext) was changed in KV; refusing to use it"
            ) from None
        except VaultError:
            raise CustodyLocked("vault could not unwrap the key") from None
        return base64.b64decode(response["data"]["plaintext"])

    def _new_entry(self, name: str, algorithm: str, version: int) -> dict[str, Any]:
        secret = material.generate(algorithm)
        entry: dict[str, Any] = {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "enabled": True,
            "public_key": _b64(secret.public_key_der()),
        }
        entry["wrapped"] = self._wrap(_context(name, algorithm, entry), secret.secret_bytes())
        return entry

    @staticmethod
    def _version(name: str, algorithm: str, entry: dict[str, Any]) -> KeyVersion:
        return KeyVersion(
            name=name,
            version=int(entry["version"]),
            algorithm=KeyAlgorithm(algorithm),
            public_key_der=base64.b64decode(entry["public_key"]),
            created_at=datetime.fromisoformat(entry["created_at"]),
            enabled=bool(entry["enabled"]),
        )

    # -- KeyCustody ----------------------------------------------------------------------------

    def create(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion:
        self._path(name)
        entry = self._new_entry(name, str(algorithm), 1)
        if not self._write(
            name, {"format": FORMAT, "name": name, "algorithm": str(algorithm), "versions": [entry]}, cas=0
        ):
            raise KeyExists(f"key {name} exists")
        return self._version(name, str(algorithm), entry)

    def rotate(self, name: str) -> KeyVersion:
        for _ in range(CAS_RETRIES):
            data, kv_version = self._read(name)
            number = max(int(v["version"]) for v in data["versions"]) + 1
            entry = self._new_entry(name, data["algorithm"], number)
            data["versions"].append(entry)
            if self._write(name, data, cas=kv_version):
                return self._version(name, data["algorithm"], entry)
        raise CustodyError(f"could not rotate {name}: too many concurrent writers")

    def disable(self, name: str, version: int) -> KeyVersion:
        for _ in range(CAS_RETRIES):
            data, kv_version = self._read(name)
            entry = next((e for e in data["versions"] if int(e["version"]) == version), None)
            if entry is None:
                raise KeyNotFound(f"key {name} has no version {version}")
            secret = self._open_entry(name, data["algorithm"], entry)
            entry["enabled"] = False
            entry["wrapped"] = self._wrap(_context(name, data["algorithm"], entry), secret)
            if self._write(name, data, cas=kv_version):
                with self._mutex:
                    self._handles.pop(f"{name}@{version}", None)
                    self._macs.pop(f"{name}@{version}", None)
                return self._version(name, data["algorithm"], entry)
        raise CustodyError(f"could not disable {name}@{version}: too many concurrent writers")

    def versions(self, name: str) -> list[KeyVersion]:
        data, _ = self._read(name)
        return [self._version(name, data["algorithm"], e) for e in data["versions"]]

    def names(self) -> list[str]:
        try:
            response = self.client.secrets.kv.v2.list_secrets(path=self.prefix, mount_point=self.kv_mount)
        except InvalidPath:
            return []
        return sorted(k for k in response["data"]["keys"] if not k.endswith("/"))

    def get(self, ref: str) -> KeyVersion:
        name, _ = parse_ref(ref)
        return select(self.versions(name), ref)

    def signer(self, ref: str) -> SigningHandle:
        name, _ = parse_ref(ref)
        data, kv_version = self._read(name)
        version = select([self._version(name, data["algorithm"], e) for e in data["versions"]], ref)
        if version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a MAC key, not a signing key")
        if not version.enabled:
            raise KeyDisabled(f"key {version.ref} is disabled")
        with self._mutex:
            cached = self._handles.get(version.ref)
        if cached is not None and cached[1] == kv_version:
            return cached[0]
        entry = next(e for e in data["versions"] if int(e["version"]) == version.version)
        secret = self._open_entry(name, data["algorithm"], entry)
        handle = SigningHandle(version, material.load(data["algorithm"], secret))
        with self._mutex:
            self._handles[version.ref] = (handle, kv_version)
        return handle

    def mac(self, ref: str) -> MacHandle:
        name, _ = parse_ref(ref)
        data, kv_version = self._read(name)
        version = select([self._version(name, data["algorithm"], e) for e in data["versions"]], ref)
        if not version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a signing key, not a MAC key")
        if not version.enabled:
            raise KeyDisabled(f"key {version.ref} is disabled")
        with self._mutex:
            cached = self._macs.get(version.ref)
        if cached is not None and cached[1] == kv_version:
            return cached[0]
        entry = next(e for e in data["versions"] if int(e["version"]) == version.version)
        secret = self._open_entry(name, data["algorithm"], entry)
        handle = MacHandle(version, material.load_mac(data["algorithm"], secret))
        with self._mutex:
            self._macs[version.ref] = (handle, kv_version)
        return handle


def _public_key_of(algorithm: str, secret: bytes) -> bytes:
    if KeyAlgorithm(algorithm).is_mac:
        return material.load_mac(algorithm, secret).public_key_der()
    return material.load(algorithm, secret).public_key_der()
