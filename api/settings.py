"""All configuration in one typed place, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("", "demo", "production")  # TRUSTSEAL_ENV; a typo must not pass for "not production"


class SettingsError(ValueError):
    """A configuration value this version does not accept."""


def _partition_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 0:
        raise SettingsError(f"TRUSTSEAL_CRL_PARTITION_SIZE={text!r}: a whole number of entries, 0 to never partition")
    return size


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    public_url: str
    keystore: str  # local | vault | pkcs11
    passphrase: str | None
    max_upload_bytes: int
    crl_refresh_seconds: float = 600.0
    ocsp_refresh_seconds: float = 300.0  # stored OCSP responses re-signed before half their validity; 0 disables
    crl_partition_size: int = 50_000  # subscriber certificates per CRL partition (ca/partitions.py); 0 never
    trust_list_publish_seconds: float = 60.0  # the scheduler publishes a changed (or half-expired) trust list
    approval_sweep_seconds: float = 60.0  # how often approvals stuck in `executing` are looked for (0: only at start)
    approval_stuck_seconds: float = 900.0  # `executing` this long means the run died (api/approvals.py sweep)
    public_rate_per_minute: int = 120  # per client address, for the public POST endpoints (verify, TSA)
    ocsp_rate_per_minute: int = 600  # per client address, for OCSP (one signature each; answered tryLater beyond)
    verify_cpu_seconds: float = 5.0  # CPU budget of one verification (verify/limits.py)
    verify_hash_cap_bytes: int = 256 * 1024 * 1024  # signed bytes one verification may hash, at most
    ledger_integrate_seconds: float = 0.25  # background integrator period (ledger/integrator.py); 0 disables
    ledger_handover_seconds: float = 7 * 24 * 3600.0  # both ledger keys sign checkpoints this long after a rotation
    witness_collect_seconds: float = 1.0  # how often new checkpoints go to witnesses (ledger/cosigning.py)
    witness_rate_per_minute: int = 600  # per client address, for POST /v1/witness/add-checkpoint
    production: bool = False  # TRUSTSEAL_ENV=production: a demo home or the demo passphrase is refused (api/home.py)

    @classmethod
    def from_env(cls, home: Path | str | None = None) -> Settings:
        root = Path(home or os.environ.get("TRUSTSEAL_HOME", "var")).resolve()
        environment = os.environ.get("TRUSTSEAL_ENV", "").strip().lower()
        if environment not in ENVIRONMENTS:
            raise SettingsError(f"TRUSTSEAL_ENV={environment!r}: use production, demo or leave it unset")
        return cls(
            home=root,
            database_url=os.environ.get("TRUSTSEAL_DATABASE_URL", f"sqlite:///{root / 'trustseal.db'}"),
            public_url=os.environ.get("TRUSTSEAL_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            keystore=os.environ.get("TRUSTSEAL_KEYSTORE", "local"),
            passphrase=os.environ.get("TRUSTSEAL_KEY_PASSPHRASE"),
            max_upload_bytes=int(os.environ.get("TRUSTSEAL_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024))),
            crl_refresh_seconds=float(os.environ.get("TRUSTSEAL_CRL_REFRESH_SECONDS", "600")),
            ocsp_refresh_seconds=float(os.environ.get("TRUSTSEAL_OCSP_REFRESH_SECONDS", "300")),
            crl_partition_size=_partition_size(os.environ.get("TRUSTSEAL_CRL_PARTITION_SIZE", "50000")),
            trust_list_publish_seconds=float(os.environ.get("TRUSTSEAL_TRUST_LIST_PUBLISH_SECONDS", "60")),
            approval_sweep_seconds=float(os.environ.get("TRUSTSEAL_APPROVAL_SWEEP_SECONDS", "60")),
            approval_stuck_seconds=float(os.environ.get("TRUSTSEAL_APPROVAL_STUCK_SECONDS", "900")),
            public_rate_per_minute=int(os.environ.get("TRUSTSEAL_PUBLIC_RATE_PER_MINUTE", "120")),
            ocsp_rate_per_minute=int(os.environ.get("TRUSTSEAL_OCSP_RATE_PER_MINUTE", "600")),
            verify_cpu_seconds=float(os.environ.get("TRUSTSEAL_VERIFY_CPU_SECONDS", "5")),
            verify_hash_cap_bytes=int(os.environ.get("TRUSTSEAL_VERIFY_HASH_CAP_BYTES", str(256 * 1024 * 1024))),
            ledger_integrate_seconds=float(os.environ.get("TRUSTSEAL_LEDGER_INTEGRATE_SECONDS", "0.25")),
            ledger_handover_seconds=float(os.environ.get("TRUSTSEAL_LEDGER_HANDOVER_SECONDS", str(7 * 24 * 3600))),
            witness_collect_seconds=float(os.environ.get("TRUSTSEAL_WITNESS_COLLECT_SECONDS", "1")),
            witness_rate_per_minute=int(os.environ.get("TRUSTSEAL_WITNESS_RATE_PER_MINUTE", "600")),
            production=environment == "production",
        )

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystore"

    @property
    def demo_passphrase_file(self) -> Path:
        return self.home / "demo-passphrase.txt"

    @property
    def demo_marker_file(self) -> Path:
        """Written by `trustseal init` when it generated the demo passphrase: the home is a demo home."""
        return self.home / "demo-home.json"

    @property
    def demo_tokens_file(self) -> Path:
        return self.home / "demo-tokens.json"
