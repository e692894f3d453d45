"""Bearer tokens: random, shown once, stored as SHA-256; each belongs to one role and one holder name.

A token has a public integer `id` (the log names it), a `name` unique among live tokens (the holder's
identity: licence ownership, seals' `allowed_callers`, batch-job owners and approvals go by it), a role,
for an issuer the seals it may apply (each checked to exist; `*` is every seal), an expiry and the time
it was last used (to the minute). Creating, revoking and rotating are ledger events (`token.created`,
`token.revoked`; a rotation is both, naming each other) in the same transaction as the rows they
change; events name the token's id, holder, role and seals, never the token or its hash.

Refusals are distinct 401s (`invalid_token`, `token_expired`, `token_revoked`): telling them apart
needs the secret, so they tell an attacker nothing, and they tell an operator what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from api.problems import Problem
from ledger.events import record_event
from store.db import Database
from store.models import ApiToken, Seal

ROLES = ("issuer", "verifier", "officer", "auditor", "admin")
TOKEN_PREFIX = "ts_"  # noqa: S105  (a prefix, not a secret)
# Default lifetimes: systems (issuer, verifier) 90 days, people (officer, auditor, admin) 30 days; any
# token may be given 1 to MAX_DAYS; only the demo tokens `trustseal init` writes never expire.
DEFAULT_DAYS = {"issuer": 90, "verifier": 90, "officer": 30, "auditor": 30, "admin": 30}
MAX_DAYS = 3650
ALL_SEALS = "*"
# Word characters (any script), digits, '.', '_', '@', '~', '-'; not digits only, so `ID|NAME` arguments
# are never ambiguous; no ':' (actors are `role:name`) and no spaces.
NAME = re.compile(r"^(?!\d+$)\w[\w.@~-]{0,127}$")
RESERVED_NAME = "me"  # `/v1/tokens/me`: the caller's own token
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per token per minute for `last_used_at`
log = logging.getLogger("trustseal.auth")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    seal_ids: tuple[str, ...] = ()
    token_id: int | None = None
    expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its secret or hash."""

    id: int
    name: str
    role: str
    seal_ids: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    status: str  # active | expired | revoked

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "seal_ids": list(self.seal_ids),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "status": self.status,
        }


class TokenError(Problem):
    """A token operation refused; nothing was changed."""


class TokenNotFound(TokenError):
    code = "token_not_found"

    def __init__(self, detail: str) -> None:
        super().__init__(404, "token_not_found", detail)


