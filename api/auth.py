"""Bearer tokens: random, shown once, stored as SHA-256; each belongs to one role.

Creating and revoking a token are ledger events (`token.created`, `token.revoked`) in the same
transaction as the row they change; they name the token's holder, role and seals, never the token
or its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from ledger.events import record_event
from store.db import Database
from store.models import ApiToken

ROLES = ("issuer", "verifier", "officer", "auditor", "admin")
TOKEN_PREFIX = "ts_"  # noqa: S105  (a prefix, not a secret)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    seal_ids: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenNotFound(LookupError):
    code = "token_not_found"


def create_token(
    db: Database, role: str, name: str, seal_ids: list[str] | None = None, actor: str | None = None
) -> str:
    token, token_hash = new_token()
    add_token_hash(db, role, name, list(seal_ids or []), token_hash, actor=actor)
    return token


def revoke_token(db: Database, name: str, actor: str | None = None) -> int:
    """Disable every enabled token named `name`, each with its `token.revoked` event, in one
    transaction; returns how many. TokenNotFound when no enabled token has that name. Processes that
    cached the token stop accepting it within CACHE_SECONDS."""
    with db.session() as session:
        rows = list(
            session.scalars(
                select(ApiToken).where(ApiToken.name == name, ApiToken.disabled.is_(False)).order_by(ApiToken.id)
            )
        )
        if not rows:
            raise TokenNotFound(f"no enabled token named {name!r}")
        for row in rows:
            row.disabled = True
            session.flush()
            record_event(
                session,
                "token.revoked",
                actor=actor,
                subject=name,
                payload={"name": name, "role": row.role, "token_id": row.id},
            )
    with _cache_lock:  # this process forgets them at once
        for digest in [d for d, (p, _) in _cache.items() if p.name == name]:
            _cache.pop(digest, None)
    return len(rows)


CACHE_SECONDS = 5.0  # a disabled token stops working within this time in every process
_cache: dict[str, tuple[Principal, float]] = {}
_cache_lock = threading.Lock()


def cached(token: str) -> Principal | None:
    """The principal for a token seen in the last few seconds, without touching the database."""
    digest = _hash(token)
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


def authenticate(db: Database, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    hit = cached(token)
    if hit is not None:
        return hit
    digest = _hash(token)
    now = time.monotonic()
    with db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or row.disabled or not hmac.compare_digest(row.token_hash, digest):
        return None
    found = Principal(name=row.name, role=row.role, seal_ids=tuple(row.seal_ids or ()))
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (found, now + CACHE_SECONDS)
    return found


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the SHA-256 the store keeps of it (for a token whose row is written
    later, once its creation is approved: api/operations.py)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, _hash(token)


def add_token_hash(
    db: Database, role: str, name: str, seal_ids: list[str], token_hash: str, actor: str | None = None
) -> int:
    """Store a token made by `new_token` (its secret went to its owner only and is kept nowhere), with
    its `token.created` event in the same transaction; returns the token's id."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    seals = list(seal_ids)
    with db.session() as session:
        row = ApiToken(
            name=name,
            role=role,
            token_hash=token_hash,
            seal_ids=seals,
            created_at=datetime.now(UTC),
            disabled=False,
        )
        session.add(row)
        session.flush()
        record_event(
            session,
            "token.created",
            actor=actor,
            subject=name,
            payload={"name": name, "role": role, "seals": seals, "token_id": row.id},
        )
        return int(row.id)
