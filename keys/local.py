"""The embedded keystore: one JSON file per key under a folder, private keys SM4-GCM wrapped.

The KEK comes from a passphrase (scrypt) or is supplied directly; the header file stores the salt
and a check value so a wrong passphrase fails at open, not at the first signature. Writes are
atomic (temp file + rename) and serialised with an advisory lock, so several processes may share
one keystore.

Each wrapped private key is bound, as SM4-GCM associated data, to every field of its entry a reader
acts on: key name, version, algorithm, public key, enabled flag and creation time (format 2). A file
whose public key was swapped (so a CA would certify someone else's key under our name) or whose
enabled flag was flipped (a retired key brought back) fails to open with `KeyTampered`; it is never
used. Format-1 keystores (bound to name, version and algorithm only) are migrated when first opened:
each private key must match its stored public key, and is rewrapped under the format-2 binding.
Rolling the whole keystore back to an older copy is not detectable here.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from keys.wrapping import derive_kek, entry_binding, unwrap, wrap

HEADER = "keystore.json"
CHECK_PLAINTEXT = b"trustseal keystore v1"
FORMAT = 2  # of the header and of every key file; 1 = the old binding, migrated at open

log = logging.getLogger("trustseal")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _check_aad(fmt: int) -> bytes:
    """The header's check value binds the format, so a migrated header cannot be relabelled format 1."""
    return b"check" if fmt == 1 else f"check|format={fmt}".encode()


def _aad_v1(name: str, version: int, algorithm: str) -> bytes:
    """Format 1's binding: read once, by the migration."""
    return f"trustseal-key|{name}|{version}|{algorithm}".encode()


