"""Sealing documents as a service: policy check, seal material from seal/, the PDF signature, the event.

Nothing is recorded unless the sealed document exists; a refused request leaves no row behind.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gm.sm3 import sm3
from ledger.events import record_event
from seal.service import SealService
from signing.keyword import find_keyword
from signing.pdf import Placement, seal_pdf
from store.db import Database

LEVELS = ("B-B", "B-T", "B-LT")
_HASHER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sm3")


@dataclass(frozen=True)
class Caller:
    role: str
    name: str
    seal_ids: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


@dataclass(frozen=True)
class SealedDocument:
    pdf: bytes
    event_id: int
    seal_id: str
    certificate_serial: str
    field_name: str
    page: int
    document_sm3: str
    licence_id: str | None = None


class SigningService:
    def __init__(self, db: Database, seals: SealService) -> None:
        self.db = db
        self.seals = seals

    def seal_pdf(
        self,
        data: bytes,
        *,
        seal_id: str,
        caller: Caller,
        placement: Placement,
        level: str = "B-B",
        licence_id: str | None = None,
    ) -> SealedDocument:
        # SM3 of the input for the event, hashed on another core while pyHanko lays out the signature
        # (hashlib releases the GIL on large buffers; SM3 is ~5x slower than SHA-256 here)
        input_digest = _HASHER.submit(sm3, data) if len(data) > 1 << 20 else None
        material = self.seals.for_signing(
            seal_id, role=caller.role, caller=caller.name, caller_seal_ids=caller.seal_ids
        )
        sealed = seal_pdf(
            data,
            handle=material.handle,
            certificate=material.certificate,
            chain=material.chain,
            seal_der=material.seal.esl_der,
            picture_png=material.seal.picture_png,
            placement=placement,
            pades=level != "B-B",
            find_keyword=find_keyword,
            reason="电子印章 / electronic seal",
        )
        in_sm3 = (input_digest.result() if input_digest is not None else sm3(data)).hex()
        with self.db.session() as session:
            event_id = record_event(
                session,
                "document.sealed",
                actor=caller.actor,
                subject=seal_id,
                payload={
                    "seal_id": seal_id,
                    "certificate_serial": material.seal.certificate_serial,
                    "document_sm3": in_sm3,
                    "signed_digest": sealed.document_digest.hex(),  # the CMS messageDigest of the sealed file
                    "field": sealed.field_name,
                    "page": sealed.page,
                    "level": level,
                    "licence_id": licence_id,
                },
            )
        return SealedDocument(
            pdf=sealed.pdf,
            event_id=event_id,
            seal_id=seal_id,
            certificate_serial=material.seal.certificate_serial,
            field_name=sealed.field_name,
            page=sealed.page,
            document_sm3=in_sm3,
            licence_id=licence_id,
        )
