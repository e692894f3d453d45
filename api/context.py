"""Wire the layers together once per process: store, custody, CA service."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from api import home
from api.ratelimit import RateLimiter
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from ca.ledger_key import LedgerKey
from keys.custody import CustodyError, KeyCustody
from keys.local import LocalKeystore
from ledger.integrator import Integrator
from ledger.service import Ledger, origin_of
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
    ledger: Ledger = field(init=False)
    integrator: Integrator | None = field(init=False, default=None)  # while the app runs (api/app.py lifespan)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.db, origin_of(self.settings.public_url), LedgerKey(self.custody, self.ca))
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

    @property
    def issuance_on_event_loop(self) -> bool:
        """True for the embedded default (SQLite + local keystore): issuance there is ~1.5 ms of CPU
        (most of it in C) with no network wait, and a thread-pool hop costs this much again in GIL
        handoffs without buying any parallelism. With PostgreSQL or Vault custody the request waits
        on the network, and it goes to the thread pool so that the event loop keeps serving."""
        return self.settings.database_url.startswith("sqlite") and self.settings.keystore == "local"

    def close(self) -> None:
        self.db.dispose()


def open_custody(settings: Settings, create: bool = False) -> KeyCustody:
    home.refuse_demo_in_production(settings)
    if settings.keystore == "vault":
        from keys.vault import VaultKeystore

        return VaultKeystore.from_env()
    if settings.keystore != "local":
        raise CustodyError(f"unknown keystore {settings.keystore!r}: use local or vault")
    return LocalKeystore(settings.keystore_dir, passphrase=home.key_passphrase(settings, create))


def open_context(
    settings: Settings | None = None, *, create: bool = False, migrate: bool = True, serving: bool = False
) -> Context:
    """`serving`: the service's start, which refuses a home others can reach (api/home.py)."""
    settings = settings or Settings.from_env()
    with home.private_umask():
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if serving:
        home.refuse_exposed(settings)
        home.refuse_unfit_for_production(settings)
        if warning := home.demo_warning(settings):
            print(warning, file=sys.stderr)
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    custody = open_custody(settings, create=create)
    ca = CertificateAuthorityService(db, custody, default_profiles(), settings.public_url)
    return Context(settings=settings, db=db, custody=custody, ca=ca)
