"""`trustseal ledger verify` / `export` as an auditor runs them: the CLI (typer's CliRunner) against the
real app served by uvicorn on a loopback port, trusting only the ledger certificate or its pin.

Every kind of tampering with an export fails with exit 1 and its own code; a rewritten log of the same
size, or a smaller one, signed by the real ledger key (which the server could do) passes alone but is
caught by the kept state; a prefix or a middle part of the log still verifies."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.context import Context
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from ledger import entries as ledger_entries
from ledger.checkpoint import sign_checkpoint
from ledger.events import record_event
from ledger.merkle import SM3, MerkleTree
from ledger.node_store import MemoryNodeStore
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf

runner = CliRunner()


def _cli(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = runner.invoke(app, list(args), env={"TRUSTSEAL_HOME": str(tmp_path / "auditor-home")})
    body = None
    if "--json" in args and result.stdout.strip().startswith("{"):
        body = json.loads(result.stdout)
    return result.exit_code, body, result.output


def _verify(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, body, output = _cli(tmp_path, "ledger", "verify", "--json", *args)
    assert body is not None, output
    return code, body


def _activity(context: Context, count: int) -> None:
    for n in range(count):
        with context.db.session() as session:
            record_event(session, "test.audit", actor="test", subject=f"a-{n}", payload={"n": n})


def _events(context: Context) -> int:
    from sqlalchemy import func, select

    from store.models import Event

    with context.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Event)).scalar_one())


def _covered(url: str, size: int) -> dict[str, Any]:
    """The served checkpoint once it covers `size` entries (the integrator's, within a period and a pass)."""
    deadline = time.monotonic() + 3.0
    while True:
        body: dict[str, Any] = httpx.get(f"{url}/v1/ledger/checkpoint").json()
        if body["size"] >= size:
            return body
        assert time.monotonic() < deadline, f"no checkpoint covers {size}: {body}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def cert(live_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auditor") / "ledger.pem"
    path.write_bytes(httpx.get(f"{live_url}/v1/ledger/key").content)
    return path


def _key_id(cert: Path) -> str:
    from ledger.audit import key_of_certificate

    return key_of_certificate(cert.read_bytes())[0]


def test_live_verify_with_the_certificate_then_the_state_alone(
    live_url: str, context: Context, cert: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    _activity(context, 3)
    first = _covered(live_url, _events(context))
    code, body = _verify(tmp_path, "--url", live_url, "--cert", str(cert), "--state", str(state))
    assert code == 0, body
    assert body["result"] == "verified" and body["state"]["advanced"] is True
    assert body["checkpoint"]["size"] >= first["size"]
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "checkpoint": "passed", "signature": "passed", "root": "passed", "consistency": "skipped",
    }  # fmt: skip
    kept = json.loads(state.read_text())["logs"][first["origin"]]
    assert kept["size"] == body["checkpoint"]["size"] and list(kept["trusted_keys"]) == [_key_id(cert)]

    _activity(context, 4)
    second = _covered(live_url, _events(context))
    code, body = _verify(tmp_path, "--url", live_url, "--state", str(state))  # trust from the state only
    assert code == 0, body
    consistency = next(c for c in body["checks"] if c["name"] == "consistency")
    assert consistency["status"] == "passed" and "consistency proof" in consistency["detail"]
    assert json.loads(state.read_text())["logs"][first["origin"]]["size"] == body["checkpoint"]["size"]
    assert body["checkpoint"]["size"] >= second["size"]
    # the human form says the same
    code, _, output = _cli(tmp_path, "ledger", "verify", "--url", live_url, "--state", str(state))
    assert code == 0 and output.startswith("VERIFIED") and "signature: passed" in output


