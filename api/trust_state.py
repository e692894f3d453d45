"""The highest trust-list sequence a local home has accepted, per publisher (verify.trust.publisher):
the CLI never goes back to an older list, which an attacker could replay to resurrect a withdrawn CA.
A small JSON file in $TRUSTSEAL_HOME, replaced atomically (write a temporary file, then rename).

Also the trust-list signer handovers the home has accepted (`FOLLOWED`: old signer fingerprint → the
new signers it handed over to, verify/trust.py): a verifier that pins the old signer keeps following
the new one in later runs, without the handover list at hand."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

FILE = "trust-list-sequences.json"
FOLLOWED = "trust-list-signers.json"


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
    _write(home, FILE, data)


def _read_followed(home: Path) -> dict[str, list[str]]:
    path = home / FOLLOWED
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}): repair or remove it") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise ValueError(f"{path} is not a map of signer to the signers it handed over to: repair or remove it")
    return data


def followed(home: Path, pins: tuple[str, ...]) -> tuple[str, ...]:
    """Every signer the pinned ones handed over to, directly or through later handovers."""
    data = _read_followed(home)
    found: list[str] = []
    todo = list(pins)
    while todo:
        for successor in data.get(todo.pop(), []):
            if successor not in found and successor not in pins:
                found.append(successor)
                todo.append(successor)
    return tuple(found)


def remember_handover(home: Path, previous: str, successor: str) -> None:
    """Record that signer `previous` handed over to `successor` (an accepted handover list)."""
    data = _read_followed(home)
    if successor in data.get(previous, []):
        return
    data[previous] = [*data.get(previous, []), successor]
    _write(home, FOLLOWED, data)


def _write(home: Path, name: str, data: object) -> None:
    fd, temporary = tempfile.mkstemp(prefix=".trust-list-", dir=home)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, home / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
