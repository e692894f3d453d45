"""Batch sealing as jobs: the caller uploads many PDFs at once, gets a job id at once, polls its progress
and downloads each sealed document. Work runs on a small thread pool; results and a manifest live under
`$TRUSTSEAL_HOME/jobs/{id}/`, so finished jobs survive a restart (a job cut off mid-way says so).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seal.errors import SealError
from signing.errors import SigningError
from signing.licences import LicenceRequest
from signing.pdf import Placement
from signing.service import Caller, SigningService

JOB_ID_BYTES = 12


class JobNotFound(SigningError):
    code = "job_not_found"
    status = 404


@dataclass(frozen=True)
class BatchItem:
    name: str
    data: bytes
    licence: LicenceRequest | None = None


class BatchJobs:
    def __init__(self, root: Path, signing: SigningService, workers: int = 2) -> None:
        self.root = root
        self.signing = signing
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")
        self._lock = threading.Lock()
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        """Jobs a previous process left running will never finish: say so, item by item."""
        if not self.root.exists():
            return
        for manifest_path in self.root.glob("*/manifest.json"):
            try:
                manifest = self._read(manifest_path.parent)
            except (OSError, ValueError):
                continue
            if manifest.get("state") != "running":
                continue
            for item in manifest["items"]:
                if item["state"] == "queued":
                    item.update(state="failed", code="job_interrupted", detail="the service stopped during the job")
                    manifest["failed"] += 1
            manifest["state"] = "interrupted"
            self._write(manifest_path.parent, manifest)

    def _dir(self, job_id: str) -> Path:
        if len(job_id) != 2 * JOB_ID_BYTES or not all(c in "0123456789abcdef" for c in job_id):
            raise JobNotFound(f"no job {job_id!r}")
        return self.root / job_id

    def submit(
        self, items: list[BatchItem], *, seal_id: str, caller: Caller, placement: Placement, level: str
    ) -> dict[str, Any]:
        # refuse at once what would fail every item (unknown seal, not permitted, inactive)
        self.signing.seals.for_signing(seal_id, role=caller.role, caller=caller.name, caller_seal_ids=caller.seal_ids)
        job_id = secrets.token_hex(JOB_ID_BYTES)
        directory = self.root / job_id
        directory.mkdir(parents=True, mode=0o700)
        manifest: dict[str, Any] = {
            "id": job_id,
            "owner": caller.actor,
            "seal_id": seal_id,
            "level": level,
            "created_at": datetime.now(UTC).isoformat(),
            "state": "running",
            "total": len(items),
            "done": 0,
            "failed": 0,
            "items": [{"index": i, "name": item.name, "state": "queued"} for i, item in enumerate(items)],
        }
        self._write(directory, manifest)
        for index, item in enumerate(items):
            self._pool.submit(self._seal_one, directory, index, item, seal_id, caller, placement, level)
        return manifest

    def _seal_one(
        self,
        directory: Path,
        index: int,
        item: BatchItem,
        seal_id: str,
        caller: Caller,
        placement: Placement,
        level: str,
    ) -> None:
        try:
            sealed = self.signing.seal_pdf(
                item.data, seal_id=seal_id, caller=caller, placement=placement, level=level, licence=item.licence
            )
            target = directory / f"{index}.pdf"
            temporary = target.with_suffix(".part")
            temporary.write_bytes(sealed.pdf)
            os.replace(temporary, target)  # a result is either whole or absent
            outcome: dict[str, Any] = {
                "state": "sealed",
                "event": sealed.event_id,
                "licence_id": sealed.licence_id,
                "document_sm3": sealed.document_sm3,
            }
        except (SealError, SigningError) as exc:
            outcome = {"state": "failed", "code": exc.code, "detail": exc.detail}
        except Exception:  # one bad document must not stop the job; the detail stays in the log
            outcome = {"state": "failed", "code": "internal_error", "detail": "internal error"}
        with self._lock:
            manifest = self._read(directory)
            manifest["items"][index].update(outcome)
            manifest["done" if outcome["state"] == "sealed" else "failed"] += 1
            if manifest["done"] + manifest["failed"] == manifest["total"]:
                manifest["state"] = "finished"
                manifest["finished_at"] = datetime.now(UTC).isoformat()
            self._write(directory, manifest)

    def status(self, job_id: str, owner: str | None) -> dict[str, Any]:
        directory = self._dir(job_id)
        if not directory.exists():
            raise JobNotFound(f"no job {job_id!r}")
        with self._lock:
            manifest = self._read(directory)
        if owner is not None and manifest["owner"] != owner:
            raise JobNotFound(f"no job {job_id!r}")  # other callers' jobs are not revealed
        return manifest

    def result(self, job_id: str, index: int, owner: str | None) -> bytes:
        manifest = self.status(job_id, owner)
        if not 0 <= index < manifest["total"] or manifest["items"][index]["state"] != "sealed":
            raise JobNotFound(f"item {index} of job {job_id} is not sealed")
        return (self._dir(job_id) / f"{index}.pdf").read_bytes()

    @staticmethod
    def _read(directory: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
        return data

    @staticmethod
    def _write(directory: Path, manifest: dict[str, Any]) -> None:
        temporary = directory / "manifest.json.part"
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        os.replace(temporary, directory / "manifest.json")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
