"""Every event issue 11 lists is a ledger entry, in the same transaction as the change it records.

One case per event type of the issue's list (approvals and witness alarms are built elsewhere). Each
case performs the real operation through the services the API and CLI call, then: exactly one new
event of that type with the right subject; after a sequencer pass it has a ledger index and the
entry served at that index is the event's; the log is dense and its tree matches the RFC 9162
reference. Each case is run again with a failure injected right after its event was written inside
the business transaction: then neither the change nor the event exists, and the log has no gap.
Keys are the exception the issue names: custody is a separate store, so a lost commit leaves a key
without its event, and reconciliation records it (`key.discovered`, `key.disabled` discovered).
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import api.auth
import ca.authority
import ca.crl
import ca.trust_list
import ca.withdrawal
import ledger.key_events
import seal.service
import signing.licences
import signing.service
from api.auth import authenticate, create_token, revoke_token
from api.context import Context
from ca.withdrawal import withdraw_ca
from gm import jcs
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from ledger import entries
from ledger.events import record_event
from ledger.key_events import reconcile_key_events
from seal.demo import create_demo_seals
from seal.service import SealRequest
from signing.licences import LicenceRequest
from signing.pdf import Placement
from signing.service import Caller
from store.db import Database
from store.models import CRL, ApiToken, Certificate, CertificateAuthority, Event, Licence, Seal, TrustListRecord
from store.raw import RawStatement
from tests.fixtures import ORG_SUBJECT, make_csr, make_pdf
from tests.ledger.test_sequencer import check_log

# The issue's list, minus approvals and witness alarms (built by others).
ISSUE_LIST = {
    "certificate.issued",
    "certificate.revoked",
    "crl.published",
    "ca.created",
    "ca.withdrawn",
    "ca.cross_certified",
    "seal.created",
    "seal.suspended",
    "seal.resumed",
    "seal.revoked",
    "document.sealed",
    "licence.issued",
    "licence.status_changed",
    "key.created",
    "key.rotated",
    "key.disabled",
    "trust_list.published",
    "token.created",
    "token.revoked",
}
KEY_TYPES = {"key.created", "key.rotated", "key.disabled"}
SHANDONG = "11370000MB00000015"  # demo-370000-sm2's organisation
PERSON = "张三丰"
PERSON_LATIN = "Zhang Sanfeng"  # in a CSR subject (openssl -subj without -utf8)
RECORDING_MODULES = (ca.authority, ca.crl, ca.withdrawal, ca.trust_list, seal.service, signing.service,
                     signing.licences, api.auth, ledger.key_events)  # fmt: skip


@pytest.fixture(scope="module")
def keystore(database: Database, tmp_path_factory: pytest.TempPathFactory) -> LocalKeystore:
    """One keystore per database (the shared fixture keeps one for both): custody and log start together."""
    return LocalKeystore(tmp_path_factory.mktemp("keystore"), passphrase="test-passphrase", scrypt_n=2**10)


@pytest.fixture(scope="module")
def ready(context: Context) -> Context:
    create_demo_seals(context.seals, actor="test")
    return context


class Boom(RuntimeError):
    pass


# -- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    """`prepare` commits what the operation needs and returns its state; `act` performs the operation
    and returns the subject its event must name; `done` tells whether the change is in the database."""

    prepare: Callable[[Context, Path], dict[str, Any]]
    act: Callable[[Context, dict[str, Any]], str]
    done: Callable[[Context, dict[str, Any]], bool]
    check: Callable[[Context, dict[str, Any], dict[str, Any]], None] = lambda ctx, state, payload: None


def scalar(ctx: Context, query: Any) -> Any:
    with ctx.db.session() as session:
        return session.scalar(query)


def count(ctx: Context, query: Any) -> int:
    return int(scalar(ctx, select(func.count()).select_from(query.subquery())))


def _person_csr(ctx: Context, tmp: Path) -> dict[str, Any]:
    csr = make_csr(tmp, algorithm="sm2", subject=f"/C=CN/CN={PERSON_LATIN}/serialNumber=370102199002141234")
    return {"csr": csr, "before": count(ctx, select(Certificate).where(Certificate.profile == "person"))}


def _issue(ctx: Context, state: dict[str, Any]) -> str:
    issued = ctx.ca.issue(state["csr"], "person", "cn-370000-sm2", actor="officer:cov")
    state["serial"] = issued.serial
    return issued.serial


def _issued_payload(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
    assert payload["serial"] == state["serial"] and payload["profile"] == "person"
    assert payload["subject_hmac"].startswith("hmac-sm3:v")  # the person's name only as a keyed digest
    text = json.dumps(payload, ensure_ascii=False)
    assert PERSON_LATIN not in text and "370102199002141234" not in text


def _issued_certificate(ctx: Context, tmp: Path) -> dict[str, Any]:
    csr = make_csr(tmp, algorithm="sm2", subject=ORG_SUBJECT)
    return {"serial": ctx.ca.issue(csr, "org-seal", "cn-530000-sm2", actor="test").serial}


def _revoke(ctx: Context, state: dict[str, Any]) -> str:
    ctx.ca.revoke(state["serial"], "key_compromise", actor="officer:cov")
    return str(state["serial"])


def _revoked(ctx: Context, state: dict[str, Any]) -> bool:
    return scalar(ctx, select(Certificate.status).where(Certificate.serial == state["serial"])) == "revoked"


def _crl_prepare(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _issued_certificate(ctx, tmp)
    state["crls"] = count(ctx, select(CRL).where(CRL.ca_name == "cn-530000-sm2"))
    return state


def _crl_act(ctx: Context, state: dict[str, Any]) -> str:
    _revoke(ctx, state)  # a revocation publishes its CA's CRL in the same transaction
    return "cn-530000-sm2"


def _crl_payload(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
    with ctx.db.session() as session:
        newest = session.scalars(
            select(CRL).where(CRL.ca_name == "cn-530000-sm2").order_by(CRL.number.desc()).limit(1)
        ).one()
        revoked = session.scalar(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.issuer_ca == "cn-530000-sm2", Certificate.status == "revoked")
        )
        ca = session.get(CertificateAuthority, "cn-530000-sm2")
        assert ca is not None and not ca.previous_keys  # one key, one list: its scope is the plain URL's
    assert payload == {
        "ca": "cn-530000-sm2",
        "number": newest.number,
        "this_update": newest.this_update.isoformat(),
        "next_update": newest.next_update.isoformat(),
        "sm3": sm3(newest.der).hex(),
        "entries": revoked,
        "scope": newest.scope,
        "key": ca.key_ref,
    }
    assert newest.scope == ""
    assert revoked is not None and revoked >= 1


def _new_ca_name(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"name": f"cov-{secrets.token_hex(3)}"}


def _create_ca(ctx: Context, state: dict[str, Any]) -> str:
    ctx.ca.create_ca(
        state["name"],
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": f"{state['name']} CA"},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="440000",
        region_name="广东",
        actor="officer:cov",
    )
    return str(state["name"])


def _ca_exists(ctx: Context, state: dict[str, Any]) -> bool:
    return scalar(ctx, select(CertificateAuthority.name).where(CertificateAuthority.name == state["name"])) is not None


def _existing_ca(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _new_ca_name(ctx, tmp)
    _create_ca(ctx, state)
    return state


def _withdraw(ctx: Context, state: dict[str, Any]) -> str:
    withdraw_ca(ctx.ca, state["name"], reason="cessation_of_operation", actor="officer:cov")
    return str(state["name"])


def _withdrawn(ctx: Context, state: dict[str, Any]) -> bool:
    return scalar(ctx, select(CertificateAuthority.status).where(CertificateAuthority.name == state["name"])) == (
        "withdrawn"
    )


def _foreign_root(ctx: Context, tmp: Path) -> dict[str, Any]:
    der = tmp / "foreign.der"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(tmp / "foreign.key"), "-subj", "/C=CN/O=Foreign Region/CN=Foreign Root", "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-outform", "DER", "-out", str(der)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"der": der.read_bytes(), "before": _cross_count(ctx)}


def _cross_count(ctx: Context) -> int:
    return count(ctx, select(Certificate).where(Certificate.profile == "cross-certificate"))


def _cross_certify(ctx: Context, state: dict[str, Any]) -> str:
    state["serial"] = ctx.ca.cross_certify("cn-root-sm2", state["der"], actor="officer:cov").serial
    return str(state["serial"])


def _seal_request(seal_id: str) -> SealRequest:
    return SealRequest(
        name="覆盖测试专用章", organisation_name="覆盖测试单位", organisation_uscc=SHANDONG, ca="cn-370000-sm2",
        seal_id=seal_id,
    )  # fmt: skip


def _seal_id(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"seal": f"cov-{secrets.token_hex(4)}"}


def _create_seal(ctx: Context, state: dict[str, Any]) -> str:
    ctx.seals.create(_seal_request(state["seal"]), actor="officer:cov")
    return str(state["seal"])


def _seal_status(ctx: Context, state: dict[str, Any]) -> str | None:
    return scalar(ctx, select(Seal.status).where(Seal.id == state["seal"]))


def _existing_seal(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _seal_id(ctx, tmp)
    _create_seal(ctx, state)
    return state


def _suspended_seal(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _existing_seal(ctx, tmp)
    ctx.seals.transition(state["seal"], "suspended", actor="test")
    return state


def _transition(target: str) -> Callable[[Context, dict[str, Any]], str]:
    def act(ctx: Context, state: dict[str, Any]) -> str:
        ctx.seals.transition(state["seal"], target, reason="coverage", actor="officer:cov")
        return str(state["seal"])

    return act


ISSUER = Caller("issuer", "cov-system", ("demo-370000-sm2",))


def _document(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"pdf": make_pdf(), "before": count(ctx, select(Event).where(Event.type == "document.sealed"))}


def _seal_document(ctx: Context, state: dict[str, Any]) -> str:
    sealed = ctx.signing.seal_pdf(state["pdf"], seal_id="demo-370000-sm2", caller=ISSUER, placement=Placement())
    state["sm3"] = sealed.document_sm3
    return "demo-370000-sm2"


def _sealed_payload(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
    assert payload["document_sm3"] == sm3(state["pdf"]).hex() == state["sm3"]
    assert payload["seal_id"] == "demo-370000-sm2" and payload["licence_id"] is None
    certificate = scalar(ctx, select(Seal.certificate_serial).where(Seal.id == "demo-370000-sm2"))
    assert payload["certificate_serial"] == certificate


def _licence_request() -> LicenceRequest:
    number = f"COV-{secrets.token_hex(4)}"
    return LicenceRequest.from_json(
        {
            "type_code": SHANDONG + "001",
            "type_name": "营业执照",
            "number": number,
            "holder": {"name": PERSON, "id": "370102199002141234", "id_type": "resident_id"},
            "issuer": {"name": "济南市市场监督管理局", "uscc": SHANDONG},
            "issue_date": "2026-11-22",
        }
    )


def _licence(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"pdf": make_pdf(), "licence": _licence_request()}


def _issue_licence(ctx: Context, state: dict[str, Any]) -> str:
    ctx.signing.seal_pdf(
        state["pdf"], seal_id="demo-370000-sm2", caller=ISSUER, placement=Placement(), licence=state["licence"]
    )
    return str(state["licence"].identifier)


def _licence_status(ctx: Context, state: dict[str, Any]) -> str | None:
    return scalar(ctx, select(Licence.status).where(Licence.identifier == state["licence"].identifier))


def _licence_payload(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
    text = json.dumps(payload, ensure_ascii=False)
    assert PERSON not in text and "370102199002141234" not in text
    assert payload["holder_id_hmac"] == ctx.ca.pii("370102199002141234")


def _issued_licence(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _licence(ctx, tmp)
    _issue_licence(ctx, state)
    return state


def _suspend_licence(ctx: Context, state: dict[str, Any]) -> str:
    ctx.signing.licences.set_status(state["licence"].identifier, "02", "coverage", role="officer", caller="cov")
    return str(state["licence"].identifier)


def _trust_list_change(ctx: Context, tmp: Path) -> dict[str, Any]:
    _existing_ca(ctx, tmp)  # a CA the published list does not show yet
    newest = scalar(ctx, select(func.max(TrustListRecord.sequence))) or 0
    return {"sequence": newest + 1}


def _publish(ctx: Context, state: dict[str, Any]) -> str:
    assert ctx.verification.publisher.current()["sequence"] == state["sequence"]
    return str(state["sequence"])


def _published(ctx: Context, state: dict[str, Any]) -> bool:
    return (
        scalar(ctx, select(TrustListRecord.sequence).where(TrustListRecord.sequence == state["sequence"])) is not None
    )


def _key_name(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"key": f"cov.{secrets.token_hex(4)}"}


def _existing_key(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _key_name(ctx, tmp)
    ctx.custody.create(state["key"], KeyAlgorithm.SM2)
    return state


def _create_key(ctx: Context, state: dict[str, Any]) -> str:
    state["version"] = ctx.custody.create(state["key"], KeyAlgorithm.SM2)
    return str(state["key"])


def _rotate_key(ctx: Context, state: dict[str, Any]) -> str:
    state["version"] = ctx.custody.rotate(state["key"])
    return str(state["key"])


def _disable_key(ctx: Context, state: dict[str, Any]) -> str:
    state["version"] = ctx.custody.disable(state["key"], 1)
    return str(state["key"])


def _key_versions(ctx: Context, state: dict[str, Any]) -> list[tuple[int, bool]]:
    if state["key"] not in ctx.custody.names():
        return []
    return [(v.version, v.enabled) for v in ctx.custody.versions(state["key"])]


def _key_payload(extra: dict[str, Any]) -> Callable[[Context, dict[str, Any], dict[str, Any]], None]:
    def check(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
        version = state["version"]
        assert payload == {
            "key": state["key"],
            "version": version.version,
            "algorithm": "sm2",
            "key_id": sm3(version.public_key_der).hex(),  # the public key's id, nothing private
            **extra,
        }

    return check


def _token_name(ctx: Context, tmp: Path) -> dict[str, Any]:
    return {"name": f"cov-{secrets.token_hex(4)}"}


def _create_token(ctx: Context, state: dict[str, Any]) -> str:
    state["token"] = create_token(ctx.db, "issuer", state["name"], ["demo-370000-sm2"], actor="admin:cov")
    return str(state["name"])


def _token_payload(ctx: Context, state: dict[str, Any], payload: dict[str, Any]) -> None:
    token = state["token"]
    text = json.dumps(payload)
    assert token not in text and hashlib.sha256(token.encode()).hexdigest() not in text
    assert {k: payload[k] for k in ("name", "role", "seals")} == {
        "name": state["name"],
        "role": "issuer",
        "seals": ["demo-370000-sm2"],
    }


def _existing_token(ctx: Context, tmp: Path) -> dict[str, Any]:
    state = _token_name(ctx, tmp)
    _create_token(ctx, state)
    return state


def _revoke_token(ctx: Context, state: dict[str, Any]) -> str:
    assert revoke_token(ctx.db, state["name"], actor="admin:cov").status == "revoked"
    return str(state["name"])


def _token_enabled(ctx: Context, state: dict[str, Any]) -> bool | None:
    return scalar(ctx, select(ApiToken.disabled).where(ApiToken.name == state["name"])) is False


CASES: dict[str, Case] = {
    "certificate.issued": Case(
        _person_csr,
        _issue,
        lambda ctx, s: count(ctx, select(Certificate).where(Certificate.profile == "person")) > s["before"],
        _issued_payload,
    ),
    "certificate.revoked": Case(_issued_certificate, _revoke, _revoked),
    "crl.published": Case(
        _crl_prepare,
        _crl_act,
        lambda ctx, s: count(ctx, select(CRL).where(CRL.ca_name == "cn-530000-sm2")) > s["crls"],
        _crl_payload,
    ),
    "ca.created": Case(_new_ca_name, _create_ca, _ca_exists),
    "ca.withdrawn": Case(_existing_ca, _withdraw, _withdrawn),
    "ca.cross_certified": Case(_foreign_root, _cross_certify, lambda ctx, s: _cross_count(ctx) > s["before"]),
    "seal.created": Case(_seal_id, _create_seal, lambda ctx, s: _seal_status(ctx, s) is not None),
    "seal.suspended": Case(
        _existing_seal, _transition("suspended"), lambda ctx, s: _seal_status(ctx, s) == "suspended"
    ),
    "seal.resumed": Case(_suspended_seal, _transition("active"), lambda ctx, s: _seal_status(ctx, s) == "active"),
    "seal.revoked": Case(_existing_seal, _transition("revoked"), lambda ctx, s: _seal_status(ctx, s) == "revoked"),
    # sealing changes nothing but the log: `done` is whether a new document.sealed event exists
    "document.sealed": Case(
        _document,
        _seal_document,
        lambda ctx, s: count(ctx, select(Event).where(Event.type == "document.sealed")) > s["before"],
        _sealed_payload,
    ),
    "licence.issued": Case(
        _licence, _issue_licence, lambda ctx, s: _licence_status(ctx, s) is not None, _licence_payload
    ),
    "licence.status_changed": Case(_issued_licence, _suspend_licence, lambda ctx, s: _licence_status(ctx, s) == "02"),
    "trust_list.published": Case(_trust_list_change, _publish, _published),
    "key.created": Case(_key_name, _create_key, lambda ctx, s: bool(_key_versions(ctx, s)), _key_payload({})),
    "key.rotated": Case(
        _existing_key,
        _rotate_key,
        lambda ctx, s: len(_key_versions(ctx, s)) == 2,
        _key_payload({"previous_version": 1}),
    ),
    "key.disabled": Case(
        _existing_key, _disable_key, lambda ctx, s: _key_versions(ctx, s) == [(1, False)], _key_payload({})
    ),
    "token.created": Case(_token_name, _create_token, lambda ctx, s: _token_enabled(ctx, s) is True, _token_payload),
    "token.revoked": Case(_existing_token, _revoke_token, lambda ctx, s: _token_enabled(ctx, s) is False),
}


# -- helpers -------------------------------------------------------------------------------------


def last_event_id(ctx: Context) -> int:
    return int(scalar(ctx, select(func.max(Event.id))) or 0)


def events_after(ctx: Context, after: int, type_: str | None = None) -> list[Event]:
    query = select(Event).where(Event.id > after).order_by(Event.id)
    if type_ is not None:
        query = query.where(Event.type == type_)
    with ctx.db.session() as session:
        return list(session.scalars(query))


def assert_logged(ctx: Context, event: Event) -> None:
    """After a sequencer pass the event has an index, and the entry served there is the event's."""
    ctx.ledger.sequencer.run_pass()
    found = ctx.ledger.sequencer.lookup(event.id)
    assert found is not None
    [served] = ctx.ledger.entries(found.index, found.index + 1)
    expected = entries.entry(event.type, event.created_at, event.actor, event.subject, event.payload)
    assert served["index"] == found.index
    assert served["entry"] == expected
    assert served["entry"]["type"] == event.type and served["entry"]["subject"] == event.subject
    leaf = base64.b64decode(served["leaf_input"])
    assert leaf == jcs.canonical(expected)
    assert found.leaf_hash == ctx.ledger.hasher.leaf(leaf)


