"""The ledger key in custody (`ledger.sm2`), its certificates from the national issuing CA, and its rotation.

Like the TSA units (signing/tsa.py), the ledger is a national service: its certificate comes from
`cn-100000-sm2` (never a region, whose withdrawal must not orphan every region's log) under the
`ledger` profile, which is infrastructure-only (no `csr: true` in policies/profiles.yaml: no CSR can
obtain it).

The key that signs is the newest enabled custody version that has a good certificate of that profile
and CA; `init` (or the first use) certifies version 1. `rotate_ledger_key` makes a new version and
certifies it, with its `ledger.handover_started` event in the certificate's transaction: a rotation is complete
exactly when that certificate exists, so every process (each re-reads the key within
`REFRESH_SECONDS`) switches to the new key then, and a rotation that failed half-way leaves the old key
signing. A **handover** follows: for `handover_seconds` after the new certificate was recorded,
checkpoints carry both keys in `signatures` (new key first, then the old one), so an auditor who trusts
only the old key learns the new one from a checkpoint both signed; after the window only the new key
signs and the old version is never asked for again (custody may disable it). Receipts and the
checkpoint's `key_id` are the new key's from the rotation on; older receipts verify with the old
certificate, which `certificate_for(key_id)` still finds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import pem, x509
from sqlalchemy import select

from ca.authority import CertificateAuthorityService
from keys.custody import KeyAlgorithm, KeyCustody, KeyDisabled, KeyExists, KeyNotFound, KeyVersion, SigningHandle
from keys.rotation import provisional_version
from ledger import sm2_signatures
from ledger.events import event_row
from ledger.key_events import RecordedCustody
from ledger.service import LedgerSigner
from store.models import Certificate

LEDGER_KEY = "ledger.sm2"
HANDOVER_STARTED = "ledger.handover_started"  # beside custody's own `key.rotated` event
LEDGER_CA = "cn-100000-sm2"
LEDGER_PROFILE = "ledger"
SUBJECT = {"country_name": "CN", "organization_name": "trustseal", "common_name": "trustseal ledger"}
DEFAULT_HANDOVER_SECONDS = 7 * 24 * 3600.0  # TRUSTSEAL_LEDGER_HANDOVER_SECONDS
REFRESH_SECONDS = 5.0  # how long a process keeps its view of the ledger key before re-reading it
MISS_SECONDS = 1.0  # certificate_for re-reads on an unknown key_id at most this often

_C = Certificate.__table__.c
_CERTIFICATES = (
    select(_C.der, _C.created_at)
    .where(_C.profile == LEDGER_PROFILE, _C.issuer_ca == LEDGER_CA, _C.status == "good")
    .order_by(_C.created_at)
)


@dataclass(frozen=True)
class Certified:
    """A custody version of the ledger key and its certificate."""

    version: KeyVersion
    certificate_der: bytes
    certified_at: datetime  # when the certificate row was recorded: the start of its handover

    @property
    def key_id(self) -> str:
        return sm2_signatures.key_id(self.version.public_key_der)


def _spki(der: bytes) -> bytes:
    info: bytes = x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"].dump()
    return info


class LedgerKey:
    """Callable: the current `LedgerSigner` (custody handle and certificate, plus the previous key's
    handle during a handover), provisioned on first use and re-read every `REFRESH_SECONDS`."""

    def __init__(
        self,
        custody: KeyCustody,
        ca: CertificateAuthorityService,
        handover_seconds: float = DEFAULT_HANDOVER_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.custody = custody
        self.ca = ca
        self.handover = timedelta(seconds=handover_seconds)
        self.refresh_seconds = refresh_seconds
        self._current: LedgerSigner | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self._known: list[Certified] = []  # certificate_for's view, re-read like the signer's
        self._known_at = self._known_until = 0.0

    def __call__(self) -> LedgerSigner:
        current = self._current
        if current is not None and time.monotonic() < self._until:
            return current
        with self._lock:
            if self._current is None or time.monotonic() >= self._until:
                self._current, self._until = self._load()
            return self._current

    def refresh(self) -> LedgerSigner:
        """Re-read custody and the certificates now (after a rotation in this process)."""
        with self._lock:
            self._current, self._until = self._load()
            self._known_until = 0.0
            return self._current

    def certified(self) -> list[Certified]:
        """Every custody version with a good ledger certificate, oldest version first."""
        try:
            versions = self.custody.versions(LEDGER_KEY)
        except KeyNotFound:
            return []
        by_key: dict[bytes, tuple[bytes, datetime]] = {}
        with self.ca.db.session() as session:
            for der, created_at in session.execute(_CERTIFICATES):  # oldest first
                spki = _spki(bytes(der))
                first = by_key.get(spki)  # the newest certificate, certified since the first one
                by_key[spki] = (bytes(der), first[1] if first else created_at)
        out = []
        for version in sorted(versions, key=lambda v: v.version):
            found = by_key.get(version.public_key_der)
            if found is not None:
                out.append(Certified(version, found[0], found[1]))
        return out

    def certificate_for(self, key_id: str) -> bytes | None:
        """The certificate of the ledger key `key_id` (current or earlier), to check old receipts and
        the old key's signature in a handover checkpoint. Public and unthrottled (`GET /v1/ledger/key`),
        so custody and the certificates are re-read once per refresh period, or on a miss at most once a
        second (another process's new key is found at once), not per lookup."""
        if time.monotonic() >= self._known_until:
            self._reread_known()
        found = next((item.certificate_der for item in self._known if item.key_id == key_id), None)
        if found is None and time.monotonic() - self._known_at >= MISS_SECONDS:
            self._reread_known()
            found = next((item.certificate_der for item in self._known if item.key_id == key_id), None)
        return found

    def _reread_known(self) -> None:
        self._known = self.certified()
        self._known_at = time.monotonic()
        self._known_until = self._known_at + self.refresh_seconds

    def provision(self) -> LedgerSigner:
        """The key and its certificate, made if missing (`trustseal init`, the app's start)."""
        return self.refresh()

    def _load(self) -> tuple[LedgerSigner, float]:
        now = datetime.now(UTC)
        enabled = [item for item in self.certified() if item.version.enabled]
        if not enabled:  # first use: create (if needed) and certify the newest version
            handle = self._handle()
            issued = self.ca.issue_for_key(handle.public_key_der, SUBJECT, LEDGER_PROFILE, LEDGER_CA, actor="ledger")
            return LedgerSigner(handle, issued.der), time.monotonic() + self.refresh_seconds
        current = enabled[-1]
        handle = self.custody.signer(current.version.ref)
        until = time.monotonic() + self.refresh_seconds
        handover: tuple[SigningHandle, ...] = ()
        ends = current.certified_at + self.handover
        if len(enabled) > 1 and now < ends:
            with contextlib.suppress(KeyDisabled, KeyNotFound):  # a disabled old key hands over nothing
                handover = (self.custody.signer(enabled[-2].version.ref),)
            until = min(until, time.monotonic() + max(0.0, (ends - now).total_seconds()))
        return LedgerSigner(handle, current.certificate_der, handover), until

    def _handle(self) -> SigningHandle:
        try:
            return self.custody.signer(LEDGER_KEY)
        except KeyNotFound:
            pass
        with contextlib.suppress(KeyExists):  # another process created it first
            self.custody.create(LEDGER_KEY, KeyAlgorithm.SM2)
        return self.custody.signer(LEDGER_KEY)


@dataclass(frozen=True)
class LedgerKeyRotation:
    key: str
    version: int
    previous_version: int
    key_id: str
    certificate_der: bytes
    event_id: int | None

    def as_json(self) -> dict[str, object]:
        """The rotation result of DESIGN.md (`POST /v1/keys/{key}/rotate`)."""
        return {
            "key": self.key,
            "version": self.version,
            "certificate_pem": pem.armor("CERTIFICATE", self.certificate_der).decode("ascii"),
            "previous_version": self.previous_version,
        }


def rotate_ledger_key(ledger_key: LedgerKey, *, actor: str) -> LedgerKeyRotation:
    """A new version of `ledger.sm2` (custody records its `key.rotated` event, with `actor`), certified
    by cn-100000-sm2 with a `ledger.handover_started` event {key, version, previous_version, key_id} in
    the certificate's transaction; the handover starts when that commits. The caller decides who may do
    this (issue 12's `POST /v1/keys/{key}/rotate`)."""
    previous = ledger_key.provision()
    custody = ledger_key.custody
    # the recording custody (ledger/key_events.py) logs `key.rotated`, naming the actor
    recording = custody.as_actor(actor) if isinstance(custody, RecordedCustody) else custody
    # the handover starts when the certificate commits; until then the new version is provisional
    with provisional_version(recording, LEDGER_KEY) as new:
        key_id = sm2_signatures.key_id(new.public_key_der)
        event = event_row(
            HANDOVER_STARTED,
            actor=actor,
            subject=LEDGER_KEY,
            payload={
                "key": LEDGER_KEY,
                "version": new.version,
                "previous_version": previous.handle.version.version,
                "key_id": key_id,
            },
        )
        issued = ledger_key.ca.issue_for_key(
            new.public_key_der, SUBJECT, LEDGER_PROFILE, LEDGER_CA, actor=actor, also=[event]
        )
    ledger_key.refresh()
    return LedgerKeyRotation(
        key=LEDGER_KEY,
        version=new.version,
        previous_version=previous.handle.version.version,
        key_id=key_id,
        certificate_der=issued.der,
        event_id=issued.event_id,
    )
