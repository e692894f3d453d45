"""What an attacker holds in the attack tests: an ordinary certificate from a trusted CA with its key,
documents sealed with it, a clock that lies; and the two-path verification the tests judge them by."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.context import Context
from keys.custody import KeyAlgorithm, SigningHandle
from signing.pdf import Placement, seal_pdf
from tests.fixtures import make_pdf
from verify.service import Verifier

ATTACKER = {
    "country_name": "CN",
    "organization_name": "Attacker Trading Co",
    "organization_identifier": "91350100M000100Y43",
    "common_name": "Attacker Trading Co Seal",
}


@dataclass(frozen=True)
class Holder:
    handle: SigningHandle
    certificate: bytes
    chain: list[bytes]
    serial: str


def issue(
    context: Context, profile: str = "org-seal", ca: str = "cn-370000-sm2", subject: dict[str, str] = ATTACKER
) -> Holder:
    """A fresh SM2 key in custody and a certificate for it: what any customer of a trusted CA can have."""
    version = context.custody.create(f"attacker-{secrets.token_hex(6)}", KeyAlgorithm.SM2)
    issued = context.ca.issue_for_key(version.public_key_der, subject, profile, ca)
    return Holder(context.custody.signer(version.ref), issued.der, list(issued.chain), issued.serial)


def seal_with(holder: Holder, seal_der: bytes | None, picture: bytes) -> bytes:
    return seal_pdf(
        make_pdf(),
        handle=holder.handle,
        certificate=holder.certificate,
        chain=holder.chain,
        seal_der=seal_der,
        picture_png=picture,
        placement=Placement(),
    ).pdf


def check(report: dict[str, Any], name: str, index: int = 0) -> tuple[str, str]:
    found = next(c for c in report["signatures"][index]["checks"] if c["name"] == name)
    return found["status"], found["code"]


def both_paths(verifier: Verifier, data: bytes, at: datetime | None = None) -> dict[str, Any]:
    """The full path's report, after checking the fast path ends with the same result."""
    fast = verifier.pdf.verify(data, at).as_json()
    full = verifier.pdf.full(data, at).as_json()
    assert fast["result"] == full["result"], (fast, full)
    return full


class Clock(datetime):
    """datetime whose now() is `offset` behind the real clock: a signer or TSA lying about the time."""

    offset = timedelta(0)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) - cls.offset
