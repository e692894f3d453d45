"""What a verifier may ask of the outside world, as small interfaces: revocation material, seal status,
licence status. `api/` wires them to the service's own store; offline they fall back to fetching
(CRL distribution points / OCSP over HTTP, with timeouts) or to nothing, and the report says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import crl, ocsp, x509
from pyhanko_certvalidator.fetchers import Fetchers
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend


@dataclass(frozen=True)
class SealState:
    """What a seal registry says about an esID: its status and the SM3 of the seal registered under it
    (a different seal carrying a known esID is a forgery, not an "active" seal)."""

    status: str
    sm3: bytes | None
    since: datetime | None = None  # when the status last changed
    previous: frozenset[bytes] = frozenset()  # SM3 of the seal's earlier SESeals (re-keyed: same esID, same seal)


RevocationLookup = Callable[[list[x509.Certificate]], tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]]


@dataclass
class Sources:
    """Defaults: nothing local; `fetch` lets pyHanko fetch revocation data from the URLs in certificates.

    Fetching: each request gives up after `fetch_timeout` seconds (the check is then INDETERMINATE,
    never a hang), and what was fetched — CRLs, OCSP responses, issuer certificates — is reused by
    every validation in the same thread for `fetch_cache_seconds`, so a batch of documents from one
    CA costs one CRL download; a verification left with revocation or the path open ends the window
    (`forget_fetched`), so a failure is not reused. pyHanko's per-fetcher limits (1,000 network
    requests, 200 for certificates) then apply to each such window.
    """

    fetch: bool = False
    fetch_timeout: float = 5.0
    fetch_cache_seconds: float = 300.0
    revocation_lookup: (
        Callable[[list[x509.Certificate]], tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]] | None
    ) = None
    seal_status_lookup: Callable[[str], SealState | None] | None = None  # by esID
    licence_status_lookup: Callable[[str], str | None] | None = None  # by licence identifier
    _seal_cache: dict[str, str | None] = field(default_factory=dict)
    _fetch_state: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def fetchers(self) -> Fetchers | None:
        """The fetchers for a ValidationContext (with allow_fetching=True), or None when not fetching.
        One set per thread: pyHanko's fetchers coordinate concurrent fetches with asyncio events."""
        if not self.fetch:
            return None
        state = self._fetch_state
        now = time.monotonic()
        current: tuple[float, Fetchers] | None = getattr(state, "current", None)
        if current is None or now - current[0] >= self.fetch_cache_seconds:
            backend = RequestsFetcherBackend(per_request_timeout=self.fetch_timeout)
            current = (now, backend.get_fetchers())
            state.current = current
        return current[1]

    def forget_fetched(self) -> None:
        """Start this thread's cache window afresh: pyHanko's fetchers also remember failures (a CA's
        server down for a moment), and Verifier calls this when revocation or the path stayed open,
        so that the next document asks again instead of inheriting the failure for the window."""
        self._fetch_state.current = None

    def revocation(self, certs: list[x509.Certificate]) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
        if self.revocation_lookup is None:
            return [], []
        return self.revocation_lookup(certs)

    def seal_status(self, es_id: str) -> SealState | None:
        if self.seal_status_lookup is None:
            return None
        return self.seal_status_lookup(es_id)

    def licence_status(self, identifier: str) -> str | None:
        if self.licence_status_lookup is None:
            return None
        return self.licence_status_lookup(identifier)
