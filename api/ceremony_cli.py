"""`trustseal ca ceremony …`: keeping a root offline (ca/ceremony.py, ca/ceremony_home.py).

Online side: `move-offline` (once, locally, on $TRUSTSEAL_HOME), `list`, `export ID -o FILE`,
`import OUTPUT`, `cancel ID` (locally or with --url / --token). Offline side: `sign REQUEST --ceremony-home DIR
-o OUTPUT`, which needs only the ceremony home and its passphrase (`TRUSTSEAL_CEREMONY_PASSPHRASE` or a
prompt), and `log --ceremony-home DIR` (what the home signed; no passphrase).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

ceremony_app = typer.Typer(
    help="the offline root: move it offline, sign and import its ceremonies", no_args_is_help=True
)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="TRUSTSEAL_URL", help="service URL (remote mode)")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="bearer token (remote mode)")]
HomeOpt = Annotated[Path, typer.Option("--ceremony-home", help="the ceremony home (a folder of its own, 0700)")]
PASSPHRASE_ENV = "TRUSTSEAL_CEREMONY_PASSPHRASE"  # noqa: S105  (the variable's name, not a secret)


def _passphrase(confirm: bool) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    answer: str = typer.prompt("ceremony home passphrase", hide_input=True, confirmation_prompt=confirm)
    return answer


def _read_json(path: Path) -> Any:
    from api.cli import fail

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{path}: not a JSON document ({exc})", 2)


@ceremony_app.command("move-offline")
def move_offline(
    ca: str,
    ceremony_home: HomeOpt,
    same_device_ok: Annotated[
        bool, typer.Option("--same-device-ok", help="allow a ceremony home on the online home's device")
    ] = False,
) -> None:
    """Move root CA's key into a ceremony home and out of online custody. Before it leaves, the root signs a
    CRL valid 30 days, re-certifies its OCSP signer and the trust-list signer is certified; afterwards whatever
    the root must sign is a ceremony request. The ceremony home must be on other media than $TRUSTSEAL_HOME
    (its parent folder must exist)."""
    from api import home
    from api.cli import fail, local
    from api.operations import cli_actor
    from ca.ceremony_home import CeremonyHome, check_location
    from ca.ceremony_home import move_offline as move
    from ca.errors import CAError
    from keys.custody import CustodyError

    context = local()
    try:
        check_location(ceremony_home, context.settings.home, same_device_ok=same_device_ok)
        online = context.settings.passphrase or home.key_passphrase(context.settings, False)
        with home.private_umask():
            vault = CeremonyHome.open(ceremony_home, _passphrase(confirm=True), create=True, online=online)
        raw = getattr(context.custody, "inner", context.custody)
        done = move(context.ca, raw, ca, vault, cli_actor(), context.verification.publisher)
    except (CAError, CustodyError) as exc:
        fail(f"{getattr(exc, 'code', 'error')}: {getattr(exc, 'detail', exc)}")
    finally:
        context.close()
    versions = ", ".join(f"v{v['version']} sha256 {v['spki_sha256'][:16]}…" for v in done["versions"])
    typer.echo(f"{done['ca']} is offline: key {done['key']} ({versions}) now only in {done['ceremony_home']}")
    if done["crl_number"] is not None:
        typer.echo(f"pre-signed root CRL number {done['crl_number']} (valid 30 days)")
    typer.echo("restart running services so no process keeps the key in memory")


@ceremony_app.command("init-root")
def init_root(
    name: str,
    ceremony_home: HomeOpt,
    out: Annotated[Path, typer.Option("-o", "--out", help="the bundle to carry online (`adopt-root`)")],
    algorithm: Annotated[str, typer.Option(help="sm2 | p256")] = "sm2",
    common_name: Annotated[str | None, typer.Option(help="the root's subject CN")] = None,
) -> None:
    """On the offline machine: generate a new root key inside the ceremony home (it exists nowhere else),
    self-sign its certificate and first CRL, and write the bundle `adopt-root` takes online."""
    from api.cli import fail
    from ca.ceremony_home import CeremonyHome
    from ca.ceremony_root import init_root as make
    from ca.errors import CAError
    from keys.custody import CustodyError, KeyAlgorithm
    from policies.profiles import default_profiles

    if algorithm not in ("sm2", "p256"):
        fail(f"unknown algorithm {algorithm!r} (sm2 | p256)", 2)
    try:
        vault = CeremonyHome.open(ceremony_home, _passphrase(confirm=True), create=True)
        bundle = make(vault, name, KeyAlgorithm(algorithm), common_name or f"{name} (offline root)", default_profiles())
    except (CAError, CustodyError) as exc:
        fail(f"{getattr(exc, 'code', 'error')}: {getattr(exc, 'detail', exc)}")
    out.write_text(json.dumps(bundle, indent=1) + "\n")
    typer.echo(f"root {name} made in {ceremony_home}: sha256 {bundle['fingerprint_sha256']} -> {out}")


@ceremony_app.command("adopt-root")
def adopt_root(
    bundle: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="what `init-root` wrote")],
) -> None:
    """Online, locally (break-glass): take an offline-made root as a new hierarchy root. It is offline from
    the start; its OCSP responder certificate is the first ceremony request."""
    from api.cli import fail, local
    from api.operations import cli_actor, record_local_break_glass
    from ca.ceremony_root import adopt_root as adopt
    from ca.errors import CAError
    from keys.custody import CustodyError

    document = _read_json(bundle)
    context = local()
    try:
        done = adopt(context.ca, document, cli_actor())
        # a new CA is the approved `ca.create` over the API: here, on the home itself, break-glass
        typer.echo("break-glass: ca.create (adopt-root) without approval, recorded as such", err=True)
        record_local_break_glass(
            context, "ca.create", str(done["ca"]), adopted="offline", fingerprint_sha256=done["fingerprint_sha256"]
        )
        context.verification.publisher.current()  # on the trust list at once
    except (CAError, CustodyError) as exc:
        fail(f"{getattr(exc, 'code', 'error')}: {getattr(exc, 'detail', exc)}")
    finally:
        context.close()
    typer.echo(f"{done['ca']} adopted (offline root, sha256 {done['fingerprint_sha256']})")
    for request_id in done["ocsp_requests"]:
        typer.echo(f"ceremony request {request_id} pending: its OCSP responder certificate")


@ceremony_app.command("list")
def list_requests(
    status: Annotated[str | None, typer.Option(help="pending | completed | superseded | cancelled")] = "pending",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Ceremony requests (pending ones by default)."""
    from api.cli import local, remote
    from ca import ceremony

    if url:
        params = {"status": status} if status else {}
        rows = remote(url, token, "GET", "/v1/ceremonies", params=params).json()["ceremonies"]
    else:
        context = local()
        try:
            rows = ceremony.list_requests(context.db, status)
        finally:
            context.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(
            f"{row['id']} {row['status']:10} {row['operation']:18} {row['subject']} ({row['ca']}, {row['created_at']})"
            f" tbs sha256 {row['tbs_sha256']}"
        )


