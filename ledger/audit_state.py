"""The auditor's memory (`trustseal ledger verify --state FILE`): per log origin, the last checkpoint it
verified and the ledger keys it trusts. It only moves forward after a run that verified everything,
and it is written atomically (temporary file, fsync, rename), so a crash leaves the old state whole.

```json
{"format": "trustseal-ledger-audit-state/v1",
 "logs": {"<origin>": {"hash", "size", "root_hash" (hex), "timestamp",
                       "trusted_keys": {"<key_id>": "<base64 SubjectPublicKeyInfo DER>"},
                       "checkpoint": {…the checkpoint as served…}}}}
```
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from ledger import sm2_signatures
from ledger.audit import LogState

FORMAT = "trustseal-ledger-audit-state/v1"


class StateError(ValueError):
    """A state file that cannot be read: the auditor must look at it, not have it overwritten."""


def load(path: Path) -> dict[str, LogState]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateError(f"{path} is not a {FORMAT} file")
        logs: dict[str, LogState] = {}
        for origin, log in data["logs"].items():
            keys = {key_id: base64.b64decode(spki, validate=True) for key_id, spki in log["trusted_keys"].items()}
            for key_id, spki in keys.items():
                if sm2_signatures.key_id(sm2_signatures.public_key_der(spki)) != key_id:
                    raise StateError(f"{path}: the trusted key {key_id} of {origin} does not hash to its id")
            logs[origin] = LogState(
                origin=origin,
                hash=str(log["hash"]),
                size=int(log["size"]),
                root_hash=bytes.fromhex(log["root_hash"]),
                timestamp=str(log["timestamp"]),
                trusted_keys=keys,
                checkpoint=dict(log.get("checkpoint") or {}),
            )
        return logs
    except StateError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"cannot read the state file {path}: {exc}") from None


def save(path: Path, logs: dict[str, LogState]) -> None:
    """Write the whole state atomically."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "logs": {
            origin: {
                "hash": log.hash,
                "size": log.size,
                "root_hash": log.root_hash.hex(),
                "timestamp": log.timestamp,
                "trusted_keys": {
                    key_id: base64.b64encode(spki).decode("ascii") for key_id, spki in sorted(log.trusted_keys.items())
                },
                "checkpoint": log.checkpoint,
            }
            for origin, log in sorted(logs.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
