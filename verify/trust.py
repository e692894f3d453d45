"""Trust anchors for verification: signed cross-region trust lists (DESIGN.md format) and the caller's own
anchors. A list is accepted only if its SM2 signature (over the RFC 8785 canonical JSON without
`signature`) verifies with a signer certificate that is pinned by fingerprint or issued by a national
root the verifier holds, and only while it is fresh (now <= next_update).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem, x509

from gm import jcs, sm2
from gm.signatures import verify_signature


class TrustListError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def status_at(history: tuple[tuple[str, datetime], ...], moment: datetime) -> str:
    """The status a trust-list history gives at `moment` ("unknown" before its first entry)."""
    status = "unknown"
    for state, since in sorted(history, key=lambda item: item[1]):
        if since <= moment:
            status = state
    return status


@dataclass(frozen=True)
class ListedCA:
    name: str
    region_code: str
    region_name: str
    certificate: x509.Certificate
    der: bytes
    history: tuple[tuple[str, datetime], ...]  # (status, from), oldest first

    def status_at(self, moment: datetime) -> str:
        return status_at(self.history, moment)


@dataclass(frozen=True)
class ListedMaker:
    """A seal maker the trust list names under a region's `seal_makers` (or one given with --maker,
    region_code None: trusted for seals of any region, because the verifier's user said so)."""

    name: str
    region_code: str | None
    certificate: x509.Certificate
    der: bytes
    history: tuple[tuple[str, datetime], ...]

    def status_at(self, moment: datetime) -> str:
        return status_at(self.history, moment)

    def vouches_for(self, es_id: str) -> bool:
        """A region's maker vouches only for seals whose esID carries the region's code."""
        return self.region_code is None or es_id.startswith(self.region_code)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM (one or many) or DER certificates."""
    if pem.detect(data):
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [x509.Certificate.load(data)]


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _time(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise TrustListError("TRUST_LIST_MALFORMED", f"{name} is not an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _certificate(text: Any) -> tuple[x509.Certificate, bytes]:
    if not isinstance(text, str):
        raise TrustListError("TRUST_LIST_MALFORMED", "certificates are PEM strings")
    try:
        (_, _, der) = pem.unarmor(text.encode("ascii"))
        cert = x509.Certificate.load(der)
        cert.native  # noqa: B018  (full parse now)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise TrustListError("TRUST_LIST_MALFORMED", f"bad certificate in the trust list: {exc}") from None
    return cert, der


def _history(entry: dict[str, Any]) -> tuple[tuple[str, datetime], ...]:
    items = entry.get("history", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TrustListError("TRUST_LIST_MALFORMED", "history is a list of objects")
    return tuple((str(item.get("status")), _time(item.get("from"), "history.from")) for item in items)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        return verify_signature(
            issuer.public_key.dump(),
            cert["signature_algorithm"],
            cert["signature_value"].native,
            cert["tbs_certificate"].dump(),
        )
    except ValueError:
        return False


@dataclass
class TrustStore:
    """Everything a verifier trusts: CAs from accepted trust lists, plus explicit anchors."""

    cas: list[ListedCA] = field(default_factory=list)
    anchors: list[x509.Certificate] = field(default_factory=list)
    cross: list[x509.Certificate] = field(default_factory=list)  # cross-certificates: path material only
    makers: list[ListedMaker] = field(default_factory=list)  # trusted seal makers (never signer anchors)
    lists: list[dict[str, Any]] = field(default_factory=list)  # summaries of the accepted lists

    def add_anchor(self, cert: x509.Certificate) -> None:
        self.anchors.append(cert)

    def add_maker(self, cert: x509.Certificate) -> None:
        """Trust a seal maker explicitly (the CLI's --maker), for seals of any region."""
        since = cert.not_valid_before
        self.makers.append(ListedMaker("explicit", None, cert, cert.dump(), (("granted", since),)))

    def add_list(
        self,
        document: dict[str, Any] | bytes | str,
        *,
        roots: list[x509.Certificate] = (),  # type: ignore[assignment]
        pinned: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> None:
        doc = json.loads(document) if isinstance(document, bytes | str) else dict(document)
        if not isinstance(doc, dict):
            raise TrustListError("TRUST_LIST_MALFORMED", "a trust list is a JSON object")
        signature_b64 = doc.pop("signature", None)
        if not isinstance(signature_b64, str):
            raise TrustListError("TRUST_LIST_MALFORMED", "the trust list is not signed")
        signer, signer_der = _certificate(doc.get("signer_certificate"))
        if fingerprint(signer_der) not in pinned and not any(_issued_by(signer, root) for root in roots):
            raise TrustListError(
                "TRUST_LIST_SIGNER_UNTRUSTED",
                "the list's signer is neither pinned nor issued by a trusted national root",
            )
        try:
            key = sm2.SM2PublicKey.from_spki(signer.public_key.dump())
            signature = base64.b64decode(signature_b64, validate=True)
            canonical = jcs.canonical(doc)
        except (sm2.InvalidKey, ValueError) as exc:
            raise TrustListError("TRUST_LIST_SIGNATURE_INVALID", f"cannot check the list's signature: {exc}") from None
        if not key.verify(signature, canonical):
            raise TrustListError("TRUST_LIST_SIGNATURE_INVALID", "the trust list's signature does not verify")
        moment = now or datetime.now(UTC)
        next_update = _time(doc.get("next_update"), "next_update")
        if moment > next_update:
            raise TrustListError("TRUST_LIST_STALE", f"the trust list expired at {next_update.isoformat()}")
        if not signer.not_valid_before <= moment <= signer.not_valid_after:
            raise TrustListError("TRUST_LIST_SIGNER_UNTRUSTED", "the list's signer certificate is not valid now")
        regions = doc.get("regions")
        if not isinstance(regions, list):
            raise TrustListError("TRUST_LIST_MALFORMED", "regions must be a list")
        for region in regions:
            if not isinstance(region, dict) or not isinstance(region.get("cas"), list):
                raise TrustListError("TRUST_LIST_MALFORMED", "each region has a list of cas")
            for entry in region["cas"]:
                cert, der = _certificate(entry.get("certificate"))
                history = _history(entry)
                self.cas.append(
                    ListedCA(
                        name=str(entry.get("name", "")),
                        region_code=str(region.get("code", "")),
                        region_name=str(region.get("name", "")),
                        certificate=cert,
                        der=der,
                        history=history or (("granted", cert.not_valid_before),),
                    )
                )
            for entry in region.get("seal_makers") or []:
                if not isinstance(entry, dict):
                    raise TrustListError("TRUST_LIST_MALFORMED", "seal_makers holds objects")
                cert, der = _certificate(entry.get("certificate"))
                self.makers.append(
                    ListedMaker(
                        name=str(entry.get("name", "")),
                        region_code=str(region.get("code", "")),
                        certificate=cert,
                        der=der,
                        history=_history(entry) or (("granted", cert.not_valid_before),),
                    )
                )
        for entry in doc.get("cross_certificates") or []:
            if not isinstance(entry, dict):
                raise TrustListError("TRUST_LIST_MALFORMED", "cross_certificates holds objects")
            self.cross.append(_certificate(entry.get("certificate"))[0])
        self.lists.append({"sequence": doc.get("sequence"), "issued_at": doc.get("issued_at"), "signer": signer_der})

    def add_list_file(self, path: Path, **kwargs: Any) -> None:
        self.add_list(path.read_bytes(), **kwargs)

    def trust_roots(self) -> list[x509.Certificate]:
        """Anchors for path building: the listed roots (self-signed) and explicit anchors. Listed
        intermediate CAs are offered as path material (`intermediates`), not anchors: each CA's
        trust-list status is judged on the built path at the signing time, and revocation of an
        intermediate is checked against its parent's CRL like any other."""
        return [c.certificate for c in self.cas if c.certificate.self_signed != "no"] + list(self.anchors)

    def intermediates(self) -> list[x509.Certificate]:
        """Listed CAs below the roots, and cross-certificates that let another hierarchy's paths reach
        a listed root."""
        return [c.certificate for c in self.cas if c.certificate.self_signed == "no"] + list(self.cross)

    def ca_keys(self) -> frozenset[bytes]:
        """Public keys (SPKI DER) of every trusted CA: listed, cross-certified or explicit anchors."""
        certs = [c.certificate for c in self.cas] + list(self.cross) + list(self.anchors)
        return frozenset(c.public_key.dump() for c in certs)

    def is_ca_certificate(self, der: bytes) -> bool:
        """One of the trusted CA certificates themselves (listed, cross-certificate or anchor)."""
        return any(c.der == der for c in self.cas) or any(c.dump() == der for c in [*self.cross, *self.anchors])

    def listed_maker(self, der: bytes) -> list[ListedMaker]:
        return [m for m in self.makers if m.der == der]

    def listed(self, cert: x509.Certificate) -> ListedCA | None:
        der = cert.dump()
        return next((c for c in self.cas if c.der == der), None)
