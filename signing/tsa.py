"""The built-in RFC 3161 timestamp authority: one unit per key family (SM2 with SM3, P-256 with SHA-256).

Tokens are CMS SignedData over a TSTInfo (RFC 3161 §2.4.2) with the ESS signingCertificateV2 attribute
(RFC 5816). Serial numbers are 127 CSPRNG bits. The unit's certificate is issued by the national issuing
CA of its family (`cn-100000-*`, never a region: a withdrawn region must not break every region's
timestamps) under the `tsa` profile (EKU timeStamping, critical). A unit certified elsewhere (a home made
before the national CAs existed) gets a fresh certificate for the same custody key on first use.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import algos, cms, core, tsp, x509

import gm.asn1  # noqa: F401  (registers SM2 / SM3 with asn1crypto)
from ca.authority import CertificateAuthorityService, IssuedCertificate
from gm import der, oids
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm, KeyCustody, KeyNotFound, SigningHandle
from keys.rotation import provisional_version
from ledger.events import record_event
from signing.errors import SigningError
from store.db import Database
from store.models import TimestampUnit

TSA_POLICY = oids.TSA_POLICY
ISSUING_CA = {"sm2": "cn-100000-sm2", "p256": "cn-100000-p256"}
DIGEST_LENGTHS = {"sm3": 32, "sha256": 32, "sha384": 48, "sha512": 64}
MAX_REQUEST_BYTES = 16 * 1024
REFRESH_SECONDS = 5.0  # how long a process keeps its view of a unit (another may rotate it)


class TimestampRequestInvalid(SigningError):
    code = "tsa_request_invalid"


def digest(name: str, data: bytes) -> bytes:
    return sm3(data) if name == "sm3" else hashlib.new(name, data).digest()


@dataclass(frozen=True)
class Unit:
    family: str
    handle: SigningHandle
    certificate: x509.Certificate
    certificate_der: bytes
    chain: list[bytes]

    @property
    def digest_algorithm(self) -> str:
        return "sm3" if self.family == "sm2" else "sha256"


class TimestampAuthority:
    def __init__(self, db: Database, custody: KeyCustody, ca: CertificateAuthorityService) -> None:
        self.db = db
        self.custody = custody
        self.ca = ca
        self._units: dict[str, Unit] = {}
        self._allowances: dict[str, int] = {}
        self._fresh_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def unit(self, family: str) -> Unit:
        found = self._units.get(family)
        if found is not None and time.monotonic() < self._fresh_until.get(family, 0.0):
            return found
        if family not in ISSUING_CA:
            raise TimestampRequestInvalid(f"no timestamping unit for {family}")
        with self._lock:
            again = self._units.get(family)
            if again is not None and again is not found and time.monotonic() < self._fresh_until.get(family, 0.0):
                return again  # another thread re-read it meanwhile
            with self.db.session() as session:
                row = session.get(TimestampUnit, family)
            if row is None or row.ca_name != ISSUING_CA[family]:
                row = self._provision(family)
            chain = self.ca.chain_for(ISSUING_CA[family], row.certificate_der)  # its CA key, old or new
            unit = Unit(
                family=family,
                handle=self.custody.signer(row.key_ref),
                certificate=x509.Certificate.load(row.certificate_der),
                certificate_der=row.certificate_der,
                chain=chain,
            )
            if found is not None and found.certificate_der != unit.certificate_der:
                self._allowances.pop(family, None)  # another process rotated the unit
            self._units[family] = unit
            self._fresh_until[family] = time.monotonic() + REFRESH_SECONDS
            return unit

    def rotate(
        self, family: str, actor: str | None = None, custody: KeyCustody | None = None
    ) -> tuple[TimestampUnit, int]:
        """A new custody version of the unit's key and a certificate for it from the national issuing CA;
        tokens are signed with it from now on (this process at once, others within `REFRESH_SECONDS`).
        Tokens signed before carry their own certificate and keep verifying. Returns the unit's row and
        the previous key version; `tsa.rotated` is recorded with the row change."""
        if family not in ISSUING_CA:
            raise KeyNotFound(f"no timestamping unit for {family}")
        self.unit(family)  # provisioned (and certified by the national CA) first
        with self._lock:
            with self.db.session() as session:
                current = session.get(TimestampUnit, family)
                assert current is not None
                name, _, previous = current.key_ref.partition("@")
            with provisional_version(custody or self.custody, name) as version:  # `custody`: recording the officer
                issued = self._certify(family, version.public_key_der, actor or "tsa")
                with self.db.session() as session:
                    row = session.get(TimestampUnit, family, with_for_update=True)
                    assert row is not None
                    old_serial = row.certificate_serial
                    row.key_ref = version.ref
                    row.certificate_serial = issued.serial
                    row.certificate_der = issued.der
                    row.created_at = datetime.now(UTC)
                    record_event(
                        session,
                        "tsa.rotated",
                        actor=actor,
                        subject=f"tsa.{family}",
                        payload={
                            "family": family,
                            "key": version.ref,
                            "certificate_serial": issued.serial,
                            "previous_certificate_serial": old_serial,
                        },
                    )
                    session.flush()
                    session.expunge(row)
            self._units.pop(family, None)
            self._allowances.pop(family, None)
            return row, int(previous or 1)

    def _certify(self, family: str, public_key_der: bytes, actor: str) -> IssuedCertificate:
        return self.ca.issue_for_key(
            public_key_der,
            {"country_name": "CN", "organization_name": "trustseal", "common_name": f"trustseal TSA {family.upper()}"},
            "tsa",
            ISSUING_CA[family],
            actor=actor,
        )

    def _provision(self, family: str) -> TimestampUnit:
        key_name = f"tsa.{family}"
        try:
            version = self.custody.get(key_name)
        except KeyNotFound:
            version = self.custody.create(key_name, KeyAlgorithm(family))
        issued = self._certify(family, version.public_key_der, "tsa")
        values = {
            "ca_name": ISSUING_CA[family],
            "key_ref": version.ref,
            "certificate_serial": issued.serial,
            "certificate_der": issued.der,
            "created_at": datetime.now(UTC),
        }
        with self.db.session() as session:
            row = session.get(TimestampUnit, family)
            if row is None:
                row = TimestampUnit(family=family, **values)
                session.add(row)
            else:  # re-certified by the national CA: same key, new certificate
                for column, value in values.items():
                    setattr(row, column, value)
            session.flush()
        return row

    def allowance(self, family: str) -> int:
        """Bytes a signatureTimeStampToken attribute of this unit needs, with room for longer serials."""
        cached = self._allowances.get(family)
        if cached is None:
            unit = self.unit(family)
            sample = self.token(unit.digest_algorithm, b"\x00" * 32, nonce=None, family=family)
            cached = len(sample) + 64
            self._allowances[family] = cached
        return cached

    # -- tokens ---------------------------------------------------------------------------------

    def token(
        self, hash_algorithm: str, hashed_message: bytes, *, nonce: int | None = None, family: str | None = None
    ) -> bytes:
        """DER TimeStampToken (a CMS ContentInfo) for a message imprint."""
        if DIGEST_LENGTHS.get(hash_algorithm) != len(hashed_message):
            raise TimestampRequestInvalid(f"imprint must be a {hash_algorithm} digest")
        unit = self.unit(family or ("sm2" if hash_algorithm == "sm3" else "p256"))
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": TSA_POLICY,
                "message_imprint": {"hash_algorithm": {"algorithm": hash_algorithm}, "hashed_message": hashed_message},
                "serial_number": secrets.randbits(127) | (1 << 126),
                "gen_time": datetime.now(UTC).replace(microsecond=0),
                "accuracy": {"seconds": 1},
                "nonce": nonce,
                "tsa": x509.GeneralName(name="directory_name", value=unit.certificate.subject),
            }
        )
        if nonce is None:
            del info["nonce"]
        content = info.dump()
        md = unit.digest_algorithm
        unsorted = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC).replace(microsecond=0)})]},
                {"type": "message_digest", "values": [digest(md, content)]},
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        {
                            "certs": [
                                {
                                    "hash_algorithm": {"algorithm": "sha256"},
                                    "cert_hash": hashlib.sha256(unit.certificate_der).digest(),
                                    "issuer_serial": {
                                        "issuer": [
                                            x509.GeneralName(name="directory_name", value=unit.certificate.issuer)
                                        ],
                                        "serial_number": unit.certificate.serial_number,
                                    },
                                }
                            ]
                        }
                    ],
                },
            ]
        )
        # DER SET OF: sorted by encoding (X.690 §11.6); asn1crypto keeps insertion order
        encoded = sorted(attr.dump() for attr in unsorted)
        signed_attrs = cms.CMSAttributes.load(der.tlv(0x31, b"".join(encoded)))
        signature = unit.handle.sign(signed_attrs.dump())
        mechanism = "sm2_sm3" if unit.family == "sm2" else "sha256_ecdsa"
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": md})],
                "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
                "certificates": [x509.Certificate.load(c) for c in [unit.certificate_der, *unit.chain]],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": cms.SignerIdentifier(
                            {
                                "issuer_and_serial_number": {
                                    "issuer": unit.certificate.issuer,
                                    "serial_number": unit.certificate.serial_number,
                                }
                            }
                        ),
                        "digest_algorithm": {"algorithm": md},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": {"algorithm": mechanism},
                        "signature": signature,
                    }
                ],
            }
        )
        token: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
        return token

    def respond(self, request_der: bytes, family: str | None = None) -> bytes:
        """DER TimeStampResp for a DER TimeStampReq; malformed requests get a rejection, not an exception."""
        try:
            if not request_der or len(request_der) > MAX_REQUEST_BYTES:
                raise ValueError("request empty or too large")
            request = tsp.TimeStampReq.load(request_der, strict=True)
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            hashed = imprint["hashed_message"].native
            nonce = request["nonce"].native
            policy = request["req_policy"].native
            request["extensions"].native  # noqa: B018  (force parse)
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format", "not a DER TimeStampReq")
        if request["extensions"].native:
            return _rejection("unaccepted_extension", "no request extensions are supported")
        if policy is not None and policy != TSA_POLICY:
            return _rejection("unaccepted_policy", f"this TSA issues under {TSA_POLICY}")
        if algorithm not in DIGEST_LENGTHS:
            return _rejection("bad_alg", f"unsupported imprint algorithm {algorithm}")
        try:
            token = self.token(algorithm, hashed, nonce=nonce, family=family)
        except TimestampRequestInvalid as exc:
            return _rejection("bad_data_format", exc.detail)
        response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)})
        der: bytes = response.dump()
        return der


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp with the token OPTIONAL, as the RFC has it (asn1crypto makes it mandatory)."""

    _fields = [  # noqa: RUF012
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _rejection(reason: str, text: str) -> bytes:
    response = TimeStampResp(
        {"status": {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({reason})}}
    )
    der: bytes = response.dump()
    return der


SIGNATURE_TIMESTAMP = oids.ID_AA_SIGNATURE_TIMESTAMP


def signature_timestamp_attribute(tsa: TimestampAuthority, family: str) -> tuple[int, Callable[[bytes], list[bytes]]]:
    """(size allowance, callback) for signing.cms: the callback turns a signature value into the
    signatureTimeStampToken unsigned attribute (imprint = hash of the signature: CAdES / PAdES B-T)."""
    from signing.cms import attribute as cms_attribute

    unit = tsa.unit(family)

    def attribute(signature: bytes) -> list[bytes]:
        token = tsa.token(unit.digest_algorithm, digest(unit.digest_algorithm, signature), family=family)
        return [cms_attribute(SIGNATURE_TIMESTAMP, token)]

    return tsa.allowance(family), attribute
