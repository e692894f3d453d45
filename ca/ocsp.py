"""RFC 6960 responder core: parse a request, answer each CertID, sign with the delegated signer."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import algos, core, ocsp, x509
from sqlalchemy.exc import SQLAlchemyError

from ca.certificates import serial_hex, signature_algorithm, truncate
from ca.errors import OCSPMalformed
from ca.ocsp_store import PresignedResponses, Stored, StoredKey
from ca.snapshot import Snapshots
from keys.custody import KeyCustody, SigningHandle
from store.db import Database
from store.models import Certificate

MAX_REQUEST_BYTES = 16 * 1024
MAX_SINGLE_REQUESTS = 16
Clock = Callable[[], datetime]
log = logging.getLogger("trustseal.ocsp")
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
            cert_id["hash_algorithm"]["parameters"].dump()  # read later (the stored answer's CertID spelling)
            cert_id["hash_algorithm"].native  # noqa: B018
            cert_id["issuer_name_hash"].native  # noqa: B018
            cert_id["issuer_key_hash"].native  # noqa: B018
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


OCSP_VALIDITY = timedelta(hours=4)  # nextUpdate - thisUpdate; the scheduler re-signs before half of it
PARSED_REQUESTS_KEPT = 4096  # request DER -> what it asks for, so a repeated request is not parsed again


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OCSPAnswer:
    """An OCSPResponse and, when it is a stored pre-signed one, its thisUpdate / nextUpdate (what HTTP
    caching is derived from, api/routes/ocsp.py). Live answers (a nonce, several CertIDs, an unknown
    serial, refusals) carry neither."""

    der: bytes
    this_update: datetime | None = None
    next_update: datetime | None = None


@dataclass(frozen=True)
class _Parsed:
    """A request the stored responses can answer: one CertID of a CA with a responder, no nonce."""

    responders: list[Responder]  # the list it was matched in: a new CA snapshot parses again
    responder: Responder
    key: StoredKey


def signer_id(responder: Responder) -> str:
    """Hex SHA-256 of the responder's signer certificate (asn1crypto caches it on the certificate)."""
    return responder.signer_certificate.sha256.hex()


