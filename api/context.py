"""Wire the layers together once per process: store, custody, CA service."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from api import home
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
        self.witness = Witness(
            self.db,
            self.ledger.origin,
            lambda: self.ledger.signer().handle,
            load_witnessed_logs(self.settings.home / "witness.yaml"),
        )
        self.witness_rate_limiter = RateLimiter(self.settings.witness_rate_per_minute)
        self.witnesses = load_witness_endpoints(self.settings.home / "witnesses.yaml")
        self.cosignatures = CosignatureStore(self.db)

    @cached_property
    def approvals(self) -> Approvals:
        """The policy in $TRUSTSEAL_HOME/approvals.yaml (api/approvals.py), read on first use: the service
        reads it at start and refuses to start on a bad file; the local CLI's break-glass commands never
        need it, so a broken policy cannot lock operators out of the emergency path."""
        return Approvals(self.db, load_policy(self.settings.home / POLICY_FILE))

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


def open_custody(settings: Settings, create: bool = False) -> KeyCustody:
    home.refuse_demo_in_production(settings)
    if settings.keystore == "vault":
        from keys.vault import VaultKeystore

        return VaultKeystore.from_env()
    if settings.keystore == "pkcs11":
        from keys.pkcs11 import Pkcs11Keystore

        return Pkcs11Keystore.from_env()
    if settings.keystore != "local":
        raise CustodyError(f"unknown keystore {settings.keystore!r}: use local, vault or pkcs11")
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
    custody = recorded(open_custody(settings, create=create), db)
    ca = CertificateAuthorityService(
        db, custody, default_profiles(), settings.public_url, crl_partition_size=settings.crl_partition_size
    )
    return Context(settings=settings, db=db, custody=custody, ca=ca)