def assert_no_gap(ctx: Context) -> None:
    """Every committed event has an index, densely from 0, and the tree is the RFC 9162 tree of them."""
    ctx.ledger.sequencer.run_pass()
    leaves = check_log(ctx.db, sample=8)
    assert count(ctx, select(Event)) == len(leaves)


@contextmanager
def failing_after_event(type_: str) -> Iterator[None]:
    """Inside: a business transaction fails right after it wrote the event of `type_` (through
    record_event or the issuance's raw insert), before it commits; Boom is raised and expected."""
    with pytest.MonkeyPatch.context() as monkeypatch, pytest.raises(Boom):

        def failing_record_event(session: Any, kind: str, **kwargs: Any) -> int:
            event_id = record_event(session, kind, **kwargs)
            if kind == type_:
                raise Boom(f"injected after {kind}")
            return event_id

        for module in RECORDING_MODULES:
            monkeypatch.setattr(module, "record_event", failing_record_event)
        real_execute = RawStatement.execute

        def failing_execute(self: RawStatement, cursor: Any, values: Any) -> Any:
            result = real_execute(self, cursor, values)
            if values.get("type") == type_:
                raise Boom(f"injected after {type_}")
            return result

        monkeypatch.setattr(RawStatement, "execute", failing_execute)
        yield