def test_pin_entry_and_document(
    live_url: str, context: Context, seal_service: SealService, cert: Path, tmp_path: Path
) -> None:
    original = make_pdf()
    sealed = context.signing.seal_pdf(
        original,
        seal_id="demo-370000-sm2",
        caller=Caller(role="issuer", name="audit-test", seal_ids=("*",)),
        placement=Placement(page=1, x_mm=100, y_mm=40),
        level="B-B",
    )
    index = context.ledger.wait_for(sealed.event_id).index
    _covered(live_url, index + 1)
    (tmp_path / "original.pdf").write_bytes(original)
    (tmp_path / "sealed.pdf").write_bytes(sealed.pdf)
    (tmp_path / "other.pdf").write_bytes(make_pdf() + b"\n% another document\n")
    pin = ("--pin", _key_id(cert))
    state = ("--state", str(tmp_path / "state.json"))
    # Review: a sealed PDF with a revision appended after sealing matched its seal's entry like the sealed
    # file itself; the match now says what the logged digest covers, so the relying party sees the gap.
    appended = b"\n% a revision appended after sealing\n%%EOF\n"
    (tmp_path / "changed.pdf").write_bytes(sealed.pdf + appended)
    for document, match in (
        ("original.pdf", "the file itself"),  # document_sm3 of the input
        ("sealed.pdf", "the whole file"),  # the sealed file's signed bytes
        ("changed.pdf", f"{len(appended)} bytes after them are not covered"),
    ):
        code, body = _verify(tmp_path, "--url", live_url, *pin, *state, "--document", str(tmp_path / document))
        assert code == 0, body
        assert [item["index"] for item in body["included"]] == [index]
        assert any("inclusion proof against the checkpoint" in way for way in body["included"][0]["how"])
        assert match in body["included"][0]["match"], (document, body["included"])
    code, body = _verify(tmp_path, "--url", live_url, *pin, *state, "--entry", "0", "--entry", str(index))
    assert code == 0 and [item["index"] for item in body["included"]] == [0, index]
    code, body = _verify(tmp_path, "--url", live_url, *pin, *state, "--document", str(tmp_path / "other.pdf"))
    assert code == 1 and body["code"] == "document_not_found"
    code, body = _verify(tmp_path, "--url", live_url, *pin, *state, "--entry", str(10**6))
    assert code == 1 and body["code"] == "entry_out_of_range"


def test_usage_and_could_not_run(live_url: str, cert: Path, tmp_path: Path) -> None:
    code, _, output = _cli(tmp_path, "ledger", "verify", "--url", live_url, "--export", str(cert), "--cert", str(cert))
    assert code == 2 and "exactly one of --url or --export" in output
    code, _, output = _cli(tmp_path, "ledger", "verify", "--url", live_url, "--state", str(tmp_path / "none.json"))
    assert code == 2 and "no trust" in output
    code, _, output = _cli(tmp_path, "ledger", "verify", "--url", live_url, "--pin", "abc")
    assert code == 2 and "64 hex digits" in output
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, never listening: connections are refused
        code, _, output = _cli(tmp_path, "ledger", "verify", "--url", f"http://127.0.0.1:{closed}", "--cert", str(cert))
    assert code == 4 and "could not run" in output
    (tmp_path / "broken.json").write_text("{not json")
    code, _, output = _cli(tmp_path, "ledger", "verify", "--url", live_url, "--cert", str(cert), "--state",
                           str(tmp_path / "broken.json"))  # fmt: skip
    assert code == 4 and "cannot read the state file" in output
    assert (tmp_path / "broken.json").read_text() == "{not json"  # left for the auditor to look at
    assert not (tmp_path / "auditor-home" / "ledger-state.json").exists()  # nothing verified, nothing kept


# -- exports ----------------------------------------------------------------------------------------


def _export(tmp_path: Path, url: str, name: str, *args: str) -> Path:
    out = tmp_path / name
    code, _, output = _cli(tmp_path, "ledger", "export", "-o", str(out), "--url", url, *args)
    assert code == 0, output
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return path


