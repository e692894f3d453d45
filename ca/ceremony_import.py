"""Importing a ceremony's output: `trustseal ca ceremony import OUTPUT`, `POST /v1/ceremonies/{id}/import`.

The output is accepted only if it is exactly the requested TBS (byte for byte) under the requested
signature algorithm, signed by the offline CA's key version the request names (checked with that CA
certificate's public key, never with anything the output carries). Then the operation completes in one
transaction with the request's `completed` status and `ceremony.completed`; any refusal changes nothing.

Refusals: `ceremony_not_found` (404), `ceremony_not_pending` (409: completed, superseded or cancelled),
`ceremony_output_malformed` (422: not a DER certificate or CRL — rebuilt from the request's TBS, the
algorithm and the signature it must equal the output byte for byte), `ceremony_output_mismatch` (422:
another TBS, e.g. a certificate for another key), `ceremony_signature_invalid` (422: not the CA's key),
`ceremony_stale` (409: the CRL number was overtaken, or the CRL expired before it was imported; a rollover's
certificate expired or its key version disabled meanwhile), and the operation's own refusals (e.g.
`ca_withdrawn` when the parent, or the CA rolling over, was withdrawn meanwhile).

A request cancelled or refused for good calls `abandon` (its operation's undo, e.g. `ca.rollover` disables
the CA key version it made provisionally).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asn1crypto import algos, x509
from asn1crypto import crl as asn1_crl
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca import ceremony
from ca import crl as crls
from ca.authority import CAPlan, CertificateAuthorityService
from ca.ceremony import CeremonyNotPending as CeremonyNotPending  # where callers found it first
from ca.errors import CAError
from gm import asn1 as _asn1  # noqa: F401  (SM2 OIDs registered)
from gm import der as _der
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from ledger.events import record_event
from store.models import CRL, CeremonyRequest, CertificateAuthority

if TYPE_CHECKING:
    from ca.trust_list import TrustListPublisher


class CeremonyOutputMalformed(CAError):
    code = "ceremony_output_malformed"
    status = 422


class CeremonyOutputMismatch(CAError):
    code = "ceremony_output_mismatch"
    status = 422


class CeremonySignatureInvalid(CAError):
    code = "ceremony_signature_invalid"
    status = 422


class CeremonyStale(CAError):
    code = "ceremony_stale"
    status = 409


@dataclass(frozen=True)
class Output:
    """A parsed `trustseal-ceremony-output/v1` document: the request id and the signed object's DER."""

    request_id: str
    der: bytes

    @classmethod
    def parse(cls, document: object) -> Output:
        if not isinstance(document, dict) or document.get("format") != ceremony.OUTPUT_FORMAT:
            raise CeremonyOutputMalformed(f"not a {ceremony.OUTPUT_FORMAT} document")
        request_id, signed = document.get("request"), document.get("signed")
        if not isinstance(request_id, str) or not isinstance(signed, str):
            raise CeremonyOutputMalformed("`request` (the request id) and `signed` (base64 DER) are required")
        try:
            der = base64.b64decode(signed, validate=True)
        except (binascii.Error, ValueError):
            raise CeremonyOutputMalformed("`signed` is not base64") from None
        return cls(request_id, der)


@dataclass(frozen=True)
class Completion:
    """What a completion gets: the request (detached from its session), the signed DER, who imports."""

    request_id: str
    operation: str
    ca: str
    params: dict[str, Any]
    der: bytes
    actor: str
    service: CertificateAuthorityService
    publisher: TrustListPublisher | None

    def begin(self, session: Session) -> None:
        """First thing in the completion's transaction, before any write: the request's row lock, and it must
        still be pending. A second importer of the same output waits here and gets `ceremony_not_pending`
        (not a unique-key error from whatever the first one wrote)."""
        row = session.get(CeremonyRequest, self.request_id, with_for_update=True, populate_existing=True)
        if row is None or row.status != "pending":
            raise CeremonyNotPending(f"ceremony request {self.request_id} is no longer pending")

    def finish(self, session: Session, result: dict[str, Any]) -> None:
        """Mark the request completed (re-checked under its row lock) with `ceremony.completed`, in the
        completion's transaction."""
        row = session.get(CeremonyRequest, self.request_id, with_for_update=True, populate_existing=True)
        if row is None or row.status != "pending":
            raise CeremonyNotPending(f"ceremony request {self.request_id} is no longer pending")
        row.status = "completed"
        row.completed_at = datetime.now(UTC).replace(microsecond=0)
        row.completed_by = self.actor
        row.result = result
        record_event(
            session,
            "ceremony.completed",
            actor=self.actor,
            subject=self.request_id,
            payload={"id": self.request_id, "operation": self.operation, "ca": self.ca, **result},
        )


CompletionFn = Callable[[Completion], dict[str, Any]]
COMPLETIONS: dict[str, CompletionFn] = {}


