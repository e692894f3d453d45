"""Who may apply which seal: declarative rules, decided here and enforced by signing/ and api/."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

import yaml

from policies.licence_id import is_type_code

SEAL_TYPES = {"official": 1, "personal": 2, "finance": 3, "contract": 4, "invoice": 5, "licence": 6}
SEAL_STATUSES = ("requested", "active", "suspended", "revoked", "expired")
TRANSITIONS = {
    "requested": {"active", "revoked"},
    "active": {"suspended", "revoked"},
    "suspended": {"active", "revoked"},
    "revoked": set(),
    "expired": {"revoked"},
}


def may_apply(*, role: str, caller: str, caller_seal_ids: tuple[str, ...], seal_id: str, allowed: list[str]) -> bool:
    """Only issuer systems apply seals, and only seals their token names or the seal names them for."""
    if role != "issuer":
        return False
    return seal_id in caller_seal_ids or "*" in caller_seal_ids or caller in allowed


def bound_organisations(
    *, caller: str, caller_seal_ids: tuple[str, ...], seals: Iterable[tuple[str, str, list[str], str]]
) -> frozenset[str]:
    """The USCCs an issuer system speaks for: those of the seals it may apply (`may_apply`) that are
    active or suspended, as `(seal id, organisation USCC, allowed callers, status)`. A revoked or expired
    seal binds nobody; an issuer with no seal names no organisation."""
    return frozenset(
        uscc
        for seal_id, uscc, allowed, status in seals
        if status in ("active", "suspended")
        and may_apply(role="issuer", caller=caller, caller_seal_ids=caller_seal_ids, seal_id=seal_id, allowed=allowed)
    )


def may_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, set())


def may_issue_licence_type(*, issuer_uscc: str, type_code: str, allowed_type_codes: Collection[str]) -> bool:
    """A seal issues licences of its own organisation's types (the type code's first 18 characters are the
    issuer's USCC) and of the other departments' types its seal lists (`licence_type_codes`), e.g. a city
    bureau issuing the business licence type the national regulator defines."""
    return type_code[:18] == issuer_uscc or type_code in allowed_type_codes


def load_licence_type_codes(path: Path) -> dict[str, frozenset[str]]:
    """`$TRUSTSEAL_HOME/licence-types.yaml`: `{seal id: [type code, ...]}`, the licence types of other
    departments each seal may issue (README, "Licences"). No file: none."""
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a mapping of seal id to a list of licence type codes")
    out: dict[str, frozenset[str]] = {}
    for seal_id, codes in raw.items():
        if not isinstance(seal_id, str) or not isinstance(codes, list):
            raise ValueError(f"{path}: {seal_id!r}: a list of licence type codes")
        bad = [c for c in codes if not isinstance(c, str) or not is_type_code(c.upper())]
        if bad:
            raise ValueError(f"{path}: {seal_id}: not licence type codes (USCC + 3 digits): {bad}")
        out[seal_id] = frozenset(c.upper() for c in codes)
    return out
