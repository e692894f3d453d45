"""Sealing documents as a service: policy check, seal material from seal/, the PDF signature, the event.

Nothing is recorded unless the sealed document exists; a refused request leaves no row behind.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from gm.sm3 import sm3
from ledger.events import record_event
from seal.service import SealService
from signing import ltv
from signing.keyword import find_keyword
from signing.licences import LicenceExists, LicenceRegistry, LicenceRequest, bind_to_seal, xmp
from signing.pdf import Placement, seal_pdf
from signing.tsa import TimestampAuthority, signature_timestamp_attribute
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
    def __init__(
        self,
        db: Database,
        seals: SealService,
        public_url: str = "http://127.0.0.1:8000",
        tsa: TimestampAuthority | None = None,
        licence_type_codes: dict[str, frozenset[str]] | None = None,
    ) -> None:
        """`licence_type_codes`: per seal, other departments' licence types it may issue (policies/seals.py)."""
        self.db = db
        self.seals = seals
        self.tsa = tsa or TimestampAuthority(db, seals.custody, seals.ca)
        self.licences = LicenceRegistry(db, seals.ca.pii)
        self.licence_type_codes = licence_type_codes or {}
        self.public_url = public_url.rstrip("/")

    def seal_pdf(
        self,
        data: bytes,
        *,
        seal_id: str,
        caller: Caller,
        placement: Placement,
        level: str = "B-B",
        licence: LicenceRequest | None = None,
        certify: bool = False,
        allow_active_content: bool = False,
    ) -> SealedDocument:
        # SM3 of the input for the event, hashed on another core while pyHanko lays out the signature
        # (hashlib releases the GIL on large buffers; SM3 is ~5x slower than SHA-256 here)
        input_digest = _HASHER.submit(sm3, data) if len(data) > 1 << 20 else None
        material = self.seals.for_signing(
            seal_id, role=caller.role, caller=caller.name, caller_seal_ids=caller.seal_ids
        )
        if licence is not None:  # the seal's own organisation's licence, and a new one
            allowed = self.licence_type_codes.get(seal_id, frozenset())
            bind_to_seal(licence, seal_id=seal_id, certificate=material.certificate, allowed_type_codes=allowed)
            self.licences.ensure_new(licence)
        family = str(material.handle.algorithm)
        timestamping = (lambda: signature_timestamp_attribute(self.tsa, family)) if level in ("B-T", "B-LT") else None
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
            xmp=xmp(licence, f"{self.public_url}/v1/licences/{licence.identifier}/status") if licence else None,
            reason="电子印章 / electronic seal",
            certify=certify,
            allow_active_content=allow_active_content,
            unsigned_later=timestamping,
        )
        pdf = sealed.pdf
        if level == "B-LT":
            unit = self.tsa.unit(str(material.handle.algorithm))
            certs, ocsps, crls = ltv.material(
                self.seals.ca,
                [(material.certificate, material.chain), (unit.certificate_der, unit.chain)],
            )
            pdf = ltv.add_dss(pdf, sealed.cms, certs, ocsps, crls)
        in_sm3 = (input_digest.result() if input_digest is not None else sm3(data)).hex()
        licence_id = licence.identifier if licence is not None else None
        with self.db.session() as session:
            if licence is not None:
                try:
                    self.licences.insert(
                        session, licence, seal_id=seal_id, owner=caller.name, actor=caller.actor, document_sm3=in_sm3
                    )
                except IntegrityError:
                    raise LicenceExists(f"licence {licence.identifier} exists") from None
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
            pdf=pdf,
            event_id=event_id,
            seal_id=seal_id,
            certificate_serial=material.seal.certificate_serial,
            field_name=sealed.field_name,
            page=sealed.page,
            document_sm3=in_sm3,
            licence_id=licence_id,
        )
