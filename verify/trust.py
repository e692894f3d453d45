"""Trust anchors for verification: signed cross-region trust lists (DESIGN.md format) and the caller's own
anchors. A list is accepted only if its SM2 signature (over the RFC 8785 canonical JSON without
`signature`) verifies with a signer certificate of the trust-list-signer profile (its EKU, not a CA,
valid now, not revoked on the root's CRL at hand) that is pinned by fingerprint or issued directly by a
national root the verifier holds, and only if its `sequence` is no lower than the highest the caller
has seen. A list past `next_update` is loaded but stale: trust decisions resting on it become
INDETERMINATE (TRY_LATER, verify/seal_checks.judge_cas).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import crl, pem, x509

from gm import jcs, oids, sm2
from gm.signatures import verify_signature
from verify import revocation_time
from verify.crl_scope import may_list


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
    stale_since: datetime | None = None  # the next_update of the stale list that names it

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
    stale_since: datetime | None = None  # the next_update of the stale list that names it (None: fresh)

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


def _revoked_on(cert: x509.Certificate, issuer: x509.Certificate, crls: list[crl.CertificateList],
                moment: datetime) -> datetime | None:  # fmt: skip
    """When a CRL at hand, signed by `issuer`, says `cert` was revoked (at or before `moment`); else None.
    A CRL whose signature does not verify is no revocation information and is ignored."""
    for listing in crls:
        tbs = listing["tbs_cert_list"]
        if tbs["issuer"] != issuer.subject or not may_list(listing):  # an entry revokes, whatever the scope
            continue
        try:
            signed = verify_signature(issuer.public_key.dump(), listing["signature_algorithm"],
                                      listing["signature"].native, tbs.dump())  # fmt: skip
        except ValueError:
            signed = False
        if not signed:
            continue
        for entry in tbs["revoked_certificates"] or []:
            when = revocation_time.crl_entry(entry)  # an earlier invalidityDate counts (RFC 5280 §5.3.2)
            if entry["user_certificate"].native == cert.serial_number and when is not None and when <= moment:
                return when
    return None


def signer_problem(
    signer: x509.Certificate,
    der: bytes,
    roots: list[x509.Certificate],
    pinned: tuple[str, ...],
    crls: list[crl.CertificateList],
    moment: datetime,
) -> str | None:
    """Why `signer` may not sign a trust list, or None. Pinned or issued directly by a national root
    (DESIGN.md: the trust-list signer is certified by the root itself), and in any case a certificate of
    the trust-list-signer profile: its EKU, not a CA, a signing key usage, valid at `moment`, not revoked
    on a root CRL at hand. A CA's certificate chains to the root too: without these rules a regional CA
    could publish a list naming any root it likes."""
    issuers = [root for root in roots if _issued_by(signer, root)]
    if fingerprint(der) not in pinned and not issuers:
        return "the list's signer is neither pinned nor issued by a trusted national root"
    usages = signer.extended_key_usage_value
    if usages is None or not {usage.dotted for usage in usages} & oids.EKU_TRUST_LIST_SIGNERS:
        return "the signer certificate does not carry the trust-list-signer extended key usage"
    constraints = signer.basic_constraints_value
    if constraints is not None and constraints["ca"].native:
        return "the signer certificate is a CA certificate (basicConstraints cA), not a trust-list signer"
    key_usage = signer.key_usage_value
    if key_usage is None or not {"digital_signature", "non_repudiation"} & set(key_usage.native):
        return "the signer certificate's key usage allows no digitalSignature / nonRepudiation"
    if not signer.not_valid_before <= moment <= signer.not_valid_after:
        return (f"the signer certificate is not valid now (valid {signer.not_valid_before.isoformat()} to "
                f"{signer.not_valid_after.isoformat()})")  # fmt: skip
    for root in issuers or [r for r in roots if r.subject == signer.issuer]:
        if not root.not_valid_before <= moment <= root.not_valid_after:
            return f"the national root {root.subject.human_friendly} is not valid now"
        revoked = _revoked_on(signer, root, crls, moment)
        if revoked is not None:
            return f"the signer certificate was revoked on {revoked.isoformat()} (the root's CRL)"
    return None


MAX_LINK_HOPS = 8  # a root rolled over more often than this within one list's lifetime is not followed


def linked_roots(
    doc: dict[str, Any], roots: list[x509.Certificate], crls: list[crl.CertificateList], moment: datetime
) -> list[x509.Certificate]:
    """The other keys of a root the caller holds, from the list's link certificates (a rolled-over root,
    RFC 4210 §4.4): a link counts only if a key already reached (a held root, or a link accepted before)
    signed it, it names that root as subject and issuer, is a CA certificate allowed to sign certificates,
    is valid at `moment` and is not revoked on a CRL at hand. Links are followed in chains of at most
    MAX_LINK_HOPS: after two rollovers a caller holding only the first root reaches the third key through
    the second. A caller who installed only the new root thus still accepts a signer the old root key
    certified (and one who holds only the old root, a signer a newer key certified). Nothing here is
    trusted because the list says so: each link rests on a signature by a key the caller reached from a
    root it holds."""
    candidates: list[x509.Certificate] = []
    regions = doc.get("regions")
    for region in regions if isinstance(regions, list) else []:  # not yet known to be signed: hostile input
        cas = region.get("cas") if isinstance(region, dict) else None
        for entry in cas if isinstance(cas, list) else []:
            texts = entry.get("links") if isinstance(entry, dict) else None
            for text in texts if isinstance(texts, list) else []:
                try:
                    link, _ = _certificate(text)
                except TrustListError:
                    continue
                usage = link.key_usage_value
                if not link.ca or usage is None or "key_cert_sign" not in usage.native:
                    continue
                if link.subject != link.issuer or not link.not_valid_before <= moment <= link.not_valid_after:
                    continue
                candidates.append(link)
    out: list[x509.Certificate] = []
    reached = list(roots)
    keys = {root.public_key.dump() for root in roots}
    for _ in range(MAX_LINK_HOPS):
        found = []
        for link in candidates:
            if link.public_key.dump() in keys or any(link is taken for taken in out):
                continue
            for issuer in reached:
                if issuer.subject == link.subject and _issued_by(link, issuer):
                    if _revoked_on(link, issuer, crls, moment) is None:
                        found.append(link)
                    break
        if not found:
            break
        for link in found:
            if link.public_key.dump() not in keys:
                out.append(link)
                reached.append(link)
                keys.add(link.public_key.dump())
    return out


def _signed_bytes(doc: dict[str, Any]) -> bytes:
    try:
        return jcs.canonical(doc)
    except ValueError as exc:
        raise TrustListError("TRUST_LIST_SIGNATURE_INVALID", f"cannot check the list's signature: {exc}") from None


def _verifies(signer: x509.Certificate, signature_b64: Any, canonical: bytes) -> bool:
    """Whether base64 `signature_b64` is `signer`'s SM2 signature over `canonical`."""
    if not isinstance(signature_b64, str):
        return False
    try:
        key = sm2.SM2PublicKey.from_spki(signer.public_key.dump())
        signature = base64.b64decode(signature_b64, validate=True)
    except (sm2.InvalidKey, ValueError):
        return False
    return bool(key.verify(signature, canonical))


