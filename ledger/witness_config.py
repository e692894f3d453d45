"""Witness configuration in `$TRUSTSEAL_HOME`, read once at start (README, "Witnesses").

`witness.yaml` — the logs this instance witnesses (its `POST /v1/witness/add-checkpoint`):

    logs:
      - origin: 127.0.0.1:8001/ledger      # the log's origin line, exactly
        certificate: |                     # its ledger key: certificate or public key, PEM
          -----BEGIN CERTIFICATE-----
          ...
        hash: sm3                          # optional, the log's tree hash (sm3 or sha256)

`witnesses.yaml` — the witnesses this instance's own log asks for cosignatures:

    witnesses:
      - name: 127.0.0.1:8002/ledger        # the witness's name (a trustseal witness: its origin)
        url: http://127.0.0.1:8002         # its API; add-checkpoint is POSTed under /v1/witness/
        certificate: |                     # its (ledger) key, PEM
          -----BEGIN CERTIFICATE-----

A key may also be given as `certificate_file` (a path, relative to the home) and, during a log's key
handover, as a list `certificates`. Keys are pinned as in C2SP: the certificate's chain and validity are
not consulted. Any mistake stops the start with a message naming the file and the entry.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ledger import sm2_signatures
from ledger.checkpoint import check_origin
from ledger.errors import LedgerError
from ledger.merkle import HASHERS, TreeHasher

MAX_ORIGIN = 128  # the events' subject column, where alarms name the log


class WitnessConfigError(LedgerError):
    code = "witness_config_invalid"


@dataclass(frozen=True)
class WitnessedLog:
    """A log this instance witnesses: its origin, pinned keys (SPKI DER) and tree hash."""

    origin: str
    keys: tuple[bytes, ...]
    hasher: TreeHasher


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness of this instance's own log."""

    name: str
    url: str
    key: bytes  # SPKI DER

    @property
    def key_id(self) -> str:
        return sm2_signatures.key_id(self.key)

    @property
    def submission_url(self) -> str:
        return f"{self.url}/v1/witness/add-checkpoint"


def _entries(path: Path, top: str) -> list[Any]:
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise WitnessConfigError(f"{path}: not YAML: {exc}") from None
    if raw is None:
        return []
    if not isinstance(raw, Mapping) or set(raw) != {top} or not isinstance(raw[top], list):
        raise WitnessConfigError(f"{path}: a mapping with one key, {top!r}, holding a list")
    return list(raw[top])


def _keys(path: Path, where: str, entry: Mapping[str, Any]) -> tuple[bytes, ...]:
    given = [name for name in ("certificate", "certificates", "certificate_file") if name in entry]
    if len(given) != 1:
        raise WitnessConfigError(f"{path}: {where}: give exactly one of certificate, certificates, certificate_file")
    if "certificate_file" in entry:
        if not isinstance(entry["certificate_file"], str):
            raise WitnessConfigError(f"{path}: {where}: certificate_file is a path")
        file = path.parent / entry["certificate_file"]
        try:
            texts = [file.read_text(encoding="ascii")]
        except (OSError, UnicodeDecodeError) as exc:
            raise WitnessConfigError(f"{path}: {where}: cannot read {file}: {exc}") from None
    elif "certificates" in entry:
        texts = entry["certificates"]
        if not isinstance(texts, list) or not texts:
            raise WitnessConfigError(f"{path}: {where}: certificates is a non-empty list of PEM texts")
    else:
        texts = [entry["certificate"]]
    keys: list[bytes] = []
    for text in texts:
        if not isinstance(text, str) or "-----BEGIN" not in text:
            raise WitnessConfigError(f"{path}: {where}: a key is a PEM certificate or public key")
        try:
            keys.append(sm2_signatures.public_key_der(text.encode("ascii")))
        except (LedgerError, UnicodeEncodeError) as exc:
            raise WitnessConfigError(f"{path}: {where}: {exc}") from None
    return tuple(keys)


def _origin(path: Path, where: str, value: object) -> str:
    try:
        origin = check_origin(value)
    except LedgerError as exc:
        raise WitnessConfigError(f"{path}: {where}: {exc}") from None
    if len(origin) > MAX_ORIGIN:
        raise WitnessConfigError(f"{path}: {where}: an origin has at most {MAX_ORIGIN} characters")
    return origin


def _mapping(path: Path, where: str, entry: object, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise WitnessConfigError(f"{path}: {where}: a mapping")
    unknown = set(entry) - allowed
    if unknown:
        raise WitnessConfigError(f"{path}: {where}: unknown keys {sorted(unknown)} (known: {sorted(allowed)})")
    return entry


def load_witnessed_logs(path: Path) -> dict[str, WitnessedLog]:
    """`witness.yaml`: the logs this instance cosigns, by origin. No file: none (every origin is unknown)."""
    logs: dict[str, WitnessedLog] = {}
    allowed = {"origin", "certificate", "certificates", "certificate_file", "hash"}
    for n, raw in enumerate(_entries(path, "logs")):
        where = f"logs[{n}]"
        entry = _mapping(path, where, raw, allowed)
        origin = _origin(path, where, entry.get("origin"))
        if origin in logs:
            raise WitnessConfigError(f"{path}: {where}: origin {origin!r} is listed twice")
        hash_name = entry.get("hash", "sm3")
        if hash_name not in HASHERS:
            raise WitnessConfigError(f"{path}: {where}: hash {hash_name!r} is not one of {sorted(HASHERS)}")
        logs[origin] = WitnessedLog(origin, _keys(path, where, entry), HASHERS[hash_name])
    return logs


def load_witness_endpoints(path: Path) -> list[WitnessEndpoint]:
    """`witnesses.yaml`: the witnesses asked to cosign this instance's checkpoints. No file: none."""
    endpoints: list[WitnessEndpoint] = []
    allowed = {"name", "url", "certificate", "certificates", "certificate_file"}
    for n, raw in enumerate(_entries(path, "witnesses")):
        where = f"witnesses[{n}]"
        entry = _mapping(path, where, raw, allowed)
        name = _origin(path, where, entry.get("name"))
        url = entry.get("url")
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise WitnessConfigError(f"{path}: {where}: url must be an http(s) URL without a query, not {url!r}")
        keys = _keys(path, where, entry)
        if len(keys) != 1:
            raise WitnessConfigError(f"{path}: {where}: a witness has one key")
        if any(known.name == name for known in endpoints):
            raise WitnessConfigError(f"{path}: {where}: witness {name!r} is listed twice")
        endpoints.append(WitnessEndpoint(name, str(url).rstrip("/"), keys[0]))
    return endpoints