class LocalKeystore:
    def __init__(
        self, root: Path, *, passphrase: str | None = None, kek: bytes | None = None, scrypt_n: int = 2**15
    ) -> None:
        if (passphrase is None) == (kek is None):
            raise CustodyError("give exactly one of passphrase or kek")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._handles: dict[str, tuple[SigningHandle, tuple[int, int, int]]] = {}
        self._macs: dict[str, tuple[MacHandle, tuple[int, int, int]]] = {}
        self._mutex = threading.Lock()
        with self._locked():
            header = self._read_header()
            if header is None:
                salt = os.urandom(16)
                header = {
                    "format": FORMAT,
                    "kdf": "scrypt" if passphrase is not None else "none",
                    "salt": _b64(salt),
                    "n": scrypt_n,
                    "r": 8,
                    "p": 1,
                }
                self._kek = self._kek_from(header, passphrase, kek)
                header["check"] = _b64(wrap(self._kek, CHECK_PLAINTEXT, _check_aad(FORMAT)))
                self._write_json(self.root / HEADER, header)
            else:
                fmt = header.get("format")
                if fmt not in (1, FORMAT):
                    raise CustodyError(f"keystore {self.root}: unknown format {fmt!r} (this version reads 1 and 2)")
                self._kek = self._kek_from(header, passphrase, kek)
                if unwrap(self._kek, _unb64(header["check"]), _check_aad(fmt)) != CHECK_PLAINTEXT:
                    raise CustodyError("keystore check value mismatch")
                if fmt == 1:
                    self._migrate(header)

    @staticmethod
    def _kek_from(header: dict[str, Any], passphrase: str | None, kek: bytes | None) -> bytes:
        if kek is not None:
            if len(kek) != 16:
                raise CustodyError("a supplied KEK must be 16 bytes (SM4)")
            return kek
        assert passphrase is not None
        return derive_kek(passphrase, _unb64(header["salt"]), header["n"], header["r"], header["p"])

    def _migrate(self, header: dict[str, Any]) -> None:
        """Format 1 → 2 (under the lock): each key file is rewrapped and marked, then the header.
        A crash midway leaves marked files that the next open skips, so it finishes later."""
        for path in sorted(self.root.glob("*.key.json")):
            data: dict[str, Any] = json.loads(path.read_text())
            if data.get("format") == FORMAT:
                continue
            name, algorithm = path.name[: -len(".key.json")], data["algorithm"]
            for entry in data["versions"]:
                try:
                    secret = unwrap(self._kek, _unb64(entry["wrapped"]), _aad_v1(name, entry["version"], algorithm))
                except (CustodyLocked, KeyError, TypeError, ValueError):
                    raise KeyTampered(f"key {name}@{entry['version']} fails authentication: not migrated") from None
                if _public_key_of(algorithm, secret) != _unb64(entry["public_key"]):
                    raise KeyTampered(f"key {name}@{entry['version']}: stored public key is not the key's own")
                entry["wrapped"] = _b64(wrap(self._kek, secret, entry_binding(name, algorithm, entry)))
            data["format"] = FORMAT
            self._write_json(path, data)
            log.info("keystore %s: key %s migrated to format %d", self.root, name, FORMAT)
        header["format"] = FORMAT
        header["check"] = _b64(wrap(self._kek, CHECK_PLAINTEXT, _check_aad(FORMAT)))
        self._write_json(self.root / HEADER, header)

    # -- files ---------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with os.fdopen(os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_header(self) -> dict[str, Any] | None:
        path = self.root / HEADER
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    @staticmethod
    def _write_json(path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _key_path(self, name: str) -> Path:
        if not KEY_NAME.match(name):
            raise KeyNotFound(f"invalid key name {name!r}")
        return self.root / f"{name}.key.json"

    def _load(self, name: str) -> dict[str, Any]:
        path = self._key_path(name)
        if not path.exists():
            raise KeyNotFound(f"no key named {name}")
        data: dict[str, Any] = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise KeyTampered(f"key file {path} is not in format {FORMAT} although the keystore is")
        return data

    def _open_entry(self, name: str, algorithm: str, entry: dict[str, Any]) -> bytes:
        """The private part, only if the entry's every field is as it was sealed."""
        try:
            return unwrap(self._kek, _unb64(entry["wrapped"]), entry_binding(name, algorithm, entry))
        except (CustodyLocked, KeyError, TypeError, ValueError):
            raise KeyTampered(
                f"key {name}@{entry.get('version')} fails authentication: its public key, enabled flag or another "
                "bound field (or the ciphertext) was changed on disk; refusing to use it"
            ) from None

    @staticmethod
    def _version(name: str, algorithm: str, entry: dict[str, Any]) -> KeyVersion:
        return KeyVersion(
            name=name,
            version=entry["version"],
            algorithm=KeyAlgorithm(algorithm),
            public_key_der=_unb64(entry["public_key"]),
            created_at=datetime.fromisoformat(entry["created_at"]),
            enabled=entry["enabled"] is True,
        )

    def _new_entry(self, name: str, algorithm: str, version: int) -> dict[str, Any]:
        secret = material.generate(algorithm)
        entry: dict[str, Any] = {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "enabled": True,
            "public_key": _b64(secret.public_key_der()),
        }
        entry["wrapped"] = _b64(wrap(self._kek, secret.secret_bytes(), entry_binding(name, algorithm, entry)))
        return entry

    # -- KeyCustody ----------------------------------------------------------------------------

    def create(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion:
        path = self._key_path(name)
        with self._locked():
            if path.exists():
                raise KeyExists(f"key {name} exists")
            entry = self._new_entry(name, algorithm, 1)
            self._write_json(path, {"format": FORMAT, "name": name, "algorithm": str(algorithm), "versions": [entry]})
        return self._version(name, algorithm, entry)

    def rotate(self, name: str) -> KeyVersion:
        with self._locked():
            data = self._load(name)
            number = max(v["version"] for v in data["versions"]) + 1
            entry = self._new_entry(name, data["algorithm"], number)
            data["versions"].append(entry)
            self._write_json(self._key_path(name), data)
        return self._version(name, data["algorithm"], entry)

    def disable(self, name: str, version: int) -> KeyVersion:
        with self._locked():
            data = self._load(name)
            for entry in data["versions"]:
                if entry["version"] == version:
                    secret = self._open_entry(name, data["algorithm"], entry)
                    entry["enabled"] = False
                    entry["wrapped"] = _b64(wrap(self._kek, secret, entry_binding(name, data["algorithm"], entry)))
                    self._write_json(self._key_path(name), data)
                    with self._mutex:
                        self._handles.pop(f"{name}@{version}", None)
                        self._macs.pop(f"{name}@{version}", None)
                    return self._version(name, data["algorithm"], entry)
        raise KeyNotFound(f"key {name} has no version {version}")

    def versions(self, name: str) -> list[KeyVersion]:
        """Every version, each authenticated (a few µs of SM4-GCM) before its public key or flag is believed."""
        data = self._load(name)
        for entry in data["versions"]:
            self._open_entry(name, data["algorithm"], entry)
        return [self._version(name, data["algorithm"], e) for e in data["versions"]]

    def names(self) -> list[str]:
        return sorted(p.name[: -len(".key.json")] for p in self.root.glob("*.key.json"))

    def get(self, ref: str) -> KeyVersion:
        name, _ = parse_ref(ref)
        return select(self.versions(name), ref)

    def signer(self, ref: str) -> SigningHandle:
        name, number = parse_ref(ref)
        stamp = self._stamp(name)
        if number is not None:
            # Fast path for pinned versions (CA keys are always pinned): valid while the key file
            # is unchanged, so a disable by another process is seen at the next signature.
            with self._mutex:
                cached = self._handles.get(ref)
            if cached is not None and cached[1] == stamp:
                return cached[0]
        version = self.get(ref)
        if version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a MAC key, not a signing key")
        if not version.enabled:
            raise KeyDisabled(f"key {version.ref} is disabled")
        handle = SigningHandle(version, material.load(version.algorithm, self._secret(version)))
        with self._mutex:
            self._handles[version.ref] = (handle, stamp)
        return handle

    def mac(self, ref: str) -> MacHandle:
        name, _ = parse_ref(ref)
        stamp = self._stamp(name)
        # Cached per reference while the key file is unchanged: a rotation or a disable (here or in
        # another process) rewrites the file, so the next call resolves `name` afresh.
        with self._mutex:
            cached = self._macs.get(ref)
        if cached is not None and cached[1] == stamp:
            return cached[0]
        version = self.get(ref)
        if not version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a signing key, not a MAC key")
        if not version.enabled:
            raise KeyDisabled(f"key {version.ref} is disabled")
        handle = MacHandle(version, material.load_mac(version.algorithm, self._secret(version)))
        with self._mutex:
            self._macs[ref] = (handle, stamp)
        return handle

    # -- moving a key to another keystore (the offline root: ca/ceremony_home.py) --------------------

    def copy_key_to(self, name: str, target: LocalKeystore) -> list[KeyVersion]:
        """Every version of `name`, rewrapped under `target`'s KEK with the same entry fields, so it keeps its
        name, versions and public keys there. The private part leaves this keystore only wrapped; it is in
        memory in between, as for a signature. A key `target` already holds must be this very key (same
        versions and public keys: a re-run after an interruption), else KeyExists."""
        with self._locked():
            data = self._load(name)
            secrets_by_version = {e["version"]: self._open_entry(name, data["algorithm"], e) for e in data["versions"]}
        with target._locked():
            path = target._key_path(name)
            if path.exists():
                held = target._load(name)
                same = [(e["version"], e["public_key"]) for e in held["versions"]] == [
                    (e["version"], e["public_key"]) for e in data["versions"]
                ]
                if not same or held["algorithm"] != data["algorithm"]:
                    raise KeyExists(f"the target keystore holds another key named {name}")
            else:
                entries = []
                for entry in data["versions"]:
                    copied = {k: entry[k] for k in ("version", "created_at", "enabled", "public_key")}
                    binding = entry_binding(name, data["algorithm"], copied)
                    copied["wrapped"] = _b64(wrap(target._kek, secrets_by_version[entry["version"]], binding))
                    entries.append(copied)
                target._write_json(
                    path, {"format": FORMAT, "name": name, "algorithm": data["algorithm"], "versions": entries}
                )
        copied_versions = target.versions(name)  # each opens under the target's KEK
        for version in copied_versions:
            if _public_key_of(version.algorithm, target._secret(version)) != version.public_key_der:
                raise KeyTampered(f"key {version.ref} did not survive the copy")
        return copied_versions

    def remove(self, name: str) -> None:
        """Delete every version of `name` from this keystore: overwritten, synced, unlinked. Copies of the
        file elsewhere (backups, snapshots, the filesystem's journal) are not reached: see README."""
        path = self._key_path(name)
        with self._locked():
            if not path.exists():
                raise KeyNotFound(f"no key named {name}")
            size = path.stat().st_size
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, os.urandom(size))
                os.fsync(fd)
            finally:
                os.close(fd)
            path.unlink()
            with self._mutex:
                for ref in [r for r in self._handles if parse_ref(r)[0] == name]:
                    del self._handles[ref]
                for ref in [r for r in self._macs if parse_ref(r)[0] == name]:
                    del self._macs[ref]

    def _secret(self, version: KeyVersion) -> bytes:
        data = self._load(version.name)
        entry = next(e for e in data["versions"] if e["version"] == version.version)
        return self._open_entry(version.name, data["algorithm"], entry)

    def _stamp(self, name: str) -> tuple[int, int, int]:
        try:
            st = os.stat(self._key_path(name))
            return (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            raise KeyNotFound(f"no key named {name}") from None


def _public_key_of(algorithm: str, secret: bytes) -> bytes:
    if KeyAlgorithm(algorithm).is_mac:
        return material.load_mac(algorithm, secret).public_key_der()
    return material.load(algorithm, secret).public_key_der()
