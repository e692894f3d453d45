"""Wire the layers together once per process: store, custody, CA service."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from api.approvals import POLICY_FILE, Approvals
from api.ratelimit import RateLimiter
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from ca.ledger_key import LedgerKey
from keys.custody import CustodyError, KeyCustody
from keys.local import LocalKeystore
from ledger.cosigning import Collector, CosignatureStore
from ledger.integrator import Integrator
from ledger.key_events import reconcile_key_events, recorded
from ledger.service import Ledger, origin_of
from ledger.witness import Witness
from ledger.witness_config import WitnessEndpoint, load_witness_endpoints, load_witnessed_logs
from policies.approvals import load_policy
from policies.profiles import default_profiles
from policies.seals import load_licence_type_codes
from seal.service import SealService
from signing.batch import BatchJobs
from signing.service import SigningService
from store.db import Database

if TYPE_CHECKING:
    from api.verification import ServiceVerification


@dataclass
class Context:
    settings: Settings
    db: Database
    custody: KeyCustody
    ca: CertificateAuthorityService
    seals: SealService = field(init=False)
    signing: SigningService = field(init=False)
    jobs: BatchJobs = field(init=False)
    verification: ServiceVerification = field(init=False)
    rate_limiter: RateLimiter = field(init=False)
    ocsp_rate_limiter: RateLimiter = field(init=False)  # its own budget: OCSP answers are cheap and frequent
    ledger: Ledger = field(init=False)
    ledger_key: LedgerKey = field(init=False)  # the ledger's signer (ca/ledger_key.py), also its older certificates
    integrator: Integrator | None = field(init=False, default=None)  # while the app runs (api/app.py lifespan)
    witness: Witness = field(init=False)  # this instance as a witness of the logs in witness.yaml
    witness_rate_limiter: RateLimiter = field(init=False)
    witnesses: list[WitnessEndpoint] = field(init=False)  # who cosigns our log (witnesses.yaml)
    cosignatures: CosignatureStore = field(init=False)
    collector: Collector | None = field(init=False, default=None)  # while the app runs, if witnesses are set

    def __post_init__(self) -> None:
        self.custody = recorded(self.custody, self.db)  # key changes are ledger events (ledger/key_events.py)
        self.ledger_key = LedgerKey(self.custody, self.ca, self.settings.ledger_handover_seconds)
        self.ledger = Ledger(self.db, origin_of(self.settings.public_url), self.ledger_key)
        self.seals = SealService(self.db, self.custody, self.ca)
        self.signing = SigningService(
            self.db,
            self.seals,
            self.settings.public_url,
            licence_type_codes=load_licence_type_codes(self.settings.home / "licence-types.yaml"),
        )
        self.jobs = BatchJobs(self.settings.home / "jobs", self.signing)
        from api.verification import ServiceVerification

        self.verification = ServiceVerification(self)
        self.rate_limiter = RateLimiter(self.settings.public_rate_per_minute)
        self.ocsp_rate_limiter = RateLimiter(self.settings.ocsp_rate_per_minute)

    @cached_property
    def approvals(self) -> Approvals:
        """The policy in $TRUSTSEAL_HOME/approvals.yaml (api/approvals.py), read on first use: the service
        reads it at start and refuses to start on a bad file; the local CLI's break-glass commands never
        need it, so a broken policy cannot lock operators out of the emergency path."""
        return Approvals(self.db, load_policy(self.settings.home / POLICY_FILE))
        self.witness = Witness(
            self.db,
            self.ledger.origin,
            lambda: self.ledger.signer().handle,
            load_witnessed_logs(self.settings.home / "witness.yaml"),
        )
        self.witness_rate_limiter = RateLimiter(self.settings.witness_rate_per_minute)
        self.witnesses = load_witness_endpoints(self.settings.home / "witnesses.yaml")
        self.cosignatures = CosignatureStore(self.db)

    @property
    def issuance_on_event_loop(self) -> bool:
        """True for the embedded default (SQLite + local keystore): issuance there is ~1.5 ms of CPU
        (most of it in C) with no network wait, and a thread-pool hop costs this much again in GIL
        handoffs without buying any parallelism. With PostgreSQL or Vault custody the request waits
        on the network, and it goes to the thread pool so that the event loop keeps serving."""
        return self.settings.database_url.startswith("sqlite") and self.settings.keystore == "local"

    def reconcile_keys(self) -> list[int]:
        """`key.discovered` for custody key versions the log does not name (a commit lost after custody
        changed, or keys older than key events): run at `trustseal init` and at every service start."""
        return reconcile_key_events(self.db, self.custody)

    def close(self) -> None:
        self.db.dispose()


def _demo_passphrase(path: Path, create: bool) -> str:
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise CustodyError(
            f"no key passphrase: set TRUSTSEAL_KEY_PASSPHRASE or run `trustseal init` (demo passphrase file {path})"
        )
    passphrase = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(passphrase + "\n")
    print(
        f"WARNING: generated a DEMO key-encryption passphrase in {path}. It protects every private key in "
        "this keystore; production must supply TRUSTSEAL_KEY_PASSPHRASE or use the vault keystore.",
        file=sys.stderr,
    )
    return passphrase


def open_custody(settings: Settings, create: bool = False) -> KeyCustody:
    if settings.keystore == "vault":
        from keys.vault import VaultKeystore

        return VaultKeystore.from_env()
    if settings.keystore != "local":
        raise CustodyError(f"unknown keystore {settings.keystore!r}: use local or vault")
    passphrase = settings.passphrase or _demo_passphrase(settings.demo_passphrase_file, create)
    return LocalKeystore(settings.keystore_dir, passphrase=passphrase)


def open_context(settings: Settings | None = None, *, create: bool = False, migrate: bool = True) -> Context:
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    custody = recorded(open_custody(settings, create=create), db)
    ca = CertificateAuthorityService(db, custody, default_profiles(), settings.public_url)
    return Context(settings=settings, db=db, custody=custody, ca=ca)