# -- tests ---------------------------------------------------------------------------------------


def test_the_cases_are_the_issue_list() -> None:
    assert set(CASES) == ISSUE_LIST


@pytest.mark.parametrize("kind", sorted(ISSUE_LIST))
def test_each_event_becomes_one_entry(kind: str, ready: Context, tmp_path: Path) -> None:
    case = CASES[kind]
    state = case.prepare(ready, tmp_path)
    before = last_event_id(ready)
    assert not case.done(ready, state)
    subject = case.act(ready, state)
    assert case.done(ready, state)
    [event] = events_after(ready, before, kind)
    assert event.subject == subject
    case.check(ready, state, dict(event.payload))
    assert_logged(ready, event)
    assert_no_gap(ready)


@pytest.mark.parametrize("kind", sorted(ISSUE_LIST - KEY_TYPES))
def test_a_failed_transaction_leaves_neither_change_nor_event(kind: str, ready: Context, tmp_path: Path) -> None:
    case = CASES[kind]
    state = case.prepare(ready, tmp_path)
    assert_no_gap(ready)
    before = last_event_id(ready)
    with failing_after_event(kind):
        case.act(ready, state)
    assert not case.done(ready, state)
    assert events_after(ready, before, kind) == []
    assert_no_gap(ready)


@pytest.mark.parametrize(
    ("kind", "recovered"),
    [("key.created", "key.discovered"), ("key.rotated", "key.discovered"), ("key.disabled", "key.disabled")],
)
def test_a_key_change_whose_event_was_lost_is_reconciled(
    kind: str, recovered: str, ready: Context, tmp_path: Path
) -> None:
    """Custody cannot roll back: the failure lands between the custody change and the commit. The
    change stays, its event is gone, the log has no gap, and reconciliation records what custody holds."""
    case = CASES[kind]
    state = case.prepare(ready, tmp_path)
    before = last_event_id(ready)
    with failing_after_event(kind):
        case.act(ready, state)
    assert events_after(ready, before, kind) == []
    assert case.done(ready, state)  # custody changed
    assert_no_gap(ready)

    recorded = reconcile_key_events(ready.db, ready.custody, actor="test")
    [event] = [e for e in events_after(ready, before) if e.id in recorded]
    assert event.type == recovered and event.subject == state["key"]
    versions = ready.custody.versions(state["key"])
    newest = max(versions, key=lambda v: v.version)
    assert event.payload["version"] == newest.version
    assert event.payload["key_id"] == sm3(newest.public_key_der).hex()
    if kind == "key.disabled":
        assert event.payload["discovered"] is True
    assert_logged(ready, event)
    assert reconcile_key_events(ready.db, ready.custody) == []  # nothing twice
    assert_no_gap(ready)


