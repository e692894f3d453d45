"""The dangerous operations, each one function the API's direct path, the approvals executor and the
CLI's break-glass path all call, so that an approved operation's `result` is the direct answer.

An `Operation` is a name from policies/approvals.py, a `run(context, params, actor) -> result JSON`,
an optional `check(context, params)` that refuses at request time what could never run (an unknown CA,
a seal already revoked: no approval is opened for it), and the subject its events name. Adding one (a
key rotation) is one `register(Operation(...))` here and one `submit(...)` in its route.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse

from api.approvals import EffectMismatch, digest
from api.auth import ROLES, Principal, add_token_hash, check_request, get_token
from api.context import Context
from api.problems import Problem
from ledger.events import record_event

Params = dict[str, Any]
Result = dict[str, Any]


def _no_subject(_: Params) -> str | None:
    return None


# (context, params, since the approval completed, the actor it ran as) → its result, None, or EffectMismatch
Effect = Callable[[Context, Params, datetime, str], Result | None]


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[[Context, Params, str], Result]
    check: Callable[[Context, Params], None] | None = None
    subject: Callable[[Params], str | None] = field(default=_no_subject)
    # The sweep of approvals a crash left `executing` (api/approvals.py): `effect(context, params, since,
    # actor)` is the result if the operation's effect is visible (it ran, with these params), None if it
    # is not, `EffectMismatch` if somebody else's work with other params is; `abandon` undoes what an
    # interrupted run left usable (a key version custody made but nobody certified).
    effect: Effect | None = None
    abandon: Callable[[Context, Params, datetime, datetime], None] | None = None


REGISTRY: dict[str, Operation] = {}


def register(operation: Operation) -> Operation:
    REGISTRY[operation.name] = operation
    return operation


@dataclass(frozen=True)
class Submitted:
    """What a request for an operation came to: run at once (`result`) or waiting (`approval`)."""

    result: Result | None = None
    approval: dict[str, Any] | None = None


def submit(context: Context, who: Principal, operation: str, params: Params) -> Submitted:
    """Run `operation` now if the policy lets one caller do it, else open a pending approval (202)."""
    op = REGISTRY[operation]
    if op.check is not None:
        op.check(context, params)
    if context.approvals.required(operation) <= 1:
        return Submitted(result=op.run(context, params, who.actor))
    return Submitted(approval=context.approvals.request(operation, params, who, op.subject(params)))


def execute(context: Context) -> Callable[[str, Params, str], Result]:
    """The approvals executor: the registered function, as the direct path calls it."""

    def run(operation: str, params: Params, actor: str) -> Result:
        return REGISTRY[operation].run(context, params, actor)

    return run


def sweep(context: Context, older_than: timedelta) -> dict[str, str]:
    """Resolve approvals left `executing` longer than `older_than` (a crash mid-operation): `executed`
    with the result where the operation's effect is visible as its params say, `failed` (`effect_mismatch`)
    where what is visible is somebody else's work with other params, else `failed` (`interrupted`)."""

    def effect(operation: str, params: Params, since: datetime, actor: str) -> Result | None:
        op = REGISTRY.get(operation)
        return None if op is None or op.effect is None else op.effect(context, params, since, actor)

    def abandon(operation: str, params: Params, since: datetime, until: datetime) -> None:
        op = REGISTRY.get(operation)
        if op is not None and op.abandon is not None:
            op.abandon(context, params, since, until)

    return context.approvals.sweep(older_than, effect, abandon)