def register(operation: str) -> Callable[[CompletionFn], CompletionFn]:
    """`@register("ca.rollover")`: how a request of that operation completes (one transaction that begins
    with `completion.begin` and ends in `completion.finish`)."""

    def add(fn: CompletionFn) -> CompletionFn:
        COMPLETIONS[operation] = fn
        return fn

    return add


AbandonFn = Callable[["CertificateAuthorityService", dict[str, Any]], None]
ABANDONS: dict[str, AbandonFn] = {}


def register_abandon(operation: str) -> Callable[[AbandonFn], AbandonFn]:
    """`@register_abandon("ca.rollover")`: what a request of that operation undoes when it will never
    complete (e.g. the key version it made provisionally)."""

    def add(fn: AbandonFn) -> AbandonFn:
        ABANDONS[operation] = fn
        return fn

    return add


def abandon(service: CertificateAuthorityService, operation: str, params: dict[str, Any]) -> None:
    """The hook for cancelling or refusing a pending request for good: call it after the request's status
    left `pending` (committed), with the request's operation and params. Operations with nothing to undo
    have no entry."""
    fn = ABANDONS.get(operation)
    if fn is not None:
        fn(service, params)


def _signed_parts(kind: str, der: bytes) -> tuple[bytes, algos.SignedDigestAlgorithm, bytes]:
    """(TBS DER, outer signature algorithm, signature) of a certificate or CRL, as it came (no re-encoding)."""
    try:
        if kind == "crl":
            crl = asn1_crl.CertificateList.load(der, strict=True)
            tbs, algorithm, signature = crl["tbs_cert_list"], crl["signature_algorithm"], crl["signature"]
        else:
            cert = x509.Certificate.load(der, strict=True)
            tbs, algorithm, signature = cert["tbs_certificate"], cert["signature_algorithm"], cert["signature_value"]
        tbs_der = tbs.dump()
        algorithm.native  # noqa: B018  (parse now: a malformed identifier is malformed output)
        value = signature.native
    except (ValueError, TypeError, KeyError):
        raise CeremonyOutputMalformed(f"the signed output is not a DER {kind}") from None
    if not isinstance(value, bytes):
        raise CeremonyOutputMalformed("the signature is not a BIT STRING of whole bytes")
    return tbs_der, algorithm, value


def check(request: CeremonyRequest, ca: CertificateAuthority, der: bytes) -> None:
    """The output is the request's TBS signed by the request's key (its public key: the offline CA's
    certificate, whose key version custody moved to the ceremony home)."""
    tbs_der, algorithm, signature = _signed_parts(request.kind, der)
    if tbs_der != request.tbs_der:
        raise CeremonyOutputMismatch(
            f"the output signs something other than what ceremony request {request.id} asked for "
            "(another subject, key, serial, validity or CRL entry)"
        )
    inner = _inner_algorithm(request.kind, tbs_der)
    if algorithm.dump() != inner:
        raise CeremonyOutputMismatch("the outer signature algorithm differs from the one inside the TBS")
    if der != _der.sequence(request.tbs_der, inner, _der.bit_string(signature)):
        # what is stored and served must be the one DER encoding (a non-minimal length, BER, trailing bytes)
        raise CeremonyOutputMalformed(f"the signed {request.kind} is not canonical DER")
    spki = x509.Certificate.load(ca.certificate_der).public_key.dump()
    try:
        valid = verify_signature(spki, algorithm, signature, tbs_der)
    except UnsupportedSignatureAlgorithm:
        valid = False
    if not valid:
        raise CeremonySignatureInvalid(
            f"the signature does not verify with {ca.name}'s key ({request.key_ref}): signed by another key"
        )


def _inner_algorithm(kind: str, tbs_der: bytes) -> bytes:
    if kind == "crl":
        return bytes(asn1_crl.TbsCertList.load(tbs_der)["signature"].dump())
    return bytes(x509.TbsCertificate.load(tbs_der)["signature"].dump())


def import_output(
    service: CertificateAuthorityService,
    document: object,
    actor: str,
    *,
    expected_id: str | None = None,
    publisher: TrustListPublisher | None = None,
) -> dict[str, Any]:
    """Check and complete. `expected_id`: the id the caller named (the API's path); it must be the output's.
    Returns the completed request's JSON."""
    output = Output.parse(document)
    if expected_id is not None and output.request_id != expected_id:
        raise CeremonyOutputMismatch(f"the output answers request {output.request_id}, not {expected_id}")
    with service.db.session() as session:
        request = session.get(CeremonyRequest, output.request_id)
        if request is None:
            raise ceremony.CeremonyNotFound(f"no ceremony request {output.request_id!r}")
        if request.status != "pending":
            raise CeremonyNotPending(f"ceremony request {request.id} is {request.status}")
        ca = service.get_ca(session, request.ca_name)
        check(request, ca, output.der)
        completion = Completion(
            request.id, request.operation, request.ca_name, dict(request.params), output.der, actor, service, publisher
        )
    fn = COMPLETIONS.get(completion.operation)
    if fn is None:
        raise CeremonyNotPending(f"no completion for operation {completion.operation!r} in this version")
    try:
        fn(completion)
    except IntegrityError:  # a racing writer got there first (the request's lock covers every completion here)
        with service.db.session() as session:
            row = session.get(CeremonyRequest, completion.request_id)
            if row is not None and row.status != "pending":
                raise CeremonyNotPending(f"ceremony request {completion.request_id} is {row.status}") from None
        raise
    service.invalidate()
    if publisher is not None:
        publisher.current()  # a new CA, a cross-certificate: on the trust list at once
    return ceremony.get_request(service.db, completion.request_id)