def _with_entry(item: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    leaf = ledger_entries.leaf_input(entry)
    return {**item, "entry": entry, "leaf_input": base64.b64encode(leaf).decode()}


def _resigned(
    lines: list[dict[str, Any]], handle: Any, size: int | None = None, origin: str | None = None
) -> list[dict[str, Any]]:
    """The export's entries (cut to `size`) under a new checkpoint signed by `handle`: what a server
    holding the ledger key could publish after rewriting its log (under another `origin`, if given)."""
    head, items = lines[0], lines[1:]
    items = items[: size if size is not None else len(items)]
    tree = MerkleTree(MemoryNodeStore(), SM3)
    tree.append_leaves([base64.b64decode(item["leaf_input"]) for item in items])
    from datetime import UTC, datetime

    checkpoint = sign_checkpoint(
        [handle],
        origin=origin or head["checkpoint"]["origin"],
        size=len(items),
        root_hash=tree.root(),
        timestamp=datetime.now(UTC),
    )
    return [{**head, "checkpoint": checkpoint.to_json(), "end": len(items)}, *items]


def test_export_verifies_and_every_tampering_fails(live_url: str, context: Context, cert: Path, tmp_path: Path) -> None:
    _activity(context, 6)
    _covered(live_url, _events(context))
    good = _export(tmp_path, live_url, "ledger.jsonl")
    lines = _lines(good)
    head = lines[0]
    assert head["format"] == "trustseal-ledger-export/v1" and head["start"] == 0
    assert head["end"] == head["checkpoint"]["size"] == len(lines) - 1
    assert head["checkpoint"]["cosignatures"] == [] and len(head["certificates"]) == 1
    assert [item["index"] for item in lines[1:]] == list(range(head["end"]))
    code, body = _verify(tmp_path, "--export", str(good), "--cert", str(cert), "--state", str(tmp_path / "s0.json"))
    assert code == 0, body

    entries = lines[1:]
    victim = len(entries) // 2
    changed_entry = {**entries[victim]["entry"], "subject": "someone else"}
    other = LocalKeystore(tmp_path / "other-keys", passphrase="x", scrypt_n=2**10)
    other.create("impostor", KeyAlgorithm.SM2)
    flipped = dict(head["checkpoint"])
    signature = bytearray(base64.b64decode(flipped["signature"]))
    signature[-3] ^= 0x01
    flipped["signature"] = base64.b64encode(bytes(signature)).decode()
    flipped["signatures"] = [{"key_id": flipped["key_id"], "signature": flipped["signature"]}]
    cases: dict[str, tuple[list[dict[str, Any]], str]] = {
        "entry changed (leaf and entry)": (
            [head, *entries[:victim], _with_entry(entries[victim], changed_entry), *entries[victim + 1 :]],
            "root_mismatch",
        ),
        "entry changed (shown entry only)": (
            [head, *entries[:victim], {**entries[victim], "entry": changed_entry}, *entries[victim + 1 :]],
            "entry_mismatch",
        ),
        "entry dropped": ([head, *entries[:victim], *entries[victim + 1 :]], "entries_out_of_order"),
        "last entry dropped": ([head, *entries[:-1]], "entries_incomplete"),
        "entry dropped, renumbered": (
            [
                head,
                *entries[:victim],
                *({**e, "index": e["index"] - 1} for e in entries[victim + 1 :]),
                {**entries[0], "index": len(entries) - 1},
            ],
            "root_mismatch",
        ),
        "entries reordered": (
            [head, *entries[:victim], entries[victim + 1], entries[victim], *entries[victim + 2 :]],
            "entries_out_of_order",
        ),
        "entries reordered, renumbered": (
            [
                head,
                *entries[:victim],
                {**entries[victim + 1], "index": victim},
                {**entries[victim], "index": victim + 1},
                *entries[victim + 2 :],
            ],
            "root_mismatch",
        ),
        "checkpoint signature flipped": ([{**head, "checkpoint": flipped}, *entries], "checkpoint_signature_invalid"),
        "checkpoint from another key": (_resigned(lines, other.signer("impostor")), "untrusted_key"),
        "header not JSON": ([{"format": "something else"}, *entries], "export_malformed"),
        "checkpoint note edited": (
            [{**head, "checkpoint": {**head["checkpoint"], "size": head["checkpoint"]["size"] - 1}}, *entries],
            "checkpoint_note_mismatch",
        ),
    }
    for name, (tampered, expected) in cases.items():
        path = _write(tmp_path / "tampered.jsonl", tampered)
        code, body = _verify(tmp_path, "--export", str(path), "--cert", str(cert), "--state", str(tmp_path / "s1.json"))
        assert (code, body["code"]) == (1, expected), (name, body)
        assert body["reason"] and body["result"] == "failed", name
        assert not (tmp_path / "s1.json").exists(), name  # a failed run keeps no state


def test_the_kept_state_catches_a_rewritten_log_and_a_rollback(
    live_url: str, context: Context, cert: Path, tmp_path: Path
) -> None:
    """The server holds the ledger key, so it can sign anything: a rewritten log of the same size, a
    longer one that rewrote history, or an older, smaller checkpoint all verify on their own (the
    first run of an auditor), and are caught only against the checkpoint the auditor kept."""
    _activity(context, 5)
    _covered(live_url, _events(context))
    lines = _lines(_export(tmp_path, live_url, "ledger.jsonl"))
    state = tmp_path / "state.json"
    code, body = _verify(tmp_path, "--export", str(_write(tmp_path / "a.jsonl", lines)), "--cert", str(cert),
                         "--state", str(state))  # fmt: skip
    assert code == 0, body
    kept = state.read_bytes()
    handle = context.ledger_key().handle
    entries = lines[1:]
    victim = len(entries) - 3
    rewritten = [lines[0], *entries[:victim], _with_entry(entries[victim], {**entries[victim]["entry"], "n": 99}),
                 *entries[victim + 1 :]]  # fmt: skip
    same_size = _resigned(rewritten, handle)
    longer = _resigned([*rewritten, {**entries[0], "index": len(entries)}], handle)
    smaller = _resigned(lines, handle, size=len(entries) - 2)
    for name, forged, expected in (
        ("same size", same_size, "fork"),
        ("longer, history rewritten", longer, "fork"),
        ("rolled back", smaller, "rollback"),
    ):
        path = _write(tmp_path / "forged.jsonl", forged)
        alone, body = _verify(tmp_path, "--export", str(path), "--cert", str(cert), "--state", str(tmp_path / "x.json"))
        assert alone == 0, (name, body)  # a first-time auditor cannot tell
        (tmp_path / "x.json").unlink()
        code, body = _verify(tmp_path, "--export", str(path), "--state", str(state))
        assert (code, body["code"]) == (1, expected), (name, body)
        assert state.read_bytes() == kept, name  # the state did not move

    # Review: the rewritten log under a new origin found no kept state, so with the auditor's usual
    # --cert it verified as a first run — an origin switch hid the fork. A key the state trusts for
    # one origin signing an origin the state does not know is refused, with or without --cert.
    switched = _resigned(rewritten, handle, origin=lines[0]["checkpoint"]["origin"] + "/v2")
    path = _write(tmp_path / "switched.jsonl", switched)
    for trust in (("--cert", str(cert)), ()):
        code, body = _verify(tmp_path, "--export", str(path), *trust, "--state", str(state))
        assert (code, body["code"]) == (1, "origin_mismatch"), (trust, body)
        assert state.read_bytes() == kept, trust


def test_a_prefix_and_a_middle_part_verify(live_url: str, context: Context, cert: Path, tmp_path: Path) -> None:
    _activity(context, 12)
    size = _covered(live_url, _events(context))["size"]
    state = tmp_path / "state.json"
    prefix = _export(tmp_path, live_url, "prefix.jsonl", "--end", str(size - 7))
    head = _lines(prefix)[0]
    assert head["end"] == size - 7 and head["checkpoint"]["size"] >= size and head["prefix_proof"]
    code, body = _verify(tmp_path, "--export", str(prefix), "--cert", str(cert), "--state", str(state),
                         "--entry", str(size - 8))  # fmt: skip
    assert code == 0, body
    assert "proven a prefix" in next(c["detail"] for c in body["checks"] if c["name"] == "root")
    middle = _export(tmp_path, live_url, "middle.jsonl", "--start", str(size - 10), "--end", str(size - 3))
    lines = _lines(middle)
    assert lines[0]["frontier"] and len(lines) == 1 + 7
    code, body = _verify(tmp_path, "--export", str(middle), "--state", str(state), "--entry", str(size - 4))
    assert code == 0, body
    # a frontier hash changed: the part no longer hangs together with the signed root
    bad = [{**lines[0], "frontier": ["00" * 32, *lines[0]["frontier"][1:]]}, *lines[1:]]
    code, body = _verify(tmp_path, "--export", str(_write(tmp_path / "bad.jsonl", bad)), "--state", str(state))
    assert (code, body["code"]) == (1, "root_mismatch")
    # an entry outside the exported part cannot be shown included
    code, body = _verify(tmp_path, "--export", str(middle), "--state", str(state), "--entry", "0")
    assert (code, body["code"]) == (1, "entry_out_of_range")


def test_local_export_from_the_home(live_url: str, context: Context, cert: Path, tmp_path: Path) -> None:
    """Without --url the export reads $TRUSTSEAL_HOME (here: the served context's database and keystore)."""
    import os

    env = {
        "TRUSTSEAL_HOME": str(context.settings.home),
        "TRUSTSEAL_DATABASE_URL": context.db.url,
        "TRUSTSEAL_KEY_PASSPHRASE": "test-passphrase",
        "TRUSTSEAL_PUBLIC_URL": context.settings.public_url,
    }
    keystore = getattr(context.custody, "inner", context.custody)  # behind ledger/key_events.py's wrapper
    assert isinstance(keystore, LocalKeystore)
    link = context.settings.home / "keystore"
    if not link.exists():
        os.symlink(keystore.root, link)  # the home's keystore is the served one
    out = tmp_path / "local.jsonl"
    result = runner.invoke(app, ["ledger", "export", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    code, body = _verify(tmp_path, "--export", str(out), "--cert", str(cert), "--state", str(tmp_path / "s.json"))
    assert code == 0, body
    assert _lines(out)[0]["checkpoint"]["size"] == _events(context)  # the local export covers every event