def _handover(
    doc: dict[str, Any],
    handover_b64: Any,
    canonical: bytes,
    signer: x509.Certificate,
    roots: list[x509.Certificate],
    pins: tuple[str, ...],
    crls: list[crl.CertificateList],
    moment: datetime,
) -> str | None:
    """A handover list (ca/trust_list.py rotate_signer) names the old signer as `previous_signer_certificate`
    and carries its signature over the same canonical JSON as `handover_signature`. The new signer is
    followed when that old signer is itself trusted (pinned, followed or root-issued), its signature
    verifies, and both certificates come from the same issuer. Returns the old signer's fingerprint, or
    None (the list is then judged on its own signer alone)."""
    text = doc.get("previous_signer_certificate")
    if text is None:
        return None
    previous, previous_der = _certificate(text)
    if previous.issuer != signer.issuer:
        return None
    if signer_problem(previous, previous_der, roots, pins, crls, moment) is not None:
        return None
    if not _verifies(previous, handover_b64, canonical):
        return None
    return fingerprint(previous_der)


def _sequence(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise TrustListError("TRUST_LIST_MALFORMED", f"sequence must be an integer >= 1, not {value!r}")
    return value


def publisher(document: dict[str, Any] | bytes | str) -> str:
    """Who publishes a list, for remembering the highest sequence seen: SHA-256 (hex) of the signer
    certificate's issuer name, i.e. the national root that certifies every signer (a pinned signer's
    issuer is fixed by its pin). Says nothing about trust: add_list decides that."""
    doc = json.loads(document) if isinstance(document, bytes | str) else document
    if not isinstance(doc, dict):
        raise TrustListError("TRUST_LIST_MALFORMED", "a trust list is a JSON object")
    signer, _ = _certificate(doc.get("signer_certificate"))
    return hashlib.sha256(signer.issuer.dump()).hexdigest()


@dataclass
class TrustStore:
    """Everything a verifier trusts: CAs from accepted trust lists, plus explicit anchors."""

    cas: list[ListedCA] = field(default_factory=list)
    anchors: list[x509.Certificate] = field(default_factory=list)
    cross: list[x509.Certificate] = field(default_factory=list)  # cross-certificates: path material only
    makers: list[ListedMaker] = field(default_factory=list)  # trusted seal makers (never signer anchors)
    lists: list[dict[str, Any]] = field(default_factory=list)  # summaries of the accepted lists
    # SHA-256 of signers a trusted signer handed over to (a handover list): pinned from then on
    followed: list[str] = field(default_factory=list)
    # link certificates of rolled-over roots (RFC 4210 §4.4): path material only where they bridge
    links: list[x509.Certificate] = field(default_factory=list)

    def add_anchor(self, cert: x509.Certificate) -> None:
        self.anchors.append(cert)

    def add_maker(self, cert: x509.Certificate) -> None:
        """Trust a seal maker explicitly (the CLI's --maker), for seals of any region."""
        since = cert.not_valid_before
        self.makers.append(ListedMaker("explicit", None, cert, cert.dump(), (("granted", since),)))

    @property
    def stale_since(self) -> datetime | None:
        """The earliest next_update among the accepted lists that are past it (None: all fresh)."""
        stale = [summary["stale_since"] for summary in self.lists if summary.get("stale_since") is not None]
        return min(stale) if stale else None

    def add_list(
        self,
        document: dict[str, Any] | bytes | str,
        *,
        roots: list[x509.Certificate] = (),  # type: ignore[assignment]
        pinned: tuple[str, ...] = (),
        crls: list[crl.CertificateList] = (),  # type: ignore[assignment]
        min_sequence: int = 0,
        now: datetime | None = None,
    ) -> None:
        """Accept a signed list (see the module docstring); TrustListError with a code otherwise.
        `crls`: the national roots' CRLs at hand (the signer's revocation); `min_sequence`: the
        highest sequence the caller has seen from this publisher (anti-rollback)."""
        doc = json.loads(document) if isinstance(document, bytes | str) else dict(document)
        if not isinstance(doc, dict):
            raise TrustListError("TRUST_LIST_MALFORMED", "a trust list is a JSON object")
        signature_b64 = doc.pop("signature", None)
        handover_b64 = doc.pop("handover_signature", None)
        if not isinstance(signature_b64, str):
            raise TrustListError("TRUST_LIST_MALFORMED", "the trust list is not signed")
        moment = now or datetime.now(UTC)
        signer, signer_der = _certificate(doc.get("signer_certificate"))
        pins = (*pinned, *self.followed)
        roots = [*roots, *linked_roots(doc, list(roots), list(crls), moment)]  # a rolled-over root's other key
        problem = signer_problem(signer, signer_der, list(roots), pins, list(crls), moment)
        followed: str | None = None
        handover_from: str | None = None  # the pinned signer that handed over to this list's signer
        if problem is not None and handover_b64 is not None:  # a handover list: does a trusted old signer vouch?
            vouched = handover_from = _handover(
                doc, handover_b64, _signed_bytes(doc), signer, list(roots), pins, list(crls), moment
            )
            if vouched is not None:
                followed = fingerprint(signer_der)
                problem = signer_problem(signer, signer_der, list(roots), (*pins, followed), list(crls), moment)
        if problem is not None:
            raise TrustListError("TRUST_LIST_SIGNER_UNTRUSTED", problem)
        if not _verifies(signer, signature_b64, _signed_bytes(doc)):
            raise TrustListError("TRUST_LIST_SIGNATURE_INVALID", "the trust list's signature does not verify")
        sequence = _sequence(doc.get("sequence"))
        if sequence < min_sequence:
            detail = f"the list's sequence {sequence} is lower than {min_sequence}, the highest already seen"
            raise TrustListError("TRUST_LIST_ROLLBACK", detail)
        next_update = _time(doc.get("next_update"), "next_update")
        stale = next_update if moment > next_update else None
        regions = doc.get("regions")
        if not isinstance(regions, list):
            raise TrustListError("TRUST_LIST_MALFORMED", "regions must be a list")
        cas: list[ListedCA] = []
        makers: list[ListedMaker] = []
        links: list[x509.Certificate] = []
        for region in regions:
            if not isinstance(region, dict) or not isinstance(region.get("cas"), list):
                raise TrustListError("TRUST_LIST_MALFORMED", "each region has a list of cas")
            for entry in region["cas"]:
                if not isinstance(entry, dict):
                    raise TrustListError("TRUST_LIST_MALFORMED", "cas holds objects")
                cert, der = _certificate(entry.get("certificate"))
                history = _history(entry)
                # after a CA key rollover the entry also lists its earlier certificates (`certificates`,
                # newest first): one CA, one history, several keys; and a root's link certificates
                others = entry.get("certificates", [])
                entry_links = entry.get("links", [])
                if not isinstance(others, list) or not isinstance(entry_links, list):
                    raise TrustListError("TRUST_LIST_MALFORMED", "certificates and links are lists of PEM strings")
                listed_ders = [der]
                for text in others:
                    other, other_der = _certificate(text)
                    if other_der in listed_ders:
                        continue
                    if other.subject != cert.subject:
                        raise TrustListError(
                            "TRUST_LIST_MALFORMED", "a CA entry lists a certificate of another subject"
                        )
                    listed_ders.append(other_der)
                for listed_der in listed_ders:
                    listed_cert = cert if listed_der == der else x509.Certificate.load(listed_der)
                    cas.append(
                        ListedCA(
                            name=str(entry.get("name", "")),
                            region_code=str(region.get("code", "")),
                            region_name=str(region.get("name", "")),
                            certificate=listed_cert,
                            der=listed_der,
                            history=history or (("granted", cert.not_valid_before),),
                            stale_since=stale,
                        )
                    )
                for text in entry_links:
                    link, _ = _certificate(text)
                    if link.subject != cert.subject or link.issuer != cert.subject:
                        raise TrustListError("TRUST_LIST_MALFORMED", "a link certificate names another CA")
                    links.append(link)
            for entry in region.get("seal_makers") or []:
                if not isinstance(entry, dict):
                    raise TrustListError("TRUST_LIST_MALFORMED", "seal_makers holds objects")
                cert, der = _certificate(entry.get("certificate"))
                makers.append(
                    ListedMaker(
                        name=str(entry.get("name", "")),
                        region_code=str(region.get("code", "")),
                        certificate=cert,
                        der=der,
                        history=_history(entry) or (("granted", cert.not_valid_before),),
                        stale_since=stale,
                    )
                )
        cross = []
        for entry in doc.get("cross_certificates") or []:
            if not isinstance(entry, dict):
                raise TrustListError("TRUST_LIST_MALFORMED", "cross_certificates holds objects")
            cross.append(_certificate(entry.get("certificate"))[0])
        # all or nothing: a list refused half-way leaves the store as it was
        if followed is not None and followed not in self.followed:
            self.followed.append(followed)  # the old signer handed over: later lists of the new one are trusted
        self.cas += cas
        self.makers += makers
        self.cross += cross
        self.links += links
        self.lists.append({"sequence": sequence, "issued_at": doc.get("issued_at"), "signer": signer_der,
                           "next_update": next_update, "stale_since": stale,
                           "handover_from": handover_from})  # fmt: skip

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
        anchored = {c.public_key.dump() for c in self.trust_roots()}
        # a link is needed only when its subject key is no anchor of ours (e.g. only the old root is held);
        # with both roots listed it would merely offer a second path, so it is left out
        bridging = [link for link in self.links if link.public_key.dump() not in anchored]
        return [c.certificate for c in self.cas if c.certificate.self_signed == "no"] + list(self.cross) + bridging

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
        """The entry for `cert`, from a fresh list if any names it."""
        der = cert.dump()
        found = [c for c in self.cas if c.der == der]
        return min(found, key=lambda c: c.stale_since is not None) if found else None

    def is_anchor(self, cert: x509.Certificate) -> bool:
        """An explicit anchor (--anchor): trusted by the user, whatever any list says or how old it is."""
        der = cert.dump()
        return any(a.dump() == der for a in self.anchors)
