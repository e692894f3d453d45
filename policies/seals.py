"""Who may apply which seal: declarative rules, decided here and enforced by signing/ and api/."""

from __future__ import annotations

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


def may_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, set())