class OCSPResponder:
    """The responder of POST /v1/ocsp: every CA with a delegated signer answers for what it issued, from
    the certificate rows.

    A request naming one certificate without a nonce is answered from its stored pre-signed response
    (ca/ocsp_store.py), signed on the first such request and re-signed by the scheduler (`refresh_due`)
    before half its validity. A request with a nonce is signed live with the nonce echoed: RFC 8954 lets a
    responder ignore the nonce, but a client that sends one may insist on it (OpenSSL's does), and the
    per-client budget bounds what live signing costs. Several CertIDs, a hash algorithm we do not know or
    an unknown serial are answered live as well, never stored."""

    def __init__(self, snapshots: Snapshots, db: Database, custody: KeyCustody, clock: Clock = utc_now) -> None:
        self.snapshots = snapshots
        self.db = db
        self.custody = custody
        self.clock = clock
        self.presigned = PresignedResponses(db)
        self._responders: tuple[int, list[Responder]] | None = None
        self._parsed: dict[bytes, _Parsed] = {}

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
        return self.respond_to(request_der).der

    def stored_answer(self, request_der: bytes) -> OCSPAnswer | None:
        """The stored answer to a request already seen and still current, or None (then `respond_to`):
        no parsing, no signing, no write — one dictionary lookup and the one indexed read `respond_to`
        makes too (`presigned.lookup`, with its status rule), cheap enough for the HTTP layer to ask on
        the event loop before it hands anything else to a worker thread."""
        parsed = self._parsed.get(request_der)
        if parsed is None or parsed.responders is not self.responders():
            return None
        stored = self.presigned.lookup(parsed.key, truncate(self.clock()))
        return None if stored is None else OCSPAnswer(stored.der, stored.this_update, stored.next_update)

    def respond_to(self, request_der: bytes) -> OCSPAnswer:
        """The answer to one request: stored bytes when it can be, else signed now. OCSPMalformed for a
        request that cannot be read."""
        now = truncate(self.clock())
        responders = self.responders()
        parsed = self._parsed.get(request_der)
        if parsed is None or parsed.responders is not responders:
            request = parse_request(request_der)
            parsed = self._presignable(request, responders)
            if parsed is None:
                return self._live(request, responders, now)
            if len(self._parsed) >= PARSED_REQUESTS_KEPT:
                self._parsed.clear()
            self._parsed[request_der] = parsed
        stored = self.presigned.lookup(parsed.key, now) or self._presign(parsed.responder, parsed.key, now)
        if stored is None:  # not a certificate of that CA: `unknown`, signed live (it may be issued later)
            return self._live(parse_request(request_der), responders, now)
        return OCSPAnswer(stored.der, stored.this_update, stored.next_update)

    def _live(self, request: ocsp.OCSPRequest, responders: list[Responder], now: datetime) -> OCSPAnswer:
        """Signed for this request: `respond` picks the responder of the first CertID (none: unauthorized)."""
        first = request["tbs_request"]["request_list"][0]["req_cert"]
        chosen = next((r for r in responders if r.matches(first)), None)
        lookup = self._lookup(chosen) if chosen is not None else (lambda _ca, _serial: CertStatus("unknown"))
        return OCSPAnswer(respond(request, responders, lookup, now, OCSP_VALIDITY))

    def refresh_due(self, batch: int = 500) -> int:
        """The scheduler's round (api/app.py): re-sign each stored response past half its validity or
        signed by a signer no longer answering; drop those of expired certificates and of CA keys without
        a responder. Returns how many were re-signed."""
        refreshed = 0
        for _ in range(10_000):  # each pass re-signs or drops what it read: a bound, not a retry loop
            now = truncate(self.clock())
            responders = self.responders()
            due = self.presigned.due(now, OCSP_VALIDITY, sorted({signer_id(r) for r in responders}), batch)
            unwritten = 0
            for item in due:
                responder = _by_key(responders, item.hash_algorithm, item.issuer_key_hash)
                key = StoredKey(item.serial, item.hash_algorithm, item.issuer_key_hash, "")
                if responder is not None and not item.expired_certificate:
                    key = StoredKey(item.serial, item.hash_algorithm, item.issuer_key_hash, signer_id(responder))
                    stored = self._presign(responder, key, now)
                    if stored is not None:
                        refreshed += stored.kept
                        unwritten += not stored.kept
                        continue
                self.presigned.drop(item)
            # a pass whose writes failed would read the same rows again (a read-only database after a
            # failover): stop, the next round retries, instead of re-signing one batch 10,000 times
            if len(due) < batch or unwritten:
                break
        return refreshed

    def _presignable(self, request: ocsp.OCSPRequest, responders: list[Responder]) -> _Parsed | None:
        singles = request["tbs_request"]["request_list"]
        if len(singles) != 1 or request_nonce(request) is not None:
            return None
        cert_id = singles[0]["req_cert"]
        form = _hash_form(cert_id["hash_algorithm"])
        responder = next((r for r in responders if r.matches(cert_id)), None)
        if form is None or responder is None:
            return None
        serial = cert_id["serial_number"].native
        if _cert_id(responder, form, serial).dump() != cert_id.dump():  # e.g. a zero-padded serial: live
            return None
        key = StoredKey(serial_hex(serial), form, cert_id["issuer_key_hash"].native.hex(), signer_id(responder))
        return _Parsed(responders, responder, key)

    def _presign(self, responder: Responder, key: StoredKey, now: datetime) -> Stored | None:
        """Sign and store the response for `key` (None for a serial the CA did not issue). Its CertID is the
        request's, byte for byte (`_presignable` admits no other): some clients (Bouncy Castle's) match a
        response to their request by comparing the whole CertID, hash parameters included."""
        status = self._lookup(responder)(responder.ca_name, int(key.serial, 16))
        if status.status == "unknown":
            return None
        cert_id = _cert_id(responder, key.hash_algorithm, int(key.serial, 16))
        request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
        der = respond(request, [responder], lambda _ca, _serial: status, now, OCSP_VALIDITY)
        try:
            self.presigned.put(key, status.status, der, now, now + OCSP_VALIDITY)
        except SQLAlchemyError:  # the answer is right either way; the next request stores it again
            log.warning("a pre-signed OCSP response could not be stored", exc_info=True)
            return Stored(der, now, now + OCSP_VALIDITY, kept=False)
        return Stored(der, now, now + OCSP_VALIDITY)

    def _lookup(self, responder: Responder) -> Callable[[str, int], CertStatus]:
        """The certificate-status lookup for answers `responder` signs (live ones and stored ones alike):
        from the certificate rows, `unknown` for what its CA did not issue or another key of it signed."""

        def lookup(ca_name: str, serial: int) -> CertStatus:
            with self.db.session() as session:
                row = session.get(Certificate, serial_hex(serial))
                if row is None or row.issuer_ca != ca_name:
                    return CertStatus("unknown")
                if not responder.answers_for(row.issuer_key_ref):
                    return CertStatus("unknown")  # another key of the CA signed it: not this CertID's certificate
                if row.status == "revoked":
                    return CertStatus("revoked", row.revoked_at, row.revocation_reason, row.invalidity_date)
                return CertStatus("good")

        return lookup


def _by_key(responders: Sequence[Responder], form: str, issuer_key_hash: str) -> Responder | None:
    """The responder of the CA key whose hash (in the CertID form `form`) is `issuer_key_hash` (hex)."""
    algorithm = form.removesuffix(NULL_PARAMETERS)
    for responder in responders:
        if responder._hashes(algorithm)[1].hex() == issuer_key_hash:
            return responder
    return None


NULL_PARAMETERS = "+null"  # a CertID hash form: the AlgorithmIdentifier carries NULL parameters


def _hash_form(algorithm: algos.DigestAlgorithm) -> str | None:
    """How a CertID names its hash: the name, plus NULL_PARAMETERS when it carries NULL parameters (RFC
    5754 allows both spellings; clients use either). None for a hash we do not know or other parameters."""
    name = HASHES.get(algorithm["algorithm"].native)
    parameters = algorithm["parameters"]  # Null for the hashes asn1crypto knows, Any for SM3
    if name is None:
        return None
    if isinstance(parameters, core.Void):
        return name
    return name + NULL_PARAMETERS if parameters.dump() == b"\x05\x00" else None


def _cert_id(responder: Responder, form: str, serial: int) -> ocsp.CertId:
    """The CertID for `serial` under `responder`'s CA key, its hash spelt as `form` says."""
    algorithm = form.removesuffix(NULL_PARAMETERS)
    oid = algos.DigestAlgorithmId(algorithm).dump()
    spelt = oid + (b"\x05\x00" if form.endswith(NULL_PARAMETERS) else b"")
    name_hash, key_hash = responder._hashes(algorithm)
    return ocsp.CertId(
        {
            "hash_algorithm": algos.DigestAlgorithm.load(b"\x30" + bytes([len(spelt)]) + spelt),
            "issuer_name_hash": name_hash,
            "issuer_key_hash": key_hash,
            "serial_number": serial,
        }
    )