# -- completions ------------------------------------------------------------------------------------


@register("ca.create")
def _ca_create(done: Completion) -> dict[str, Any]:
    from ca.issuance import refuse_inactive

    plan = CAPlan.from_params(done.params)
    done.service.pii.prepare()  # the OCSP signer's issuance event digests its subject
    with done.service.crls.mutex, done.service.db.session() as session:
        done.begin(session)
        parent = done.service.get_ca(session, done.ca)
        refuse_inactive(parent.name, parent.status)  # withdrawn meanwhile: nothing is created under it
        row = done.service.commit_ca(session, plan, done.der, done.actor)
        result = {"ca": row.name, "serial": row.certificate_serial}
        done.finish(session, result)
    return result


@register("crl")
def _crl(done: Completion) -> dict[str, Any]:
    number = int(done.params["number"])
    with done.service.crls.mutex, done.service.db.session() as session:
        crls.lock_ca(session, done.ca)  # the CA row before the request's, as a revocation superseding it does
        done.begin(session)
        last = session.scalar(select(func.max(CRL.number)).where(CRL.ca_name == done.ca)) or 0
        if number <= last:
            raise CeremonyStale(f"CRL number {number} of {done.ca} was overtaken by CRL {last}")
        next_update = asn1_crl.CertificateList.load(done.der)["tbs_cert_list"]["next_update"].native
        if next_update <= datetime.now(UTC):  # signed too late to be of use: the scheduler asks afresh
            raise CeremonyStale(f"this CRL of {done.ca} expired at {next_update.isoformat()}; sign the newer request")
        row = crls.store_crl(session, done.ca, done.der, number, int(done.params["entries"]), done.actor)
        result = {"ca": done.ca, "crl_number": number, "next_update": row.next_update.isoformat()}
        done.finish(session, result)
    return result


@register("trust_list.signer")
def _trust_list_signer(done: Completion) -> dict[str, Any]:
    from ca import store

    prepared = done.service.prepared_from_signed(done.der, done.params)
    event = done.service.issued_event(prepared, done.actor)
    with done.service.db.session() as session:
        done.begin(session)
        store.add(session, prepared, event=event)
        result = {"key": str(done.params["key_ref"]), "serial": prepared.serial_hex}
        done.finish(session, result)
    if done.publisher is not None:
        done.publisher.adopt_signer(str(done.params["key_ref"]), done.der, done.actor)
    return result


@register("ca.cross_certify")
def _cross_certify(done: Completion) -> dict[str, Any]:
    subject_der = base64.b64decode(str(done.params["subject_der"]))
    with done.service.db.session() as session:
        done.begin(session)
        issued = done.service.commit_cross_certificate(
            session, done.ca, done.der, str(done.params["subject_hmac"]), subject_der, done.actor
        )
        result = {"serial": issued.serial}
        done.finish(session, result)
    return result


@register("ocsp.signer")
def _ocsp_signer(done: Completion) -> dict[str, Any]:
    """The offline CA's renewed OCSP signer certificate (ca/ocsp_renewal.py): stored, and the responder
    switches to it."""
    prepared = done.service.prepared_from_signed(done.der, done.params)
    key_ref = str(done.params["key_ref"])
    done.service.pii.prepare()  # the certificate's issuance event digests its subject
    with done.service.db.session() as session:
        ca = crls.lock_ca(session, done.ca)  # the CA row before the request's, as everywhere
        done.begin(session)
        done.service.adopt_ocsp_signer(session, ca, key_ref, prepared, done.actor)
        result = {
            "ca": done.ca,
            "key": key_ref,
            "serial": prepared.serial_hex,
            "not_after": prepared.validity[1].isoformat(),
        }
        done.finish(session, result)
    done.service.invalidate(done.ca)
    return result


@register("ca.rollover")
def _ca_rollover(done: Completion) -> dict[str, Any]:
    from ca.rollover import complete_by_ceremony

    return complete_by_ceremony(done)


@register_abandon("ca.rollover")
def _ca_rollover_abandoned(service: CertificateAuthorityService, params: dict[str, Any]) -> None:
    from ca.rollover import abandon_by_ceremony

    abandon_by_ceremony(service.custody, params)
