"""Renewing an offline CA's OCSP signer certificate through a ceremony (`ocsp.signer`).

An online CA re-certifies its delegated OCSP signer whenever it likes; an offline root cannot, so its
responder would stop answering (a signer certificate past notAfter) about a year after the root left.
`move_offline` re-certifies `<root>.ocsp` while the root key is still online (ca/ceremony_home.py); from
then on the scheduler (`request_due`, beside the CRL round) opens one `ocsp.signer` ceremony request when
the responder certificate is within `RENEW_BEFORE` of its end, for the same custody key (its newest enabled
version). Importing the output (ca/ceremony_import.py) stores the certificate and switches the responder.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from asn1crypto import x509
from sqlalchemy import select

from ca import ceremony
from keys.custody import parse_ref
from store.models import CertificateAuthority

if TYPE_CHECKING:
    from ca.authority import CertificateAuthorityService

OPERATION = "ocsp.signer"
RENEW_BEFORE = timedelta(days=30)
log = logging.getLogger(__name__)


def due(ca: CertificateAuthority, now: datetime) -> bool:
    """The CA's responder certificate ends within `RENEW_BEFORE` (or it has none)."""
    if ca.ocsp_key_ref is None:
        return False
    if ca.ocsp_certificate_der is None:
        return True
    return bool(x509.Certificate.load(ca.ocsp_certificate_der).not_valid_after - now < RENEW_BEFORE)


def request_due(service: CertificateAuthorityService, now: datetime | None = None) -> list[str]:
    """The scheduler's round: an `ocsp.signer` ceremony request for each offline CA whose responder
    certificate is due, unless one is pending already. Returns the ids of the requests it opened."""
    now = now or datetime.now(UTC)
    with service.db.session() as session:
        rows = list(session.scalars(select(CertificateAuthority).where(CertificateAuthority.offline.is_(True))))
        waiting = {
            ca.name for ca in rows if ceremony.pending(session, OPERATION, ca.name) is not None
        }  # one pending at a time
        wanted = [(ca.name, ca.ocsp_key_ref) for ca in rows if ca.name not in waiting and due(ca, now)]
    opened = []
    for name, key_ref in wanted:
        assert key_ref is not None
        version = service.custody.get(parse_ref(key_ref)[0])  # the responder key's newest enabled version
        with service.db.session() as session:
            ca = service.get_ca(session, name)
            try:
                service.sign_ocsp_signer(ca, version)
            except ceremony.SignatureDeferred as deferred:
                pending = deferred
            else:  # the CA came back online meanwhile: nothing for a ceremony
                continue
        params = {"key_ref": version.ref}
        try:
            request = ceremony.open_request(service.db, pending, OPERATION, name, params, "scheduler")
        except ceremony.CeremonyPending:  # another process opened it meanwhile
            continue
        log.warning("ceremony request %s: the OCSP signer certificate of offline CA %s ends soon", request["id"], name)
        opened.append(str(request["id"]))
    return opened
