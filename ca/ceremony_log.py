"""The ceremony home's own record of what it signed: `ceremony-log.jsonl`, append only.

One JSON line per signature, written and fsynced *before* the output file is written (a crash in between
leaves a record of a signature nobody received, never a signature without a record): time, request id,
operation, kind, CA, SHA-256 of the TBS, and the CRL number with its entry serials or the certificate's
serial and subject. Each line carries `prev`, the SHA-256 of the line before it, so an edited or removed
line shows when the log is read. `trustseal ca ceremony log --ceremony-home DIR` prints it, to reconcile
with the online `ceremony.completed` events.

The home consults it before signing (`refuse`): a CRL number not above the last it signed for that CA, a
CRL that drops a serial an earlier CRL of the same list (issuer key and distribution point) listed, a
certificate serial it signed before, a request id it signed with another TBS.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca import ceremony_policy as policy
from ca.ceremony_policy import RequestRefused
from ca.errors import CAError

LOG = "ceremony-log.jsonl"
GENESIS = "0" * 64


class CeremonyLogBroken(CAError):
    code = "ceremony_log_broken"
    status = 422


@dataclass
class History:
    """What the log says this home signed, per CA."""

    crl_number: dict[str, int] = field(default_factory=dict)
    crl_serials: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (CA, list scope) -> serials
    certificate_serials: set[str] = field(default_factory=set)
    requests: dict[str, str] = field(default_factory=dict)  # request id -> TBS SHA-256


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def read(home: Path) -> list[dict[str, Any]]:
    """Every record, its `prev` chain checked (`ceremony_log_broken` if a line was edited or removed)."""
    path = Path(home) / LOG
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    previous = GENESIS
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            raise CeremonyLogBroken(f"{path}:{number} is not a JSON line") from None
        if not isinstance(record, dict) or record.get("prev") != previous:
            raise CeremonyLogBroken(f"{path}:{number} does not follow the line before it (edited or removed)")
        records.append(record)
        previous = _line_hash(line)
    return records


def history(records: list[dict[str, Any]]) -> History:
    seen = History()
    for record in records:
        ca = str(record.get("ca"))
        if record.get("request"):
            seen.requests[str(record["request"])] = str(record.get("tbs_sha256"))
        if record.get("kind") == "crl":
            seen.crl_number[ca] = max(seen.crl_number.get(ca, 0), int(record.get("crl_number") or 0))
            scope = (ca, str(record.get("scope") or ""))
            seen.crl_serials.setdefault(scope, set()).update(record.get("entries") or ())
        elif record.get("serial"):
            seen.certificate_serials.add(str(record["serial"]))
    return seen


def record_for(
    request_id: str | None, operation: str, ca: str, tbs: x509.TbsCertificate | asn1_crl.TbsCertList, tbs_der: bytes
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": request_id,
        "operation": operation,
        "kind": "crl" if isinstance(tbs, asn1_crl.TbsCertList) else "certificate",
        "ca": ca,
        "tbs_sha256": policy.tbs_sha256(tbs_der),
    }
    if isinstance(tbs, asn1_crl.TbsCertList):
        record["crl_number"] = policy.crl_number(tbs)
        record["scope"] = policy.crl_scope(tbs)
        record["entries"] = policy.crl_serials(tbs)
    else:
        record["serial"] = f"{tbs['serial_number'].native:x}"
        record["subject"] = tbs["subject"].human_friendly
    return record


def refuse(seen: History, record: dict[str, Any]) -> None:
    """RequestRefused when `record` contradicts what the home signed before. Signing the very same TBS for
    the same request again (a lost output file) is allowed: it repeats, it does not contradict."""
    request_id, digest, ca = record.get("request"), record["tbs_sha256"], record["ca"]
    if request_id is not None and request_id in seen.requests:
        if seen.requests[request_id] != digest:
            raise RequestRefused(
                f"request {request_id} was signed before with another TBS ({seen.requests[request_id]})"
            )
        return
    if record["kind"] == "crl":
        last = seen.crl_number.get(ca, 0)
        if int(record["crl_number"]) <= last:
            raise RequestRefused(f"CRL number {record['crl_number']} of {ca} is not above {last}, the last signed here")
        dropped = seen.crl_serials.get((ca, str(record.get("scope") or "")), set()) - set(record["entries"])
        if dropped:
            raise RequestRefused(f"the CRL drops serial(s) an earlier CRL of {ca} listed: {', '.join(sorted(dropped))}")
    elif record["serial"] in seen.certificate_serials:
        raise RequestRefused(f"certificate serial {record['serial']} was signed here before")


def append(home: Path, record: dict[str, Any]) -> None:
    """Append one line (chained to the last) and fsync file and folder before returning."""
    path = Path(home) / LOG
    records_text = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    read(home)  # never extend a broken log
    previous = _line_hash(records_text[-1]) if records_text else GENESIS
    line = json.dumps({**record, "prev": previous}, sort_keys=True, ensure_ascii=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    folder = os.open(Path(home), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
