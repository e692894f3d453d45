"""Withdrawing a CA: the one function the API (`POST /v1/cas/{ca}/withdraw`), the CLI (`trustseal ca
withdraw`) and, later, the approvals executor call.

In one transaction: the CA's status becomes `withdrawn` with a history entry from the invalidity date (or
now), and its parent revokes its certificate (the parent's next CRL is issued at once, and OCSP answers
from the same rows), each with its event. Then a new trust list is published, so verifiers see the
withdrawal without waiting for the list's next update. A root has no parent: it is withdrawn on the trust
list (`revoked_serial` None), and its link certificates (a rolled-over root's) are revoked. A CA that
rolled over its key has each of its certificates revoked (`revoked_serial` names the current one). Under
an offline parent (ca/ceremony.py) the revocation is stored and OCSP answers it at once; the parent's CRL
listing it is a pending ceremony request (`ceremony`). A withdrawn CA issues nothing more (ca/authority.py refuses with
`ca_withdrawn`); its CRL and OCSP keep answering for what it issued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ca import ceremony, store
from ca import crl as crls
from ca import revocation as rev
from ca.authority import CertificateAuthorityService
from ca.errors import CAAlreadyWithdrawn
from ca.rollover import LINK_PROFILE
from ledger.events import record_event
from store.models import Certificate

if TYPE_CHECKING:
    from ca.trust_list import TrustListPublisher

log = logging.getLogger("trustseal.ca")


@dataclass(frozen=True)
class Withdrawal:
    ca: str
    withdrawn_at: datetime
    revoked_serial: str | None
    status: str = "withdrawn"
    trust_list_published: bool = True  # False: committed, but the list waits for the scheduler's next round
    ceremony: dict[str, Any] | None = None  # an offline parent: the pending request for its CRL (ca/ceremony.py)

    def as_json(self) -> dict[str, str | bool | None]:
        return {
            "ca": self.ca,
            "status": self.status,
            "withdrawn_at": self.withdrawn_at.isoformat(),
            "revoked_serial": self.revoked_serial,
            "trust_list_published": self.trust_list_published,
        }


def withdraw_ca(
    service: CertificateAuthorityService,
    name: str,
    *,
    reason: str | None,
    invalidity_date: datetime | None = None,
    actor: str | None = None,
    publisher: TrustListPublisher | None = None,
) -> Withdrawal:
    """Withdraw CA `name`. `invalidity_date` (when trust in it should end, e.g. a compromise found late)
    may lie in the past, not in the future; without it the withdrawal counts from now."""
    from ca.trust_list import TrustListPublisher, history

    normalised = rev.normalise_reason(reason)
    now = datetime.now(UTC)
    invalid_from = rev.checked_invalidity_date(invalidity_date, now, "withdraw")
    withdrawn_at = (invalidity_date or now).astimezone(UTC)
    with service.crls.mutex, service.db.session() as session:
        ca = service._lock_ca(session, name)  # unknown name: UnknownCA (404)
        if ca.status == "withdrawn":
            raise CAAlreadyWithdrawn(f"{name} was withdrawn already")
        store.mark_withdrawn(session, ca, history(ca), withdrawn_at)
        revoked_serial = None
        request = None
        if ca.parent is not None:
            certificate = session.get(Certificate, ca.certificate_serial)
            assert certificate is not None  # written with the CA row
            # after a key rollover (ca/rollover.py) its earlier certificates are revoked too: each on the
            # CRL of the parent key that signed it
            earlier = [session.get(Certificate, str(p["certificate_serial"])) for p in ca.previous_keys or []]
            for row in [certificate, *earlier]:
                if row is not None and row.status != "revoked" and row.issuer_ca == ca.parent:
                    service.revoke_in_session(session, row, normalised, actor, invalidity_date=invalid_from)
            revoked_serial = certificate.serial
            pending = crls.pending_request(session, ca.parent)  # an offline parent's CRL waits for a ceremony
            request = ceremony.request_json(pending) if pending is not None else None
        else:
            # a root's link certificates (ca/rollover.py) bridge relying parties between its keys: revoked with
            # it, each on the CRL of the root key that signed it (an offline root's: a ceremony request)
            links = session.scalars(
                select(Certificate).where(
                    Certificate.issuer_ca == name, Certificate.profile == LINK_PROFILE, Certificate.status != "revoked"
                )
            ).all()
            for link in links:
                service.revoke_in_session(session, link, normalised, actor, invalidity_date=invalid_from)
            pending = crls.pending_request(session, name) if links else None
            request = ceremony.request_json(pending) if pending is not None else None
        session.flush()
        record_event(
            session,
            "ca.withdrawn",
            actor=actor,
            subject=name,
            payload={
                "ca": name,
                "reason": normalised,
                "from": withdrawn_at.isoformat(),
                "parent": ca.parent,
                "revoked_serial": revoked_serial,
            },
        )
    service.invalidate(name)
    published = publish_after(publisher or TrustListPublisher(service), name)
    return Withdrawal(
        ca=name,
        withdrawn_at=withdrawn_at,
        revoked_serial=revoked_serial,
        trust_list_published=published,
        ceremony=request,
    )


def publish_after(publisher: TrustListPublisher, name: str) -> bool:
    """The withdrawal stands once committed (its CRL and OCSP already say so); a trust list that cannot be
    published now is published by the scheduler (api/app.py), which publishes whenever the CAs differ from
    the newest list. So a failure here is reported (`trust_list_published: false`), never raised."""
    try:
        publisher.current()
    except Exception:
        log.exception("%s is withdrawn, but the trust list could not be republished yet; the scheduler retries", name)
        return False
    return True