def cli_actor() -> str:
    """`cli:<os user>`: who acted directly on $TRUSTSEAL_HOME (break-glass)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER variable (a bare container)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def break_glass(context: Context, operation: str, params: Params) -> Result:
    """The local CLI's path: no approval, but an `approval.break_glass` event says who did what and how
    it ended (the operation's own events carry the same `cli:<os user>` actor)."""
    op = REGISTRY[operation]
    actor = cli_actor()
    payload: dict[str, Any] = {"operation": operation, "break_glass": True, "params_sm3": digest(params)}
    try:
        if op.check is not None:
            op.check(context, params)
        result = op.run(context, params, actor)
    except Exception as exc:
        payload |= {"outcome": "failed", "code": str(getattr(exc, "code", "internal_error"))}
        _record_break_glass(context, actor, op.subject(params), payload)
        raise
    payload |= {"outcome": "executed", "result_sm3": digest(result)}
    _record_break_glass(context, actor, op.subject(params), payload)
    return result


def record_local_break_glass(context: Context, operation: str, subject: str, **details: object) -> None:
    """A local CLI action that over the API would need approval (or a particular holder), done outside the
    operation registry: recorded as break-glass, as `break_glass` records the registry's operations."""
    payload = {"operation": operation, "break_glass": True, "outcome": "executed", **details}
    _record_break_glass(context, cli_actor(), subject, payload)


def record_rotation_break_glass(context: Context, role: str, old_id: int, new_id: int) -> None:
    """A local rotation of an officer or admin token hands out a privileged secret that over the API only
    its holder may obtain (`rotation_needs_holder`): break-glass, recorded as such."""
    record_local_break_glass(context, f"token.rotate.{role}", str(old_id), token_id=old_id, replaced_by=new_id)


def _record_break_glass(context: Context, actor: str, subject: str | None, payload: dict[str, Any]) -> None:
    with context.db.session() as session:
        record_event(session, "approval.break_glass", actor=actor, subject=subject, payload=payload)


def _mismatch(context: Context, what: str, event_type: str, subject: str) -> EffectMismatch:
    """`EffectMismatch` naming the newest `event_type` event of `subject` (type#id, its actor): who did it."""
    from sqlalchemy import select

    from store.models import Event

    with context.db.session() as session:
        query = select(Event.id, Event.actor).where(Event.type == event_type, Event.subject == subject)
        found = session.execute(query.order_by(Event.id.desc()).limit(1)).first()
    if found is None:
        return EffectMismatch(what)
    event = f"{event_type}#{found.id}"
    return EffectMismatch(f"{what} ({event} by {found.actor or 'the service'})", event)


def _ceremony(
    context: Context, operation: str, subject: str, since: datetime, wanted: Callable[[Any], str | None]
) -> Result | None:
    """`{"ceremony": request}` for the newest `operation` request on `subject` opened since `since`,
    pending or completed (a cancelled one is nobody's result), if `wanted(row)` finds nothing amiss (None);
    else `EffectMismatch` naming its `ceremony.requested` event. None if there is no such request."""
    from sqlalchemy import select

    from ca.ceremony import request_json
    from store.models import CeremonyRequest

    with context.db.session() as session:
        row = session.scalars(
            select(CeremonyRequest)
            .where(
                CeremonyRequest.operation == operation,
                CeremonyRequest.subject == subject,
                CeremonyRequest.status.in_(("pending", "completed")),
                CeremonyRequest.created_at >= since.replace(microsecond=0),  # requests record whole seconds
            )
            .order_by(CeremonyRequest.created_at.desc())
        ).first()
        if row is None:
            return None
        differs = wanted(row)
        request, request_id = request_json(row), row.id
    if differs is not None:
        raise _mismatch(context, f"ceremony request {request_id}: {differs}", "ceremony.requested", request_id)
    return {"ceremony": request}


def _differs(pairs: dict[str, tuple[Any, Any]]) -> str | None:
    """'name: approved A, found B; …' for each pair that differs, None if none does."""
    wrong = [f"{key}: approved {want!r}, found {got!r}" for key, (want, got) in pairs.items() if want != got]
    return "; ".join(wrong) or None


# -- CAs ------------------------------------------------------------------------------------------

CA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
REGION_CODE = re.compile(r"^[0-9]{6}$")
NATIONAL_REGION = "100000"


def _check_ca_create(context: Context, params: Params) -> None:
    from ca.errors import CAExists

    name, parent = params["name"], params["parent"]
    if not CA_NAME.match(name):
        raise Problem(422, "invalid_ca_name", "a CA name is 3 to 63 of a-z, 0-9 and '-'")
    if not REGION_CODE.match(params["region"]):
        raise Problem(422, "invalid_region", "region is a 6-digit administrative division code")
    cas = {ca.name: ca for ca in context.ca.list_cas()}
    if name in cas:
        raise CAExists(f"CA {name} exists")
    if parent not in cas:
        raise Problem(404, "unknown_ca", f"no CA named {parent!r}")
    if cas[parent].status != "active":
        raise Problem(409, "ca_withdrawn", f"CA {parent} is {cas[parent].status}: nothing is created under it")
    if cas[parent].algorithm != params["algorithm"]:
        raise Problem(422, "ca_algorithm_mismatch", f"{parent} is {cas[parent].algorithm}; its CAs are too")
    _check_permitted_dns(params.get("permitted_dns") or [])
    # Names carry no dot, so they never meet a service key (`trust-list.sm2`, `seal.<id>`, `<ca>.ocsp` …);
    # a dotless key already in custody is a CA key an interrupted create left, which create_ca reuses.


MAX_PERMITTED_DNS = 20


def _check_permitted_dns(domains: list[str]) -> None:
    """A region's namespace for a name constraint: each a DNS name the name policy would certify for one
    holder (policies/dns.py: LDH labels, a known TLD, no wildcard, not a public suffix alone such as
    `gov.cn`, which would constrain nothing), none repeated → `dns_name_invalid` / `wildcard_not_allowed`."""
    from ca.errors import NameNotAllowed
    from ca.names import refusals
    from policies.dns import check_dns_name

    if len(domains) > MAX_PERMITTED_DNS:
        raise NameNotAllowed("dns_name_invalid", f"at most {MAX_PERMITTED_DNS} permitted_dns names")
    if len(set(domains)) != len(domains):
        raise NameNotAllowed("dns_name_invalid", "a name appears twice in permitted_dns")
    with refusals():
        for domain in domains:
            check_dns_name(domain, wildcard_allowed=False)


def _ca_json(context: Context, name: str) -> Result:
    """The CA as `GET /v1/cas/{ca}` shows it, with its DNS namespace (name constraints)."""
    from asn1crypto import x509

    from api.routes.cas import _info
    from api.routes.certificates import to_pem
    from ca.name_constraints import namespaces

    ca = next(c for c in context.ca.list_cas() if c.name == name)
    constrained = namespaces([x509.Certificate.load(ca.certificate_der)])
    return {
        **_info(context, ca, context.ca.live_crl_urls()),
        "certificate_pem": to_pem(ca.certificate_der),
        "permitted_dns": sorted(constrained[0]) if constrained else [],
    }


def _ca_create(context: Context, params: Params, actor: str) -> Result:
    from ca.ceremony import CeremonyRequired
    from keys.custody import KeyAlgorithm

    _check_ca_create(context, params)
    region = params["region"]
    subject = {"country_name": "CN", "organization_name": params["organization"], "common_name": params["common_name"]}
    try:
        context.ca.create_ca(
            params["name"],
            algorithm=KeyAlgorithm(params["algorithm"]),
            subject=subject,
            ca_profile="issuing-ca" if region == NATIONAL_REGION else "regional-ca",
            parent=params["parent"],
            region_code=region,
            region_name=params.get("region_name"),
            actor=actor,
            permitted_dns=tuple(params.get("permitted_dns") or ()),
        )
    except CeremonyRequired as waiting:  # the parent is offline: created when the ceremony's output is imported
        return waiting.as_json()
    context.verification.publisher.current()  # the new CA on the trust list at once
    return _ca_json(context, params["name"])


def _ca_created(context: Context, params: Params, since: datetime, _: str) -> Result | None:
    """The ceremony request the run opened under an offline parent (its result then, even once the import
    made the CA), or the CA of that name (the request-time check refused an existing name) if it is the one
    approved: parent, algorithm, region and name constraints as the params say. The trust list it had yet to
    publish follows at the scheduler's next round (api/app.py)."""
    from asn1crypto import x509

    from ca.name_constraints import namespaces

    def approved(parent: Any, algorithm: Any, region: Any, permitted: list[str]) -> str | None:
        return _differs(
            {
                "parent": (params["parent"], parent),
                "algorithm": (params["algorithm"], algorithm),
                "region": (params["region"], region),
                "permitted_dns": (sorted(params.get("permitted_dns") or []), sorted(permitted)),
            }
        )

    def request_differs(row: Any) -> str | None:
        tbs = x509.TbsCertificate.load(row.tbs_der)
        constrained = namespaces([x509.Certificate({"tbs_certificate": tbs})])
        plan = row.params or {}
        permitted = list(constrained[0]) if constrained else []
        return approved(plan.get("parent"), plan.get("algorithm"), plan.get("region_code"), permitted)

    waiting = _ceremony(context, "ca.create", params["name"], since, request_differs)
    if waiting is not None:
        return waiting
    ca = next((c for c in context.ca.list_cas() if c.name == params["name"]), None)
    if ca is None:
        return None
    found = _ca_json(context, params["name"])
    differs = approved(ca.parent, ca.algorithm, ca.region_code, found["permitted_dns"])
    if differs is not None:
        raise _mismatch(context, f"CA {ca.name}: {differs}", "ca.created", ca.name)
    return found


def _pem_der(text: str) -> bytes:
    from asn1crypto import pem

    data = text.encode("ascii", "replace")
    if not pem.detect(data):
        raise Problem(422, "certificate_malformed", "certificate_pem is not PEM")
    try:
        _, _, der = pem.unarmor(data)
    except ValueError:
        raise Problem(422, "certificate_malformed", "certificate_pem is not PEM") from None
    return der


def _check_cross_certify(context: Context, params: Params) -> None:
    from asn1crypto import x509

    try:
        certificate = x509.Certificate.load(_pem_der(params["certificate_pem"]))
        is_ca = certificate.ca
    except (ValueError, TypeError):
        raise Problem(422, "certificate_malformed", "certificate_pem is not an X.509 certificate") from None
    if not is_ca:
        raise Problem(422, "subject_not_allowed", "only CA certificates are cross-certified")
    status = context.ca.ca_status(params["ca"])  # unknown: unknown_ca (404)
    if status != "active":
        raise Problem(409, "ca_withdrawn", f"CA {params['ca']} is {status}")


def _cross_certify(context: Context, params: Params, actor: str) -> Result:
    from api.routes.certificates import to_pem
    from ca.ceremony import CeremonyRequired

    try:
        issued = context.ca.cross_certify(params["ca"], _pem_der(params["certificate_pem"]), actor=actor)
    except CeremonyRequired as waiting:
        return waiting.as_json()
    context.verification.publisher.current()  # the trust list lists cross-certificates
    return {
        "serial": issued.serial,
        "certificate_pem": to_pem(issued.der),
        "chain_pem": "".join(to_pem(c) for c in issued.chain),
    }


def _cross_certified(context: Context, params: Params, since: datetime, _: str) -> Result | None:
    """A cross-certificate under `ca` for the same public key, issued since the approval completed, or the
    ceremony request the run opened for it under an offline `ca` (pending or completed)."""
    from asn1crypto import x509
    from sqlalchemy import select

    from api.routes.certificates import to_pem
    from ca import certificates as certs
    from store.models import Certificate

    subject_der = _pem_der(params["certificate_pem"])
    waiting = _ceremony(
        context,
        "ca.cross_certify",
        certs.fingerprint(subject_der),
        since,
        lambda row: _differs({"issuer": (params["ca"], (row.params or {}).get("issuer"))}),
    )
    if waiting is not None:
        return waiting
    spki = x509.Certificate.load(subject_der).public_key.dump()
    with context.db.session() as session:
        rows = session.scalars(
            select(Certificate).where(
                Certificate.issuer_ca == params["ca"],
                Certificate.profile == "cross-certificate",
                Certificate.created_at >= since.replace(microsecond=0),
            )
        )
        for row in rows:
            if x509.Certificate.load(row.der).public_key.dump() == spki:
                chain = context.ca.chain(session, params["ca"])
                return {
                    "serial": row.serial,
                    "certificate_pem": to_pem(row.der),
                    "chain_pem": "".join(map(to_pem, chain)),
                }
    return None


def _check_withdraw(context: Context, params: Params) -> None:
    from ca import revocation as rev
    from ca.errors import CAAlreadyWithdrawn

    status = context.ca.ca_status(params["ca"])  # unknown: unknown_ca (404)
    if status == "withdrawn":
        raise CAAlreadyWithdrawn(f"{params['ca']} was withdrawn already")
    rev.normalise_reason(params.get("reason"))
    moment = params.get("invalidity_date")
    rev.checked_invalidity_date(datetime.fromisoformat(moment) if moment else None, datetime.now(UTC), "withdraw")


def _withdraw(context: Context, params: Params, actor: str) -> Result:
    from ca.withdrawal import withdraw_ca

    moment = params.get("invalidity_date")
    done = withdraw_ca(
        context.ca,
        params["ca"],
        reason=params.get("reason"),
        invalidity_date=datetime.fromisoformat(moment) if moment else None,
        actor=actor,
        publisher=context.verification.publisher,
    )
    if done.ceremony is not None:  # withdrawn at once; the offline parent's CRL waits for its ceremony
        return {"ceremony": done.ceremony, "result": done.as_json()}
    return done.as_json()


def _withdrawn(context: Context, params: Params, since: datetime, _: str) -> Result | None:
    """Withdrawn (the request-time check refused an already withdrawn CA) with the approved reason and
    invalidity date (without one, it counts from a moment after the approval): the result from its rows."""
    from sqlalchemy import select

    from ca import revocation as rev
    from ca.trust_list import history
    from ca.withdrawal import Withdrawal, publish_after
    from store.models import Certificate, CertificateAuthority, Event

    moment = params.get("invalidity_date")
    invalid_from = datetime.fromisoformat(moment).astimezone(UTC).replace(microsecond=0) if moment else None
    with context.db.session() as session:
        ca = session.get(CertificateAuthority, params["ca"])
        if ca is None or ca.status != "withdrawn":
            return None
        withdrawn_at = datetime.fromisoformat(history(ca)[-1]["from"])
        revoked = ca.certificate_serial if ca.parent is not None else None
        cert = session.get(Certificate, revoked) if revoked is not None else None
        event = session.scalars(
            select(Event).where(Event.type == "ca.withdrawn", Event.subject == params["ca"]).order_by(Event.id.desc())
        ).first()
        found_reason = (event.payload or {}).get("reason") if event is not None else None
        found_invalid = cert.invalidity_date if cert is not None else None
    pairs: dict[str, tuple[Any, Any]] = {"reason": (rev.normalise_reason(params.get("reason")), found_reason)}
    if cert is not None:  # a root's withdrawal revokes no certificate of its own
        pairs["invalidity_date"] = (invalid_from, found_invalid)
    if invalid_from is not None:
        pairs["withdrawn_from"] = (invalid_from, withdrawn_at.astimezone(UTC).replace(microsecond=0))
    elif withdrawn_at < since.replace(microsecond=0):
        pairs["withdrawn_from"] = (f"after {since.isoformat()}", withdrawn_at)
    differs = _differs(pairs)
    if differs is not None:
        raise _mismatch(context, f"CA {params['ca']} withdrawn otherwise: {differs}", "ca.withdrawn", params["ca"])
    published = publish_after(context.verification.publisher, params["ca"])
    return Withdrawal(params["ca"], withdrawn_at, revoked, trust_list_published=published).as_json()


# -- seals ----------------------------------------------------------------------------------------


def _seal_request(params: Params) -> Any:
    from seal.service import SealRequest

    return SealRequest(
        name=params["name"],
        organisation_name=params["organisation_name"],
        organisation_uscc=params["organisation_uscc"],
        ca=params["ca"],
        seal_type=params["seal_type"],
        purpose=params["purpose"],
        shape=params["shape"],
        code=params["code"],
        valid_days=params["valid_days"],
        allowed_callers=tuple(params["allowed_callers"]),
        seal_id=params.get("id"),
    )


def _check_seal_create(context: Context, params: Params) -> None:
    from seal.errors import InvalidSealRequest, SealExists
    from seal.service import SealService
    from store.models import Seal

    request = _seal_request(params)
    SealService._validate(request, request.seal_id or "seal-0000000000000000")
    if request.seal_id is not None:
        with context.db.session() as session:
            if session.get(Seal, request.seal_id) is not None:
                raise SealExists(f"seal {request.seal_id} exists")
    ca = next((c for c in context.ca.list_cas() if c.name == request.ca), None)
    if ca is None or ca.parent is None:
        raise InvalidSealRequest(f"{request.ca!r} is not an issuing CA")


def _seal_json(context: Context, seal_id: str) -> Result:
    from api.routes.seals import _info

    return _info(context.seals.get(seal_id), context).model_dump()


def _seal_create(context: Context, params: Params, actor: str) -> Result:
    return _seal_json(context, context.seals.create(_seal_request(params), actor=actor).id)


def _seal_created(context: Context, params: Params, since: datetime, _: str) -> Result | None:
    """The seal by its id, or (an id the run would have drawn) the organisation's seal of that name
    under that CA made since the approval completed."""
    from sqlalchemy import select

    from store.models import Seal

    with context.db.session() as session:
        if params.get("id"):
            found = session.get(Seal, params["id"])
        else:
            found = session.scalars(
                select(Seal).where(
                    Seal.organisation_uscc == params["organisation_uscc"],
                    Seal.name == params["name"],
                    Seal.ca_name == params["ca"],
                    Seal.created_at >= since.replace(microsecond=0),
                )
            ).first()
        seal_id = found.id if found is not None else None
    return None if seal_id is None else _seal_json(context, seal_id)


def _check_seal_revoke(context: Context, params: Params) -> None:
    from policies.seals import may_transition
    from seal.errors import InvalidTransition

    current = context.seals.effective_status(context.seals.get(params["seal_id"]))  # unknown: seal_not_found
    if not may_transition(current, "revoked"):
        raise InvalidTransition(f"a {current} seal cannot become revoked")


def _seal_revoke(context: Context, params: Params, actor: str) -> Result:
    context.seals.transition(params["seal_id"], "revoked", params.get("reason"), actor)
    return _seal_json(context, params["seal_id"])


def _seal_revoked(context: Context, params: Params, _: datetime, __: str) -> Result | None:
    if context.seals.get(params["seal_id"]).status != "revoked":
        return None
    return _seal_json(context, params["seal_id"])


# -- tokens ---------------------------------------------------------------------------------------


def _check_token_create(context: Context, params: Params) -> None:
    """A bad name, a taken name or an unknown seal is refused before anyone is asked to approve it."""
    check_request(context.db, params["role"], params["name"], list(params["seal_ids"]), params.get("expires_days"))


def _token_create(context: Context, params: Params, actor: str) -> Result:
    """The token itself was made when it was asked for and went to the requester only; this stores its
    SHA-256, so the secret is in no approval row, result or event, and no approver ever sees it."""
    token_id = add_token_hash(
        context.db,
        params["role"],
        params["name"],
        params["seal_ids"],
        params["token_sha256"],
        actor=actor,
        days=params.get("expires_days"),
    )
    return get_token(context.db, token_id).as_json()


def _token_created(context: Context, params: Params, _: datetime, __: str) -> Result | None:
    """The token whose hash the request carried is stored."""
    from sqlalchemy import select

    from store.models import ApiToken

    with context.db.session() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.token_hash == params["token_sha256"]))
    return None if token_id is None else get_token(context.db, token_id).as_json()