@ceremony_app.command("export")
def export(
    request_id: str, out: Annotated[Path, typer.Option("-o", "--out")], url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """Write the request document (with the exact bytes to sign) to carry to the offline machine."""
    from api.cli import fail, local, remote
    from ca import ceremony
    from ca.errors import CAError

    if url:
        document = remote(url, token, "GET", f"/v1/ceremonies/{request_id}").json()
    else:
        context = local()
        try:
            document = ceremony.get_request(context.db, request_id, with_tbs=True)
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    out.write_text(json.dumps(document, indent=1) + "\n")
    typer.echo(f"ceremony request {request_id} ({document['operation']}) -> {out}")


@ceremony_app.command("sign")
def sign(
    request: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the exported request")],
    ceremony_home: HomeOpt,
    out: Annotated[Path, typer.Option("-o", "--out")],
    yes: Annotated[bool, typer.Option("--yes", help="sign without asking (after reading what is shown)")] = False,
) -> None:
    """On the offline machine: show what the request signs, then sign it with the ceremony home's key."""
    from api.cli import fail
    from ca.ceremony_home import CeremonyHome
    from ca.errors import CAError
    from keys.custody import CustodyError

    document = _read_json(request)
    try:
        vault = CeremonyHome.open(ceremony_home, _passphrase(confirm=False))
        for line in vault.describe(document):
            typer.echo(line)
        vault.check(document)  # refused before anyone is asked to confirm
        if not yes and not typer.confirm("sign this?", default=False):
            fail("not signed", 1)
        output = vault.sign(document)
    except (CAError, CustodyError) as exc:
        fail(f"{getattr(exc, 'code', 'error')}: {getattr(exc, 'detail', exc)}")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(output, indent=1) + "\n")
    typer.echo(f"signed {output['kind']} for request {output['request']} -> {out}")


