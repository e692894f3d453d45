"""The highest trust-list sequence a local home has accepted, per publisher (verify.trust.publisher):
the CLI never goes back to an older list, which an attacker could replay to resurrect a withdrawn CA.
A small JSON file in $TRUSTSEAL_HOME, replaced atomically (write a temporary file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

FILE = "trust-list-sequences.json"


def _read(home: Path) -> dict[str, int]:
    path = home / FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}): repair or remove it") from None
    if not isinstance(data, dict) or not all(type(v) is int for v in data.values()):
        raise ValueError(f"{path} is not a map of publisher to sequence: repair or remove it")
    return data


def highest(home: Path, publisher: str) -> int:
    """The highest sequence accepted from `publisher` in this home (0: none yet)."""
    return _read(home).get(publisher, 0)


def remember(home: Path, publisher: str, sequence: int) -> None:
    """Record `sequence` if it is higher than what the home remembers."""
    data = _read(home)
    if sequence <= data.get(publisher, 0):
        return
    data[publisher] = sequence
    fd, temporary = tempfile.mkstemp(prefix=".trust-list-", dir=home)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, home / FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