# -- keys -----------------------------------------------------------------------------------------


def _check_key_rotate(context: Context, params: Params) -> None:
    from api.keys import check_rotate

    check_rotate(context, params)


def _key_rotate(context: Context, params: Params, actor: str) -> Result:
    from api.keys import rotate
    from ca.ceremony import CeremonyRequired

    try:
        return rotate(context, params, actor)
    except CeremonyRequired as waiting:  # the certifying root is offline
        return waiting.as_json()


def _key_rotated(context: Context, params: Params, since: datetime, actor: str) -> Result | None:
    from api.key_sweep import rotated_since

    return rotated_since(context, params["key"], since, actor)


def _key_abandoned(context: Context, params: Params, since: datetime, until: datetime) -> None:
    """A CA's rollover makes two versions (the CA key and its `.ocsp` signer's): both are swept."""
    from api.key_sweep import disable_uncertified, in_use

    disable_uncertified(context, params["key"], since, until)
    name = params["key"].partition("@")[0]
    if in_use(context, name)[0].kind == "ca":
        disable_uncertified(context, f"{name}.ocsp", since, until)


def _subject(key: str) -> Callable[[Params], str | None]:
    def subject(params: Params) -> str | None:
        value = params.get(key)
        return None if value is None else str(value)

    return subject