def _refused(status: int, code: str, detail: str) -> TokenError:
    return TokenError(status, code, detail)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _status(row: Any, now: datetime) -> str:
    if row.disabled:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _info(row: Any, now: datetime | None = None) -> TokenInfo:
    return TokenInfo(
        id=int(row.id),
        name=row.name,
        role=row.role,
        seal_ids=tuple(row.seal_ids or ()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        status=_status(row, now or _now()),
    )


# -- authentication ---------------------------------------------------------------------------------

CACHE_SECONDS = 5.0  # a revoked token stops working within this time in every process
_cache: dict[str, tuple[Principal, float]] = {}
_cache_lock = threading.Lock()


def cached(token: str) -> Principal | None:
    """The principal for a token seen in the last few seconds, without touching the database (an entry
    never outlives its token's expiry)."""
    digest = _hash(token)
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


def _forget(token_ids: set[int]) -> None:
    """This process stops accepting these tokens at once."""
    with _cache_lock:
        for digest in [d for d, (p, _) in _cache.items() if p.token_id in token_ids]:
            _cache.pop(digest, None)


def check_token(db: Database, token: str) -> Principal:
    """The principal a bearer token stands for, or a 401 TokenError: `invalid_token` (not ours),
    `token_revoked`, `token_expired`. Records the last use at most once a minute per token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise _refused(401, "invalid_token", "unknown token")
    hit = cached(token)
    if hit is not None:
        return hit
    digest = _hash(token)
    with db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise _refused(401, "invalid_token", "unknown token")
        now = _now()
        status = _status(row, now)
        if status == "revoked":
            raise _refused(401, "token_revoked", f"token {row.id} was revoked; ask an admin for a new one")
        if status == "expired":
            raise _refused(401, "token_expired", f"token {row.id} expired; an admin can rotate it")
        found = Principal(
            name=row.name,
            role=row.role,
            seal_ids=tuple(row.seal_ids or ()),
            token_id=int(row.id),
            expires_at=row.expires_at,
        )
        stale = row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY
    if stale:
        _touch(db, found.token_id, now)
    ttl = CACHE_SECONDS
    if found.expires_at is not None:
        ttl = min(ttl, (found.expires_at - now).total_seconds())
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (found, time.monotonic() + ttl)
    return found


def _touch(db: Database, token_id: int | None, now: datetime) -> None:
    """`last_used_at = now` unless another request (any process) did it within the minute. Bookkeeping:
    a busy database is no reason to refuse the request."""
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - LAST_USED_EVERY)
    try:
        with db.session() as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id, stale).values(last_used_at=now))
    except OperationalError:
        log.warning("could not record the last use of token %s (database busy)", token_id)


def authenticate(db: Database, token: str) -> Principal | None:
    """`check_token` without the reason: None for any refused token."""
    try:
        return check_token(db, token)
    except TokenError:
        return None


# -- lifecycle --------------------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the SHA-256 the store keeps of it (for a token whose row is written
    later, once its creation is approved: api/operations.py)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, _hash(token)


def expiry(role: str, days: int | None, now: datetime, *, never: bool = False) -> datetime | None:
    if never:
        return None
    if days is None:
        days = DEFAULT_DAYS[role]
    if isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise _refused(400, "invalid_expiry", f"a token lives 1 to {MAX_DAYS} days")
    return now + timedelta(days=days)


def check_request(db: Database, role: str, name: str, seal_ids: list[str], days: int | None = None) -> None:
    """Refuse now what could never be stored (for an approval, before anyone is asked to approve it)."""
    _validate(role, name, seal_ids, days)
    with db.engine.connect() as connection:
        _check_seals(connection, seal_ids)
        _check_name_free(connection, name)


def _validate(role: str, name: str, seal_ids: list[str], days: int | None) -> None:
    if role not in ROLES:
        raise _refused(400, "invalid_role", f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not NAME.match(name) or name == RESERVED_NAME:
        raise _refused(
            400,
            "invalid_token_name",
            "a token name is 1 to 128 letters, digits, '.', '_', '@', '~', '-', not digits only, not 'me'",
        )
    if seal_ids and role != "issuer":
        raise _refused(400, "seals_only_for_issuers", "only an issuer token is bound to seals")
    if ALL_SEALS in seal_ids and len(seal_ids) > 1:
        raise _refused(400, "invalid_seals", "'*' (every seal) stands alone")
    expiry(role, days, _now())


def _check_seals(connection: Connection, seal_ids: list[str]) -> None:
    wanted = set(seal_ids) - {ALL_SEALS}
    if not wanted:
        return
    known = set(connection.scalars(select(Seal.id).where(Seal.id.in_(sorted(wanted)))))
    missing = sorted(wanted - known)
    if missing:
        raise _refused(422, "seal_not_found", f"no seal {', '.join(map(repr, missing))}")


def _check_name_free(connection: Connection, name: str) -> None:
    taken = connection.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.disabled.is_(False)))
    if taken is not None:
        raise _refused(409, "token_name_taken", f"token {taken} is named {name!r}; revoke or rotate it instead")


def create_token(
    db: Database,
    role: str,
    name: str,
    seal_ids: list[str] | None = None,
    actor: str | None = None,
    *,
    days: int | None = None,
    never_expires: bool = False,
) -> str:
    token, token_hash = new_token()
    add_token_hash(
        db, role, name, list(seal_ids or []), token_hash, actor=actor, days=days, never_expires=never_expires
    )
    return token


def add_token_hash(
    db: Database,
    role: str,
    name: str,
    seal_ids: list[str],
    token_hash: str,
    actor: str | None = None,
    *,
    days: int | None = None,
    never_expires: bool = False,
) -> int:
    """Store a token made by `new_token` (its secret went to its owner only and is kept nowhere), with
    its `token.created` event in the same transaction; returns the token's id."""
    seals = list(seal_ids)
    _validate(role, name, seals, days)
    now = _now()
    with db.write_connection() as connection:
        _check_seals(connection, seals)
        _check_name_free(connection, name)
        expires_at = expiry(role, days, now, never=never_expires)
        token_id = _insert(connection, role, name, seals, token_hash, now, expires_at)
        _created(connection, token_id, role, name, seals, actor, expires_at)
        return token_id


def _insert(
    connection: Connection,
    role: str,
    name: str,
    seals: list[str],
    token_hash: str,
    now: datetime,
    expires_at: datetime | None,
) -> int:
    values = {
        "name": name,
        "role": role,
        "token_hash": token_hash,
        "seal_ids": seals,
        "created_at": now,
        "disabled": False,
        "expires_at": expires_at,
    }
    try:  # (the transaction is rolled back by its owner when this raises)
        key = connection.execute(insert(ApiToken).values(**values)).inserted_primary_key
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise _refused(409, "token_name_taken", f"a live token is named {name!r}") from None
    assert key is not None
    return int(key[0])


def _created(
    connection: Connection,
    token_id: int,
    role: str,
    name: str,
    seals: list[str],
    actor: str | None,
    expires_at: datetime | None,
    **extra: Any,
) -> None:
    payload: dict[str, Any] = {
        "token_id": token_id,
        "name": name,
        "role": role,
        "seals": seals,
        "expires_at": None if expires_at is None else expires_at.isoformat(),
        **extra,
    }
    record_event(connection, "token.created", actor=actor, subject=name, payload=payload)


def _locate(connection: Connection, ref: str | int, *, lock: bool = False) -> Any:
    """A token by id (an int, or a string of digits) or by name (the live token with that name)."""
    query = select(ApiToken.__table__)
    if isinstance(ref, int) or ref.isdigit():
        query = query.where(ApiToken.id == int(ref))
        what = f"no token with id {ref}"
    else:
        query = query.where(ApiToken.name == ref, ApiToken.disabled.is_(False))
        what = f"no enabled token named {ref!r}"
    if lock:
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise TokenNotFound(what)
    return row


def get_token(db: Database, ref: str | int) -> TokenInfo:
    with db.engine.connect() as connection:
        return _info(_locate(connection, ref))


def list_tokens(db: Database, status: str | None = None) -> list[TokenInfo]:
    """Every token (revoked ones too: the record of who held what), oldest first; `status` filters."""
    if status not in (None, "active", "expired", "revoked"):
        raise _refused(400, "invalid_request", "status is active, expired or revoked")
    now = _now()
    with db.engine.connect() as connection:
        rows = connection.execute(select(ApiToken.__table__).order_by(ApiToken.id)).all()
    found = [_info(row, now) for row in rows]
    return [t for t in found if status is None or t.status == status]


def _mark_revoked(connection: Connection, row: Any, actor: str | None, now: datetime) -> None:
    if row.disabled:
        raise _refused(409, "token_already_revoked", f"token {row.id} is already revoked")
    done = connection.execute(
        update(ApiToken)
        .where(ApiToken.id == row.id, ApiToken.disabled.is_(False))
        .values(disabled=True, revoked_at=now, revoked_by=actor)
    )
    if done.rowcount != 1:  # revoked by someone else since it was read
        raise _refused(409, "token_already_revoked", f"token {row.id} is already revoked")


def _revoked(connection: Connection, row: Any, actor: str | None, **extra: Any) -> None:
    payload = {"token_id": int(row.id), "name": row.name, "role": row.role, **extra}
    record_event(connection, "token.revoked", actor=actor, subject=row.name, payload=payload)


def revoke_token(db: Database, ref: str | int, actor: str | None = None) -> TokenInfo:
    """Revoke one token (by id, or the live token of a name) with its `token.revoked` event; this process
    forgets it at once, others within CACHE_SECONDS. Revoking frees its name."""
    with db.write_connection() as connection:
        row = _locate(connection, ref, lock=True)
        _mark_revoked(connection, row, actor, _now())
        _revoked(connection, row, actor)
    _forget({int(row.id)})
    return get_token(db, int(row.id))


def rotate_token(
    db: Database, ref: str | int, actor: str | None = None, *, days: int | None = None, expected_role: str | None = None
) -> tuple[str, TokenInfo]:
    """A new secret for a token: a new token (new id) with the same name, role and seals and a fresh
    expiry, and the old one revoked, in one transaction (`token.revoked` with `replaced_by`, then
    `token.created` with `rotated_from`). An expired token may be rotated; a revoked one may not.
    `expected_role`, if given, must be the token's role (the caller's permission was decided on it)."""
    token, token_hash = new_token()
    now = _now()
    with db.write_connection() as connection:
        row = _locate(connection, ref, lock=True)
        if expected_role is not None and row.role != expected_role:
            raise _refused(409, "token_changed", f"token {row.id} changed while it was being rotated")
        expires_at = expiry(row.role, days, now)
        _mark_revoked(connection, row, actor, now)
        seals = list(row.seal_ids or [])
        new_id = _insert(connection, row.role, row.name, seals, token_hash, now, expires_at)
        _revoked(connection, row, actor, reason="rotated", replaced_by=new_id)
        _created(connection, new_id, row.role, row.name, seals, actor, expires_at, rotated_from=int(row.id))
    _forget({int(row.id)})
    return token, get_token(db, new_id)