@ceremony_app.command("cancel")
def cancel(
    request_id: str,
    reason: Annotated[str | None, typer.Option(help="why (recorded in ceremony.cancelled)")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Cancel a pending ceremony request: its output is refused from then on (a `ca.create` releases the name,
    a trust-list signer rotation disables its provisional key version)."""
    from api.cli import fail, local, remote
    from api.operations import cli_actor
    from ca import ceremony
    from ca.errors import CAError
    from keys.custody import CustodyError

    if url:
        body = {"reason": reason} if reason else None
        done = remote(url, token, "POST", f"/v1/ceremonies/{request_id}/cancel", json=body).json()["ceremony"]
    else:
        context = local()
        try:
            done = ceremony.cancel_request(context.db, context.custody, request_id, cli_actor(), reason)
        except (CAError, CustodyError) as exc:
            fail(f"{getattr(exc, 'code', 'error')}: {getattr(exc, 'detail', exc)}")
        finally:
            context.close()
    typer.echo(f"ceremony request {done['id']} cancelled: {done['operation']} {done['subject']}")


@ceremony_app.command("log")
def log(ceremony_home: HomeOpt, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the ceremony home signed (its append-only log, chain checked), to reconcile with the online
    `ceremony.completed` events. Needs no passphrase: the log holds no secret."""
    from api.cli import fail
    from ca import ceremony_log
    from ca.errors import CAError

    if not (ceremony_home / "ceremony.json").exists():
        fail(f"ceremony_home_invalid: {ceremony_home} is not a ceremony home", 1)
    try:
        records = ceremony_log.read(ceremony_home)
    except CAError as exc:
        fail(f"{exc.code}: {exc.detail}")
    if as_json:
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    for r in records:
        what = (
            f"CRL {r.get('crl_number')} entries {','.join(r.get('entries') or []) or '-'}"
            if r.get("kind") == "crl"
            else f"certificate {r.get('serial')} {r.get('subject')}"
        )
        typer.echo(f"{r.get('time')} {r.get('request') or '-':32} {r.get('operation'):18} {r.get('ca')} {what} "
                   f"tbs sha256 {r.get('tbs_sha256')}")  # fmt: skip


@ceremony_app.command("import")
def import_(
    output: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="what `sign` wrote")],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Check the ceremony's output against its request and complete the waiting operation."""
    from api.cli import fail, local, remote
    from api.operations import cli_actor
    from ca.ceremony_import import import_output
    from ca.errors import CAError

    document = _read_json(output)
    request_id = document.get("request") if isinstance(document, dict) else None
    if url:
        if not isinstance(request_id, str):
            fail("the output names no request", 2)
        done = remote(url, token, "POST", f"/v1/ceremonies/{request_id}/import", json=document).json()["ceremony"]
    else:
        context = local()
        try:
            done = import_output(context.ca, document, cli_actor(), publisher=context.verification.publisher)
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"ceremony request {done['id']} completed: {done['operation']} {json.dumps(done['result'])}")