register(Operation("ca.create", _ca_create, _check_ca_create, _subject("name"), _ca_created))
register(Operation("ca.cross_certify", _cross_certify, _check_cross_certify, _subject("ca"), _cross_certified))
register(Operation("ca.withdraw", _withdraw, _check_withdraw, _subject("ca"), _withdrawn))
register(Operation("seal.create", _seal_create, _check_seal_create, _subject("id"), _seal_created))
register(Operation("seal.revoke", _seal_revoke, _check_seal_revoke, _subject("seal_id"), _seal_revoked))
register(Operation("key.rotate", _key_rotate, _check_key_rotate, _subject("key"), _key_rotated, _key_abandoned))
for _role in ROLES:  # only officer and admin tokens can be put under approval (policies/approvals.py)
    register(Operation(f"token.create.{_role}", _token_create, _check_token_create, _subject("name"), _token_created))


def respond(done: Submitted, status_code: int = 200) -> JSONResponse:
    """The direct answer (`status_code`), 202 `{"approval": {…pending}}`, or 202 `{"ceremony": {…pending},
    "result"?}` when an offline CA must sign first (ca/ceremony.py)."""
    if done.approval is not None:
        location = {"Location": f"/v1/approvals/{done.approval['id']}"}
        return JSONResponse({"approval": done.approval}, status_code=202, headers=location)
    if done.result is not None and isinstance(done.result.get("ceremony"), dict):
        location = {"Location": f"/v1/ceremonies/{done.result['ceremony']['id']}"}
        return JSONResponse(done.result, status_code=202, headers=location)
    return JSONResponse(done.result, status_code=status_code)
