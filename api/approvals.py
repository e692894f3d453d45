"""Four-eyes approvals (M-of-N) of dangerous operations: the requests, the decisions and their events.

An operation the policy (policies/approvals.py) says needs `required` officers is not run when asked:
a pending approval is stored with `approvals = [requester]`, and an `approval.requested` event is
written in the same transaction. Each further officer's approval is a compare-and-swap on the row's
`version` inside one write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row locked FOR
UPDATE), so of two officers approving at once exactly one completes it. The one that completes it
moves the row to `executing` in that same transaction, then runs the operation through the executor
registry (api/operations.py — the function the direct path calls), then records `executed` with the
result, or `failed` with the error code. The operations are each one transaction of their own in the
layers below (they take no session), so the run cannot share the approval's transaction: the
`executing` state between the two is what a crash would leave behind, visible and never re-run: the
sweep (`sweep`, at the service's start and on its schedule) resolves an approval `executing` longer
than a bound as `executed` when the operation's effect is visible (the CA exists, the key version is
certified and in use), else `failed` with code `interrupted`, each with its event (`swept: true`).
A failed approval is final: consent was given for that moment, and a retry is a new request.

Identity is the token's name: a second token under one name is the same person, so it cannot approve
its own request or approve twice. Only officers approve or reject; admins may request (tokens) but
never approve. Every request and decision is a ledger event; params and results enter the ledger as
SM3 digests of their canonical JSON (they may name organisations), the rows keep them in full.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, desc, insert, select, update

from api.auth import Principal
from api.problems import Problem
from gm import jcs
from gm.sm3 import sm3
from ledger.events import record_event
from policies.approvals import ApprovalPolicy
from store.db import Database
from store.models import Approval, Event

log = logging.getLogger("trustseal.approvals")
POLICY_FILE = "approvals.yaml"  # in $TRUSTSEAL_HOME; `trustseal init` writes the default there
APPROVER_ROLES = ("officer",)
FINAL = ("executed", "rejected", "expired", "failed")


def utc_now() -> datetime:
    return datetime.now(UTC)


class EffectMismatch(Exception):
    """What the sweep finds changed, but not as the approved params say (a break-glass withdrawal with
    another reason, a CA of that name made by someone else, another officer's ceremony request): somebody
    else's work, never this approval's result → `failed`, code `effect_mismatch`, naming `event` (type#id)."""

    code = "effect_mismatch"

    def __init__(self, detail: str, event: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.event = event


def digest(value: Any) -> str:
    """SM3 of the RFC 8785 canonical JSON of `value`, hex: how params and results enter the ledger."""
    return sm3(jcs.canonical(value)).hex()


class Approvals:
    def __init__(self, db: Database, policy: ApprovalPolicy, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    def required(self, operation: str) -> int:
        return self.policy.required(operation)

    # -- the policy --------------------------------------------------------------------------------

    def record_policy(self, actor: str | None = None) -> int | None:
        """Record the loaded policy (content and SM3) unless the newest `approvals.policy_loaded` event
        already says the same: the ledger then holds every policy that was ever in force, from when.
        No policy file, nothing recorded (and nothing needs approval)."""
        if self.policy.source is None:
            return None
        with self.db.write_connection() as connection:
            last = connection.execute(
                select(Event.payload).where(Event.type == "approvals.policy_loaded").order_by(desc(Event.id)).limit(1)
            ).scalar()
            if isinstance(last, dict) and last.get("sm3") == self.policy.sm3_hex:
                return None
            return record_event(
                connection,
                "approvals.policy_loaded",
                actor=actor,
                subject="approvals-policy",
                payload={
                    "policy": self.policy.as_json(),
                    "text": self.policy.text,
                    "sm3": self.policy.sm3_hex,
                    "source": self.policy.source,
                },
            )

    # -- requests ----------------------------------------------------------------------------------

    def request(self, operation: str, params: dict[str, Any], who: Principal, subject: str | None) -> dict[str, Any]:
        """A pending approval with the requester's consent counted, and its `approval.requested` event."""
        now = self.clock()
        row: dict[str, Any] = {
            "id": secrets.token_urlsafe(16),
            "operation": operation,
            "subject": subject,
            "params": params,
            "requester": who.name,
            "requester_actor": who.actor,
            "required": self.required(operation),
            "approvals": [who.name],
            "status": "pending",
            "version": 1,
            "created_at": now,
            "expires_at": now + timedelta(hours=self.policy.expires_after_hours),
        }
        with self.db.write_connection() as connection:
            connection.execute(insert(Approval).values(**row))
            record_event(
                connection,
                "approval.requested",
                actor=who.actor,
                subject=row["id"],
                payload={
                    "operation": operation,
                    "operation_subject": subject,
                    "params_sm3": digest(params),
                    "required": row["required"],
                    "approvals": [who.name],
                    "expires_at": row["expires_at"].isoformat(),
                },
            )
        return self.get(row["id"])

    def get(self, approval_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Approval, approval_id)
            if row is None:
                raise Problem(404, "approval_not_found", f"no approval {approval_id!r}")
            return self._json(row)

    def find(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first. `status=pending` leaves out the pending ones past their expiry (they show as
        expired, which they become at the next decision anyone tries)."""
        with self.db.session() as session:
            query = select(Approval).order_by(desc(Approval.created_at)).limit(limit)
            if status in ("pending", "expired"):
                query = query.where(Approval.status.in_(("pending", "expired")))
            elif status is not None:
                query = query.where(Approval.status == status)
            rows = [self._json(row) for row in session.scalars(query)]
        return [row for row in rows if status is None or row["status"] == status]

    def _json(self, row: Approval) -> dict[str, Any]:
        status = row.status
        if status == "pending" and self.clock() >= row.expires_at:
            status = "expired"
        out: dict[str, Any] = {
            "id": row.id,
            "operation": row.operation,
            "subject": row.subject,
            "status": status,
            "required": row.required,
            "approvals": list(row.approvals),
            "requester": row.requester,
            "params": row.params,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "decided_by": row.decided_by,
        }
        if row.reason is not None:
            out["reason"] = row.reason
        if row.error is not None:
            out["error"] = row.error
        return out

    # -- decisions ---------------------------------------------------------------------------------

    def _locked(self, connection: Connection, approval_id: str) -> Any:
        query = select(*Approval.__table__.columns).where(Approval.id == approval_id)
        if not self.db.is_sqlite:  # SQLite: BEGIN IMMEDIATE already holds the one write lock
            query = query.with_for_update()
        row = connection.execute(query).mappings().first()
        if row is None:
            raise Problem(404, "approval_not_found", f"no approval {approval_id!r}")
        return row

    def _swap(self, connection: Connection, row: Any, **values: Any) -> None:
        """Change the row only if nobody changed it since it was read (belt and braces beside the lock)."""
        done = connection.execute(
            update(Approval)
            .where(Approval.id == row["id"], Approval.version == row["version"])
            .values(version=row["version"] + 1, **values)
        )
        if done.rowcount != 1:
            raise Problem(409, "approval_conflict", "the approval changed meanwhile; read it again")

    def _refuse_undecidable(self, connection: Connection, row: Any, now: datetime) -> Problem | None:
        """The refusal every decision shares; an expired pending approval is marked expired first (with
        its event), which is the one change a refused decision makes."""
        if row["status"] != "pending":
            status = row["status"]
            return Problem(409, "approval_not_pending", f"the approval is {status}", approval_status=status)
        if now >= row["expires_at"]:
            self._swap(connection, row, status="expired", decided_at=now)
            record_event(
                connection,
                "approval.expired",
                actor=None,
                subject=row["id"],
                payload={"operation": row["operation"], "approvals": list(row["approvals"])},
            )
            return Problem(409, "approval_expired", f"the approval expired at {row['expires_at'].isoformat()}")
        return None

    def approve(
        self, approval_id: str, who: Principal, execute: Callable[[str, dict[str, Any], str], dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Add `who`'s approval; if that completes it, run `execute(operation, params, actor)` and answer
        (the approval, its result). A failure of the operation answers its own problem, with the
        approval (now failed) beside it."""
        if who.role not in APPROVER_ROLES:
            raise Problem(403, "approval_role", f"only officers approve; a {who.role} token may not")
        now = self.clock()
        complete = False
        names: list[str] = []
        with self.db.write_connection() as connection:
            row = self._locked(connection, approval_id)
            refusal = self._refuse_undecidable(connection, row, now)
            if refusal is None:
                if who.name == row["requester"]:
                    raise Problem(403, "approval_own_request", "nobody approves their own request")
                if who.name in row["approvals"]:
                    raise Problem(409, "approval_already_given", f"{who.name} approved this already")
                names = [*row["approvals"], who.name]
                complete = len(names) >= row["required"]
                changes: dict[str, Any] = {"approvals": names}
                if complete:
                    changes |= {"status": "executing", "decided_at": now, "decided_by": who.name}
                self._swap(connection, row, **changes)
                record_event(
                    connection,
                    "approval.approved",
                    actor=who.actor,
                    subject=approval_id,
                    payload={"operation": row["operation"], "approvals": names, "required": row["required"]},
                )
        if refusal is not None:  # raised after the commit, so that the expiry is kept
            raise refusal
        if not complete:
            return self.get(approval_id), None
        return self._execute(approval_id, row["operation"], row["params"], row["requester_actor"], names, execute)

    def _execute(
        self,
        approval_id: str,
        operation: str,
        params: dict[str, Any],
        actor: str,
        names: list[str],
        execute: Callable[[str, dict[str, Any], str], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            result = execute(operation, params, actor)
        except Exception as exc:
            code = str(getattr(exc, "code", "internal_error"))
            detail = str(getattr(exc, "detail", "")) or (str(exc) if code != "internal_error" else "")
            self._finish(approval_id, "failed", error={"code": code, "detail": detail[:500]}, names=names)
            if isinstance(exc, Problem):
                exc.extra["approval"] = self.get(approval_id)
                raise
            status = int(getattr(exc, "status", 500))
            if status >= 500:
                raise
            raise Problem(status, code, detail, approval=self.get(approval_id)) from exc
        self._finish(approval_id, "executed", result=result, names=names)
        return self.get(approval_id), result

    def _finish(
        self,
        approval_id: str,
        status: str,
        *,
        names: list[str],
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        with self.db.write_connection() as connection:
            row = self._locked(connection, approval_id)
            if row["status"] != "executing":  # the sweep resolved it first (an operation slower than its bound)
                log.error("approval %s ended %s after the sweep had marked it %s", approval_id, status, row["status"])
                outcome = {"operation": row["operation"], "outcome": status, "recorded_status": row["status"]}
                if error is not None:
                    outcome["code"] = error["code"]
                record_event(connection, "approval.late_outcome", actor=None, subject=approval_id, payload=outcome)
                return
            self._swap(connection, row, status=status, result=result, error=error)
            payload: dict[str, Any] = {"operation": row["operation"], "approvals": names}
            if result is not None:
                payload["result_sm3"] = digest(result)
            if error is not None:
                payload["code"] = error["code"]
            record_event(
                connection, f"approval.{status}", actor=row["requester_actor"], subject=approval_id, payload=payload
            )

    # -- the sweep ---------------------------------------------------------------------------------

    def sweep(
        self,
        older_than: timedelta,
        effect: Callable[[str, dict[str, Any], datetime, str], dict[str, Any] | None],
        abandon: Callable[[str, dict[str, Any], datetime, datetime], None] | None = None,
    ) -> dict[str, str]:
        """Resolve approvals `executing` for longer than `older_than` (the process running the operation
        died): `effect(operation, params, since, actor)` answers the operation's result if its effect is
        visible (→ `executed` with it), raises `EffectMismatch` if what is visible is somebody else's work
        with other parameters (→ `failed`, code `effect_mismatch`), or None (→ `failed`, code `interrupted`;
        in both cases after `abandon(operation, params,
        since, until)` undid what a half run left usable between the approval and `until`, the bound ago:
        newer is somebody else's work in progress). Nothing is re-run. Returns {approval id: new status}."""
        now = self.clock()
        until = now - older_than
        with self.db.session() as session:
            query = select(Approval).where(Approval.status == "executing", Approval.decided_at <= until)
            stuck = [
                (r.id, r.operation, r.params, r.decided_at, r.version, r.requester_actor)
                for r in session.scalars(query)
            ]
        resolved: dict[str, str] = {}
        for approval_id, operation, params, since, version, actor in stuck:
            assert since is not None  # set with `executing`
            error: dict[str, str] | None = None
            try:
                try:
                    result = effect(operation, params, since, actor)
                except EffectMismatch as mismatch:
                    result = None
                    error = {"code": mismatch.code, "detail": mismatch.detail[:500], "event": mismatch.event or ""}
                if result is None and abandon is not None:
                    abandon(operation, params, since, until)
            except Exception:  # this one waits for the next sweep; the others go on
                log.exception("approval %s (%s) could not be resolved by the sweep", approval_id, operation)
                continue
            status = "executed" if result is not None else "failed"
            if result is None and error is None:
                error = {"code": "interrupted", "detail": "the service stopped mid-run"}
            with self.db.write_connection() as connection:
                row = self._locked(connection, approval_id)
                if row["status"] != "executing" or row["version"] != version:
                    continue  # it finished meanwhile
                self._swap(connection, row, status=status, result=result, error=error)
                payload: dict[str, Any] = {"operation": operation, "approvals": list(row["approvals"]), "swept": True}
                if result is not None:
                    payload["result_sm3"] = digest(result)
                elif error is not None:
                    payload["code"] = error["code"]
                    if error.get("event"):
                        payload["event"] = error["event"]
                record_event(connection, f"approval.{status}", actor=None, subject=approval_id, payload=payload)
            resolved[approval_id] = status
        return resolved

    def reject(self, approval_id: str, who: Principal, reason: str | None) -> dict[str, Any]:
        """An officer refuses it (the requester may withdraw their own request the same way); final."""
        if who.role not in APPROVER_ROLES and who.name != self.get(approval_id)["requester"]:
            raise Problem(403, "approval_role", f"only officers reject; a {who.role} token may not")
        now = self.clock()
        with self.db.write_connection() as connection:
            row = self._locked(connection, approval_id)
            refusal = self._refuse_undecidable(connection, row, now)
            if refusal is None:
                self._swap(connection, row, status="rejected", decided_at=now, decided_by=who.name, reason=reason)
                record_event(
                    connection,
                    "approval.rejected",
                    actor=who.actor,
                    subject=approval_id,
                    payload={"operation": row["operation"], "reason": reason},
                )
        if refusal is not None:
            raise refusal
        return self.get(approval_id)