def test_a_custody_failure_records_no_key_event(ready: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from keys.custody import CustodyLocked

    def locked(*_: Any) -> Any:
        raise CustodyLocked("custody unavailable")

    inner = ready.custody.inner  # type: ignore[attr-defined]
    before = last_event_id(ready)
    monkeypatch.setattr(inner, "create", locked)
    with pytest.raises(CustodyLocked):
        ready.custody.create("cov.never", KeyAlgorithm.SM2)
    assert events_after(ready, before) == []


def test_every_key_the_services_made_is_in_the_log(ready: Context) -> None:
    """CA, OCSP, seal-maker, seal, TSA, trust-list, ledger and personal-data keys are all made through
    the recording custody: reconciliation finds nothing missing."""
    ready.signing.tsa.unit("sm2")  # TSA key
    ready.ledger.signer()  # ledger key
    ready.verification.publisher.current()  # trust-list signer key
    names = set(ready.custody.names())
    assert {"cn-root-sm2", "cn-370000-sm2.ocsp", "cn-370000-sm2.seal-maker", "seal.demo-370000-sm2", "tsa.sm2",
            "trust-list.sm2", "ledger.sm2", "ledger.pii-hmac"} <= names  # fmt: skip
    created = {e.subject for e in events_after(ready, 0, "key.created")}
    made_by_services = {name for name in names if not name.startswith("cov.")}  # not this module's own
    assert made_by_services <= created
    [pii] = [e for e in events_after(ready, 0, "key.created") if e.subject == "ledger.pii-hmac"]
    assert pii.payload == {"key": "ledger.pii-hmac", "version": 1, "algorithm": "hmac-sm3", "key_id": None}
    assert reconcile_key_events(ready.db, ready.custody) == []


def test_keys_older_than_key_events_are_discovered_once(ready: Context) -> None:
    """A key made behind the log's back (an older home, another tool) enters the log at the next start."""
    inner = ready.custody.inner  # type: ignore[attr-defined]
    name = f"cov.old-{secrets.token_hex(3)}"
    inner.create(name, KeyAlgorithm.P256)
    inner.rotate(name)
    inner.disable(name, 1)
    recorded = reconcile_key_events(ready.db, ready.custody)
    found = [(e.type, e.payload["version"]) for e in events_after(ready, 0) if e.id in recorded]
    assert sorted(found) == [("key.disabled", 1), ("key.discovered", 1), ("key.discovered", 2)]
    assert reconcile_key_events(ready.db, ready.custody) == []


def test_refreshing_crls_logs_one_entry_per_ca(ready: Context) -> None:
    before = last_event_id(ready)
    numbers = ready.ca.refresh_crls()
    logged = {e.subject: e.payload["number"] for e in events_after(ready, before, "crl.published")}
    assert logged == numbers


def test_a_revoked_token_stops_working_and_an_unknown_one_is_refused(ready: Context) -> None:
    token = create_token(ready.db, "verifier", "cov-revoked")
    assert authenticate(ready.db, token) is not None
    assert revoke_token(ready.db, "cov-revoked").status == "revoked"
    assert authenticate(ready.db, token) is None
    with pytest.raises(api.auth.TokenNotFound, match="no enabled token named 'cov-revoked'"):
        revoke_token(ready.db, "cov-revoked")
    with pytest.raises(api.auth.TokenNotFound):
        revoke_token(ready.db, "cov-nobody")


@pytest.fixture(autouse=True)
def _no_stray_integrator(ready: Context) -> Iterator[None]:
    assert ready.integrator is None  # the passes in these tests are the only ones
    yield
