"""Issuing an end-entity certificate in the order Boulder keeps: policy decides (`approve_*`: profile,
key, subject, SAN presence, name policy from policies/), the CA signs only what was approved (`sign`),
the store writes (ca/store.py). An Approval is made only here and signed at most once: a template that
did not pass the policy step, or an approval altered afterwards, is refused before custody signs."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from asn1crypto import x509

from ca import certificates as certs
from ca.csr import ParsedCSR
from ca.errors import CANotIssuing, CAWithdrawn, KeyAlgorithmNotAllowed, SanNotAllowed
from ca.names import CheckedSubject, Pairs, apply_name_policy, checked_values
from ca.store import PreparedCertificate
from keys.custody import SigningHandle
from policies.names import Requester
from policies.profiles import Profile

BACKDATE = timedelta(minutes=5)  # tolerate relying parties with slow clocks


class CALike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def key_ref(self) -> str: ...
    @property
    def certificate_serial(self) -> str: ...
    @property
    def certificate_der(self) -> bytes: ...
    @property
    def offline(self) -> bool: ...


class NotApproved(RuntimeError):
    """A programming error, never an API answer: the signer was handed something policy did not approve."""


@dataclass(frozen=True, eq=False)  # identity, not value: only the very object policy made is signed
class Approval:
    ca: CALike
    ca_certificate: x509.Certificate
    profile: Profile
    subject: CheckedSubject
    spki_der: bytes
    san: x509.GeneralNames | None


_APPROVED: weakref.WeakSet[Approval] = weakref.WeakSet()


def _approved(approval: Approval) -> Approval:
    _APPROVED.add(approval)
    return approval


def refuse_inactive(name: str, status: str) -> None:
    """A withdrawn (or otherwise inactive) CA signs nothing new: no certificate, no CA below it."""
    if status == "withdrawn":
        raise CAWithdrawn(f"{name} is withdrawn: it issues no more certificates")
    if status != "active":
        raise CANotIssuing(f"{name} is {status}")


def check_key(profile: Profile, request: ParsedCSR, ca: CALike) -> None:
    if request.key_algorithm not in profile.key_algorithms:
        raise KeyAlgorithmNotAllowed(
            f"profile {profile.name} accepts {', '.join(profile.key_algorithms)} keys, not {request.key_algorithm}"
        )
    if request.key_algorithm != ca.algorithm:
        raise KeyAlgorithmNotAllowed(
            f"CA {ca.name} issues {ca.algorithm} certificates; the CSR has a {request.key_algorithm} key"
        )


def checked_san(profile: Profile, request: ParsedCSR) -> x509.GeneralNames | None:
    """Presence only; what the names may be is policies/names.py (apply_name_policy)."""
    san = request.subject_alt_name
    if profile.san == "forbidden" and san is not None:
        raise SanNotAllowed(f"profile {profile.name} does not allow subjectAltName")
    if profile.san == "required" and not san:
        raise SanNotAllowed(f"profile {profile.name} requires a subjectAltName")
    if san is not None and len(san) == 0:
        raise SanNotAllowed("an empty subjectAltName extension (RFC 5280 §4.2.1.6: at least one name)")
    return san


def approve_csr(
    profile: Profile,
    request: ParsedCSR,
    ca: CALike,
    ca_certificate: x509.Certificate,
    *,
    parent: str | None,
    status: str,
    namespaces: tuple[frozenset[str], ...],
    requester: Requester,
) -> Approval:
    """A subscriber's CSR under a subscriber profile (the facade refused infrastructure profiles)."""
    if parent is None:
        raise CANotIssuing(f"{ca.name} is a root: it certifies CAs only; issue from a regional CA")
    refuse_inactive(ca.name, status)
    check_key(profile, request, ca)
    subject = checked_values(request.subject, profile.subject)
    san = checked_san(profile, request)
    apply_name_policy(profile, subject, san, requester, namespaces)
    return _approved(Approval(ca, ca_certificate, profile, subject, request.spki_der, san))


def approve_key(
    profile: Profile,
    family: str,
    public_key_der: bytes,
    subject: Pairs,
    ca: CALike,
    ca_certificate: x509.Certificate,
    *,
    parent: str | None,
    status: str,
) -> Approval:
    """A key custody holds (seal holders, seal makers, OCSP signers, TSA, trust-list signers): no CSR,
    the same profile rules."""
    refuse_inactive(ca.name, status)
    if parent is None and not profile.root_may_issue:
        raise CANotIssuing(f"{ca.name} does not issue {profile.name} certificates")
    if family not in profile.key_algorithms or family != ca.algorithm:
        raise KeyAlgorithmNotAllowed(f"CA {ca.name} / profile {profile.name} do not take a {family} key")
    checked = checked_values(subject, profile.subject)
    return _approved(Approval(ca, ca_certificate, profile, checked, public_key_der, None))


def approve_ocsp_signer(
    profile: Profile, public_key_der: bytes, subject: Pairs, ca: CALike, ca_certificate: x509.Certificate
) -> Approval:
    """The delegated OCSP signer a CA is created with, in the CA's own transaction (roots have one too)."""
    return _approved(
        Approval(ca, ca_certificate, profile, checked_values(subject, profile.subject), public_key_der, None)
    )


def sign(
    approval: Approval, template: certs.Template, signer: SigningHandle, crl_scope: str | None = None
) -> PreparedCertificate:
    """The signed certificate, nothing written yet. Refuses anything the policy step did not hand out,
    and an approval already signed (one approval, one serial). `crl_scope`: the CRL scope whose URL the
    template's distribution point names (recorded on the row)."""
    if approval not in _APPROVED:
        raise NotApproved("the CA signs only what policy approved (ca/issuance.py approve_*)")
    _APPROVED.discard(approval)
    now = datetime.now(UTC)
    ca_not_after = approval.ca_certificate["tbs_certificate"]["validity"]["not_after"].native
    not_before = certs.truncate(now - BACKDATE)
    not_after = certs.truncate(min(now + timedelta(days=approval.profile.validity_days), ca_not_after))
    middle: list[x509.Extension | bytes] = [certs.key_identifier_extension(approval.spki_der)]
    if approval.san is not None:
        middle.append(certs.extension("subject_alt_name", approval.san, critical=not approval.subject.values))
    serial = certs.new_serial()
    tbs = template.tbs(
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        subject_der=approval.subject.der,
        spki_der=approval.spki_der,
        middle=middle,
    )
    der = template.sign(tbs, signer)
    return PreparedCertificate(
        der=der,
        serial_hex=certs.serial_hex(serial),
        validity=(not_before, not_after),
        subject_text=approval.subject.text,
        fingerprint=certs.fingerprint(der),
        issuer_ca=approval.ca.name,
        profile=approval.profile.name,
        algorithm=approval.ca.algorithm,
        issuer_key_ref=approval.ca.key_ref,
        crl_scope=crl_scope,
    )
