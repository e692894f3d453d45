"""The ledger export (`trustseal ledger export`, read back by `trustseal ledger verify --export`).

JSON lines, UTF-8. The first line is a header, every other line one entry exactly as
`GET /v1/ledger/entries` gives it, in index order:

```
{"format": "trustseal-ledger-export/v1",
 "checkpoint": {…the signed checkpoint, with its signatures and cosignatures…},
 "start": S, "end": E,                 // the entries that follow: [S, E), E ≤ checkpoint size
 "frontier": [hex…],                   // hashes of the perfect subtrees of [0, S), largest first ([] when S = 0)
 "prefix_proof": [hex…],               // RFC 9162 consistency proof from E to the checkpoint's size ([] when equal)
 "certificates": [PEM…]}               // the ledger certificate of every key in the checkpoint's signatures
{"index": S, "leaf_input": "<base64>", "entry": {…}}
…
{"index": E-1, …}
```

Nothing in it is trusted by the reader: the frontier and the entries give the root of [0, E), which
must be the checkpoint's (E = size) or be proven its prefix by `prefix_proof`; certificates count only
for the key ids they hash to, and only beside a trusted key (ledger/audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ledger.audit import AuditFailure
from ledger.audit import key_of_certificate as _key_of_certificate
from ledger.errors import CheckpointError

FORMAT = "trustseal-ledger-export/v1"


def header(
    checkpoint: Mapping[str, Any],
    *,
    start: int,
    end: int,
    frontier: list[bytes],
    prefix_proof: list[bytes],
    certificates: list[str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "checkpoint": dict(checkpoint),
        "start": start,
        "end": end,
        "frontier": [value.hex() for value in frontier],
        "prefix_proof": [value.hex() for value in prefix_proof],
        "certificates": certificates,
    }


def write(out: IO[str], head: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> int:
    """Write the header and the entries; returns how many entries were written."""
    out.write(json.dumps(head, ensure_ascii=False, separators=(",", ":")) + "\n")
    count = 0
    for entry in entries:
        out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    if count != head["end"] - head["start"]:
        raise ValueError(f"wrote {count} entries for [{head['start']}, {head['end']})")
    return count


def _hexes(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AuditFailure("export_malformed", f"header {what} must be a list of hex strings")
    try:
        return [bytes.fromhex(item) for item in value]
    except ValueError:
        raise AuditFailure("export_malformed", f"header {what} holds something that is not hex") from None


class ExportSource:
    """A `LogSource` (ledger/audit.py) over an export file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open(encoding="utf-8") as fh:
            first = fh.readline()
        try:
            head = json.loads(first)
        except ValueError:
            raise AuditFailure("export_malformed", f"{path}: the first line is not a JSON header") from None
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise AuditFailure("export_malformed", f"{path}: not a {FORMAT} file")
        start, end = head.get("start"), head.get("end")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end)):
            raise AuditFailure("export_malformed", "header start and end must be non-negative integers")
        assert isinstance(start, int) and isinstance(end, int)
        self.head = head
        self.start, self.end = start, end
        self._frontier = _hexes(head.get("frontier"), "frontier")
        self._prefix_proof = _hexes(head.get("prefix_proof"), "prefix_proof")
        self._certificates: dict[str, bytes] = {}
        certificates = head.get("certificates")
        if not isinstance(certificates, list):
            raise AuditFailure("export_malformed", "header certificates must be a list of PEM certificates")
        for text in certificates:
            try:
                key_id, _ = _key_of_certificate(str(text).encode("ascii"))
            except (CheckpointError, UnicodeError):
                continue  # an unreadable certificate simply vouches for no key
            self._certificates[key_id] = str(text).encode("ascii")

    def checkpoint(self) -> object:
        return self.head.get("checkpoint")

    def certificate(self, key_id: str) -> bytes | None:
        return self._certificates.get(key_id)

    def span(self, size: int) -> tuple[int, int]:
        return self.start, self.end

    def frontier(self) -> list[bytes]:
        return self._frontier

    def entries(self, start: int, end: int) -> Iterator[Mapping[str, Any]]:
        with self.path.open(encoding="utf-8") as fh:
            fh.readline()
            for number, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise AuditFailure("entries_malformed", f"line {number} is not JSON") from None
                yield item

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        checkpoint = self.head.get("checkpoint")
        size = checkpoint.get("size") if isinstance(checkpoint, dict) else None
        return self._prefix_proof if (first, second) == (self.end, size) else None

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        return None
