"""The ledger key in custody (`ledger.sm2`) and its certificate from the national issuing CA.

Like the TSA units (signing/tsa.py), the ledger is a national service: its certificate comes from
`cn-100000-sm2` (never a region, whose withdrawal must not orphan every region's log) under the
`ledger` profile, which is infrastructure-only (no `csr: true` in policies/profiles.yaml: no CSR can
obtain it). The certificate is the newest good one of that profile and CA whose key is the custody
key's current version; the first use after `init` (or after a rotation) issues it.
"""

from __future__ import annotations

import contextlib
import threading

from asn1crypto import x509
from sqlalchemy import select

from ca.authority import CertificateAuthorityService
from keys.custody import KeyAlgorithm, KeyCustody, KeyExists, KeyNotFound, SigningHandle
from ledger.service import LedgerSigner
from store.models import Certificate

LEDGER_KEY = "ledger.sm2"
LEDGER_CA = "cn-100000-sm2"
LEDGER_PROFILE = "ledger"
SUBJECT = {"country_name": "CN", "organization_name": "trustseal", "common_name": "trustseal ledger"}

_C = Certificate.__table__.c
_CANDIDATES = (
    select(_C.der)
    .where(_C.profile == LEDGER_PROFILE, _C.issuer_ca == LEDGER_CA, _C.status == "good")
    .order_by(_C.created_at.desc())
)


class LedgerKey:
    """Callable: the current `LedgerSigner` (custody handle and certificate), provisioned on first use."""

    def __init__(self, custody: KeyCustody, ca: CertificateAuthorityService) -> None:
        self.custody = custody
        self.ca = ca
        self._current: LedgerSigner | None = None
        self._lock = threading.Lock()

    def __call__(self) -> LedgerSigner:
        current = self._current
        if current is not None:
            return current
        with self._lock:
            if self._current is None:
                handle = self._handle()
                self._current = LedgerSigner(handle, self._certificate(handle))
            return self._current

    def _handle(self) -> SigningHandle:
        try:
            return self.custody.signer(LEDGER_KEY)
        except KeyNotFound:
            pass
        with contextlib.suppress(KeyExists):  # another process created it first
            self.custody.create(LEDGER_KEY, KeyAlgorithm.SM2)
        return self.custody.signer(LEDGER_KEY)

    def _certificate(self, handle: SigningHandle) -> bytes:
        with self.ca.db.session() as session:
            for (der,) in session.execute(_CANDIDATES):
                info = x509.Certificate.load(bytes(der))["tbs_certificate"]["subject_public_key_info"]
                if info.dump() == handle.public_key_der:
                    return bytes(der)
        issued = self.ca.issue_for_key(handle.public_key_der, SUBJECT, LEDGER_PROFILE, LEDGER_CA, actor="ledger")
        return issued.der
