"""RFC 6960 responder core: parse a request, answer each CertID, sign with the delegated signer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core, ocsp, x509

from ca.certificates import serial_hex, signature_algorithm, truncate
from ca.errors import OCSPMalformed
from ca.snapshot import Snapshots
from keys.custody import KeyCustody, SigningHandle
from store.db import Database
from store.models import Certificate

MAX_REQUEST_BYTES = 16 * 1024
MAX_SINGLE_REQUESTS = 16
HASHES = {"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sm3": "sm3"}


@dataclass(frozen=True)
class CertStatus:
    status: str  # good | revoked | unknown
    revoked_at: datetime | None = None
    reason: str | None = None
    invalidity_date: datetime | None = None  # RFC 6960 §4.4.5: CRL entry extensions as singleExtensions


@dataclass(frozen=True)
class Responder:
    """One CA as the responder sees it: how to recognise its CertIDs and who signs for it."""

    ca_name: str
    ca_certificate: x509.Certificate
    signer_certificate: x509.Certificate
    signer: SigningHandle
    issuer_key_ref: str | None = None  # the CA key whose certificates it answers for (ca/rollover.py)
    first_key: bool = True  # the CA's first key: also answers for rows that record no key (bulk-loaded)

    def answers_for(self, issuer_key_ref: str | None) -> bool:
        """Whether a certificate row signed by `issuer_key_ref` is this responder's CA key's."""
        if issuer_key_ref is None or self.issuer_key_ref is None:
            return self.first_key
        return issuer_key_ref == self.issuer_key_ref

    def matches(self, cert_id: ocsp.CertId) -> bool:
        name = HASHES.get(cert_id["hash_algorithm"]["algorithm"].native)
        if name is None:
            return False
        name_hash, key_hash = self._hashes(name)
        return cert_id["issuer_name_hash"].native == name_hash and cert_id["issuer_key_hash"].native == key_hash

    def _hashes(self, algorithm: str) -> tuple[bytes, bytes]:
        cache: dict[str, tuple[bytes, bytes]] = self.__dict__.setdefault("_hash_cache", {})
        if algorithm not in cache:
            cache[algorithm] = (
                hashlib.new(algorithm, self.ca_certificate.subject.dump()).digest(),
                hashlib.new(algorithm, self.ca_certificate.public_key["public_key"].contents[1:]).digest(),
            )
        return cache[algorithm]


def parse_request(der: bytes) -> ocsp.OCSPRequest:
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise OCSPMalformed("OCSP request empty or larger than 16 KiB")
    try:
        request = ocsp.OCSPRequest.load(der, strict=True)
        singles = request["tbs_request"]["request_list"]
        if len(singles) == 0 or len(singles) > MAX_SINGLE_REQUESTS:
            raise OCSPMalformed(f"OCSP request must name 1 to {MAX_SINGLE_REQUESTS} certificates")
        for single in singles:
            cert_id = single["req_cert"]
            cert_id["hash_algorithm"]["algorithm"].native  # noqa: B018
            cert_id["issuer_name_hash"].native  # noqa: B018
            cert_id["serial_number"].native  # noqa: B018
        request["tbs_request"]["request_extensions"].native  # noqa: B018
    except OCSPMalformed:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise OCSPMalformed(f"not a DER OCSP request: {exc}") from None
    return request


def request_nonce(request: ocsp.OCSPRequest) -> bytes | None:
    for ext in request["tbs_request"]["request_extensions"] or []:
        if ext["extn_id"].native == "nonce":
            value = ext["extn_value"].parsed
            nonce: bytes = value.native if isinstance(value, core.OctetString) else ext["extn_value"].native
            if not 1 <= len(nonce) <= 128:
                raise OCSPMalformed("OCSP nonce must be 1 to 128 bytes")
            return nonce
    return None


def status_response(status: str) -> bytes:
    """An unsigned OCSPResponse carrying only an error status (RFC 6960 §4.2.1)."""
    return ocsp.OCSPResponse({"response_status": status}).dump()


def respond(
    request: ocsp.OCSPRequest,
    responders: Sequence[Responder],
    lookup: Callable[[str, int], CertStatus],
    now: datetime,
    validity: timedelta,
) -> bytes:
    singles = list(request["tbs_request"]["request_list"])
    responder = next((r for r in responders if r.matches(singles[0]["req_cert"])), None)
    if responder is None:
        return status_response("unauthorized")
    nonce = request_nonce(request)
    answers = []
    for single in singles:
        cert_id = single["req_cert"]
        status = (
            lookup(responder.ca_name, cert_id["serial_number"].native)
            if responder.matches(cert_id)
            else CertStatus("unknown")
        )
        answer: dict[str, object] = {
            "cert_id": cert_id,
            "cert_status": _status(status),
            "this_update": now,
            "next_update": now + validity,
        }
        if status.status == "revoked" and status.invalidity_date is not None:
            answer["single_extensions"] = [{"extn_id": "invalidity_date", "extn_value": status.invalidity_date}]
        answers.append(answer)
    response_data: dict[str, object] = {
        "version": "v1",
        # byName, not byKey: RFC 6960 allows either, and GmSSL 3.x reads byKey as IMPLICIT [2] where the
        # module's EXPLICIT tagging (and OpenSSL, asn1crypto) writes [2] EXPLICIT, so it drops our answers.
        "responder_id": ocsp.ResponderId(name="by_name", value=responder.signer_certificate.subject),
        "produced_at": now,
        "responses": answers,
    }
    if nonce is not None:
        response_data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    tbs = ocsp.ResponseData(response_data)
    algorithm = signature_algorithm(responder.signer.algorithm)
    basic = ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": tbs,
            "signature_algorithm": algorithm,
            "signature": responder.signer.sign(tbs.dump()),
            "certs": [responder.signer_certificate],
        }
    )
    return ocsp.OCSPResponse(
        {"response_status": "successful", "response_bytes": {"response_type": "basic_ocsp_response", "response": basic}}
    ).dump()


def _status(status: CertStatus) -> ocsp.CertStatus:
    if status.status == "good":
        return ocsp.CertStatus(name="good", value=core.Null())
    if status.status == "revoked":
        info: dict[str, object] = {"revocation_time": status.revoked_at}
        if status.reason and status.reason != "unspecified":
            info["revocation_reason"] = status.reason
        return ocsp.CertStatus(name="revoked", value=info)
    return ocsp.CertStatus(name="unknown", value=core.Null())


OCSP_VALIDITY = timedelta(hours=4)


class OCSPResponder:
    """The responder of POST /v1/ocsp: every CA with a delegated signer answers for what it issued, from
    the certificate rows (a read: it signs its answer, never writes)."""

    def __init__(self, snapshots: Snapshots, db: Database, custody: KeyCustody) -> None:
        self.snapshots = snapshots
        self.db = db
        self.custody = custody
        self._responders: tuple[int, list[Responder]] | None = None

    def responders(self) -> list[Responder]:
        """Responders for every key of every CA with an OCSP signer, built once per CA snapshot version.
        A CertID's issuerKeyHash picks one: after a rollover the old key's signer keeps answering for the
        certificates the old key issued, the new key's signer for the new ones (ca/rollover.py)."""
        snapshot = self.snapshots.current()
        cached = self._responders
        if cached is not None and cached[0] == snapshot.version:
            return cached[1]
        out = [
            Responder(
                ca_name=ca.name,
                ca_certificate=generation.certificate,
                signer_certificate=x509.Certificate.load(generation.ocsp_certificate_der),
                signer=self.custody.signer(generation.ocsp_key_ref),
                issuer_key_ref=generation.key_ref,
                first_key=generation is ca.generations[-1],
            )
            for ca in snapshot.cas.values()
            for generation in ca.generations
            if generation.ocsp_key_ref is not None and generation.ocsp_certificate_der is not None
        ]
        self._responders = (snapshot.version, out)
        return out

    def answer(self, request_der: bytes) -> bytes:
        request = parse_request(request_der)
        responders = self.responders()
        first = request["tbs_request"]["request_list"][0]["req_cert"]
        chosen = next((r for r in responders if r.matches(first)), None)  # the one `respond` picks

        def lookup(ca_name: str, serial: int) -> CertStatus:
            with self.db.session() as session:
                row = session.get(Certificate, serial_hex(serial))
                if row is None or row.issuer_ca != ca_name:
                    return CertStatus("unknown")
                if chosen is not None and not chosen.answers_for(row.issuer_key_ref):
                    return CertStatus("unknown")  # another key of the CA signed it: not this CertID's certificate
                if row.status == "revoked":
                    return CertStatus("revoked", row.revoked_at, row.revocation_reason, row.invalidity_date)
                return CertStatus("good")

        return respond(request, responders, lookup, truncate(datetime.now(UTC)), OCSP_VALIDITY)
