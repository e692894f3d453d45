"""`trustseal` command line: mirrors the HTTP API over the same service layer.

Commands work on `$TRUSTSEAL_HOME` by default, or against a running service with `--url` / `--token`
(env TRUSTSEAL_URL, TRUSTSEAL_TOKEN).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from api import home
from api.auth import ROLES, TokenError, create_token, get_token, list_tokens, revoke_token, rotate_token
from api.context import Context, open_context
from api.home import HomeError
from api.settings import Settings, SettingsError
from keys.custody import CustodyError

app = typer.Typer(help="trustseal: SM2 CA, electronic seals, verification and ledger", no_args_is_help=True)
ca_app = typer.Typer(help="certificate authority", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
app.add_typer(ca_app, name="ca")
app.add_typer(token_app, name="token")
seal_app = typer.Typer(help="electronic seals", no_args_is_help=True)
app.add_typer(seal_app, name="seal")

# -- ledger (api/ledger_cli.py): `trustseal ledger verify` / `export`, the auditor's side of issue 11 --
from api.ledger_cli import ledger_app  # noqa: E402

app.add_typer(ledger_app, name="ledger")
# -- end ledger --

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="TRUSTSEAL_URL", help="service URL (remote mode)")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="bearer token (remote mode)")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def local() -> Context:
    try:
        return open_context()
    except (HomeError, SettingsError, CustodyError) as exc:  # e.g. a wrong PIN or a missing PKCS#11 token
        fail(str(exc))
        raise  # unreachable: fail() exits


def remote(url: str, token: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=30, **kwargs)
    if response.status_code >= 400:
        try:
            problem = response.json()
            fail(f"{problem.get('code')}: {problem.get('detail')}")
        except ValueError:
            fail(f"HTTP {response.status_code}")
    return response


@app.command()
def init(
    if_needed: Annotated[
        bool, typer.Option("--if-needed", help="on an initialised home only add what is missing (no new tokens)")
    ] = False,
) -> None:
    """Create the database, keystore, demo CA hierarchy and one demo token per role. On an initialised
    home it adds whatever part of the hierarchy a newer version brings (e.g. the national issuing CAs)
    and never makes tokens again. Everything it writes is the owner's only (umask 077); it takes back
    what older versions left readable (0644 databases) and marks a home it made a demo passphrase for."""
    _say_oid_arc()

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
        return
    already = settings.demo_tokens_file.exists()
    if already and if_needed:
        typer.echo(f"trustseal home {settings.home} is initialised; demo tokens in {settings.demo_tokens_file}")
    with home.private_umask():
        _init(settings, already)


def _init(settings: Settings, already: bool) -> None:
    from ca.hierarchy import create_demo_hierarchy
    from seal.demo import create_demo_seals, demo_seal_ids

    for path, mode in home.tighten(settings):
        typer.echo(f"tightened {path} (was {mode:04o}: group or others could reach it)", err=True)
    try:
        context = open_context(settings, create=True)
    except (HomeError, CustodyError) as exc:
        fail(str(exc))
        return
    try:
        created = create_demo_hierarchy(context.ca)
        for name in created:
            typer.echo(f"created CA {name}")
        for seal_id in create_demo_seals(context.seals):
            typer.echo(f"created seal {seal_id}")
        listed = context.verification.publisher.current()  # lists the new CAs and seal makers at once
        typer.echo(f"trust list sequence {listed['sequence']}")
        signer = context.ledger_key.provision()  # ledger.sm2 and its certificate, made once
        typer.echo(f"ledger key {signer.handle.version.ref} key_id {signer.key_id}")
        _install_approvals_policy(context)
        if not already:
            forever = home.is_demo_home(settings)  # demo tokens of a demo home never expire (README)
            tokens = {
                role: create_token(
                    context.db,
                    role,
                    f"demo-{role}",
                    demo_seal_ids() if role == "issuer" else None,
                    actor="init",
                    never_expires=forever,
                )
                for role in ROLES
            }
            fd_path = settings.demo_tokens_file
            with os.fdopen(os.open(fd_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
                fh.write(json.dumps(tokens, indent=2) + "\n")
            typer.echo("demo tokens (also in " + str(fd_path) + "):")
            for role, token in tokens.items():
                typer.echo(f"  {role:9} {token}")
        _reconcile_keys(context)
    except CustodyError as exc:  # e.g. SM2 on a PKCS#11 token without vendor SM2 mechanisms
        fail(f"{exc.code}: {exc}")
    finally:
        context.close()


def _install_approvals_policy(context: Context) -> None:
    """The shipped default (every dangerous operation needs 2: the requester and one other officer) into
    a home that has no policy yet, then recorded in the ledger as the policy in force."""
    from api.approvals import POLICY_FILE, Approvals
    from policies.approvals import default_policy_text, load_policy

    path = context.settings.home / POLICY_FILE
    if not path.exists():
        path.write_text(default_policy_text(), encoding="utf-8")
        typer.echo(f"approvals policy (2 officers for every dangerous operation) -> {path}")
    context.approvals = Approvals(context.db, load_policy(path))
    context.approvals.record_policy(actor="init")


def _pending(body: dict[str, Any]) -> bool:
    """Print a 202's pending approval or ceremony request; True when the operation waits for either."""
    request = body.get("ceremony") if isinstance(body, dict) else None
    if isinstance(request, dict) and request.get("status") == "pending":
        done = body.get("result")
        if isinstance(done, dict) and done.get("status") == "withdrawn":
            typer.echo(f"withdrew {done['ca']} from {done['withdrawn_at']} (on the trust list now)")
        typer.echo(
            f"ceremony request {request['id']} pending: {request['operation']} {request['subject']} needs the "
            f"offline CA {request['ca']} (`trustseal ca ceremony export {request['id']}`, then `sign` offline)"
        )
        return True
    approval = body.get("approval") if isinstance(body, dict) else None
    if approval is None or body.get("result") is not None:
        return False
    typer.echo(
        f"approval {approval['id']} {approval['status']}: {approval['operation']} needs {approval['required']} "
        f"officers, has {', '.join(approval['approvals'])}; expires {approval['expires_at']}"
    )
    return True


def _break_glass(context: Context, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run a dangerous operation directly on $TRUSTSEAL_HOME: no approval, recorded as break-glass."""
    from api.operations import break_glass

    typer.echo(f"break-glass: {operation} without approval, recorded as such", err=True)
    return break_glass(context, operation, params)


def _dangerous(
    url: str | None,
    token: str | None,
    path: str,
    body: dict[str, Any] | None,
    operation: str,
    params: dict[str, Any],
) -> dict[str, Any] | None:
    """One operation that approvals guard: over the API (None while it waits: the pending approval is
    printed) or, locally, break-glass; a refusal ends the command with its code."""
    if url:
        answer: dict[str, Any] = remote(url, token, "POST", path, json=body).json()
        return None if _pending(answer) else answer
    from api.problems import Problem
    from ca.errors import CAError
    from seal.errors import SealError

    context = local()
    try:
        result = _break_glass(context, operation, params)
        return None if _pending(result) else result
    except (CAError, SealError, Problem) as exc:
        fail(f"{exc.code}: {exc.detail}")
    finally:
        context.close()


def _reconcile_keys(context: Context) -> None:
    """Key versions custody holds but the log does not name get `key.discovered` (ledger/key_events.py)."""
    found = context.reconcile_keys()
    if found:
        typer.echo(f"recorded {len(found)} key event(s) the log was missing", err=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the API. Refuses a home group or others can reach, and a demo home where
    TRUSTSEAL_ENV=production; on a demo home it serves in demo mode with a loud warning."""
    import uvicorn

    _say_oid_arc()
    try:
        settings = Settings.from_env()
        home.refuse_exposed(settings)
        home.refuse_unfit_for_production(settings)
    except (HomeError, SettingsError) as exc:
        fail(str(exc))
    os.umask(home.PRIVATE_UMASK)  # for the life of the service (jobs, anything it writes in the home)
    uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", proxy_headers=False)


def _say_oid_arc() -> None:
    """DESIGN.md: the demo uses RFC 5612's documentation arc for our OIDs, and says so at start."""
    from gm import oids

    if oids.IS_DEMO_ARC:
        typer.echo(
            f"note: our OIDs (seal attribute, policies, seal-maker and trust-list-signer EKUs) use the RFC 5612 "
            f"documentation arc {oids.DEMO_ARC}; production sets TRUSTSEAL_OID_ARC=1.3.6.1.4.1.<its PEN>",
            err=True,
        )


ExpiresOpt = Annotated[
    int | None,
    typer.Option("--expires-days", help="lifetime in days (default 90 for issuer/verifier, 30 for people)"),
]


def cli_actor() -> str:
    from api.operations import cli_actor as actor

    return actor()


def _token_failed(exc: TokenError) -> None:
    fail(f"{exc.code}: {exc.detail}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="issuer | verifier | officer | auditor | admin")],
    name: Annotated[str, typer.Option(help="who the token is for (unique among live tokens)")],
    seal: Annotated[list[str] | None, typer.Option("--seal", help="seal id an issuer may use (repeat)")] = None,
    expires_days: ExpiresOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a token and print it (it is not shown again). Locally an officer or admin token is a
    break-glass operation (recorded as such); with --url (admin token) it waits for approval if the
    service's policy says so, and the token printed works once approved."""
    if role not in ROLES:
        fail(f"unknown role {role}; use one of {', '.join(ROLES)}", 2)
    if url:
        body: dict[str, Any] = {"role": role, "name": name, "seal_ids": seal or []}
        if expires_days is not None:
            body["expires_days"] = expires_days
        answer = remote(url, token, "POST", "/v1/tokens", json=body).json()
        _pending(answer)
        typer.echo(answer["token"])
        return
    context = local()
    try:
        if role in ("officer", "admin"):
            from api.auth import new_token

            secret, secret_hash = new_token()
            params: dict[str, Any] = {"role": role, "name": name, "seal_ids": list(seal or [])}
            params |= {"token_sha256": secret_hash}
            if expires_days is not None:
                params["expires_days"] = expires_days
            _break_glass(context, f"token.create.{role}", params)
            typer.echo(secret)
        else:
            typer.echo(create_token(context.db, role, name, list(seal or []), actor=cli_actor(), days=expires_days))
    except TokenError as exc:
        _token_failed(exc)
    finally:
        context.close()


def _token_row(row: dict[str, Any]) -> str:
    seals = ",".join(row["seal_ids"]) or "-"
    return (
        f"{row['id']:>5}  {row['name']:24} {row['role']:9} {row['status']:8} "
        f"created {row['created_at'][:16]}  expires {(row['expires_at'] or 'never')[:16]}  "
        f"last used {(row['last_used_at'] or 'never')[:16]}  seals {seals}"
    )


@token_app.command("list")
def token_list(
    status: Annotated[str | None, typer.Option(help="only active | expired | revoked tokens")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON as the API answers it")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every token: id, name, role, status, created, expires, last used, seals (never a secret or hash)."""
    if url:
        rows = remote(url, token, "GET", "/v1/tokens", params={"status": status} if status else None).json()
    else:
        context = local()
        try:
            rows = [t.as_json() for t in list_tokens(context.db, status)]
        except TokenError as exc:
            _token_failed(exc)
            return
        finally:
            context.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(_token_row(row))


RefArg = Annotated[str, typer.Argument(help="the token's id, or the name of a live token")]


@token_app.command("revoke")
def token_revoke(ref: RefArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Disable a token at once (other processes within seconds); recorded as `token.revoked`."""
    if url:
        row = remote(url, token, "POST", f"/v1/tokens/{ref}/revoke").json()
    else:
        context = local()
        try:
            row = revoke_token(context.db, ref, actor=cli_actor()).as_json()
        except TokenError as exc:
            _token_failed(exc)
            return
        finally:
            context.close()
    typer.echo(f"revoked token {row['id']} ({row['name']}, {row['role']})")


@token_app.command("rotate")
def token_rotate(ref: RefArg, expires_days: ExpiresOpt = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Print a new secret for a token (same name, role and seals; fresh expiry) and revoke the old one, in
    one transaction. Remotely: an admin rotates issuer, verifier and auditor tokens, a holder its own
    (`me`); locally any token (recorded with the operator as actor)."""
    if url:
        body = {"expires_days": expires_days} if expires_days is not None else None
        answer = remote(url, token, "POST", f"/v1/tokens/{ref}/rotate", json=body).json()
        secret, new_id, old_id = answer["token"], answer["id"], answer["rotated_from"]
    else:
        context = local()
        try:
            old = get_token(context.db, ref)
            old_id = old.id
            secret, fresh = rotate_token(context.db, old_id, actor=cli_actor(), days=expires_days)
            new_id = fresh.id
            if old.role in ("officer", "admin"):
                from api.operations import record_rotation_break_glass

                record_rotation_break_glass(context, old.role, old_id, new_id)
        except TokenError as exc:
            _token_failed(exc)
            return
        finally:
            context.close()
    typer.echo(f"token {old_id} revoked; its successor is token {new_id}:", err=True)
    typer.echo(secret)


@ca_app.command("list")
def ca_list(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List CAs."""
    if url:
        rows = remote(url, token, "GET", "/v1/cas").json()
    else:
        context = local()
        try:
            rows = [
                {
                    "name": c.name,
                    "parent": c.parent,
                    "algorithm": c.algorithm,
                    "region_code": c.region_code,
                    "serial": c.certificate_serial,
                }
                for c in context.ca.list_cas()
            ]
        finally:
            context.close()
    for row in rows:
        typer.echo(
            f"{row['name']:18} {row['algorithm']:5} parent={row['parent'] or '-':14} "
            f"region={row['region_code'] or '-':6} serial={row['serial']}"
        )


@ca_app.command("issue")
def ca_issue(
    csr: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="PKCS#10 request (PEM or DER)")],
    profile: Annotated[str, typer.Option()],
    ca: Annotated[str, typer.Option()],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write certificate + chain PEM here")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Issue a certificate from a CSR under a profile."""
    from api.routes.certificates import to_pem
    from ca.errors import CAError

    data = csr.read_bytes()
    if url:
        body = remote(
            url,
            token,
            "POST",
            "/v1/certificates",
            json={"csr_pem": data.decode("ascii", "replace"), "profile": profile, "ca": ca},
        ).json()
        serial, pem_text = body["serial"], body["certificate_pem"] + body["chain_pem"]
    else:
        context = local()
        try:
            issued = context.ca.issue(data, profile, ca, actor="cli")
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
            return
        finally:
            context.close()
        serial, pem_text = issued.serial, to_pem(issued.der) + "".join(to_pem(c) for c in issued.chain)
    if out:
        out.write_text(pem_text)
        typer.echo(f"issued {serial} -> {out}")
    else:
        sys.stdout.write(pem_text)
        typer.echo(f"serial {serial}", err=True)


@ca_app.command("revoke")
def ca_revoke(
    serial: str,
    reason: str = "unspecified",
    invalidity_date: Annotated[
        str | None,
        typer.Option("--invalidity-date", help="ISO time from which the key is known or suspected compromised"),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Revoke a certificate; the issuing CA's CRL is regenerated at once (with the invalidity date, if given)."""
    from datetime import datetime

    from ca.errors import CAError

    moment = None
    if invalidity_date is not None:
        try:
            moment = datetime.fromisoformat(invalidity_date)
        except ValueError:
            fail("--invalidity-date takes an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00+08:00", 2)
    if url:
        body = {"reason": reason, "invalidity_date": moment.isoformat() if moment else None}
        remote(url, token, "POST", f"/v1/certificates/{serial}/revoke", json=body)
    else:
        context = local()
        try:
            context.ca.revoke(serial, reason, actor="cli", invalidity_date=moment)
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"revoked {serial} ({reason})")


@ca_app.command("withdraw")
def ca_withdraw(
    name: str,
    reason: Annotated[str, typer.Option(help="revocation reason for the CA's certificate, e.g. caCompromise")],
    invalidity_date: Annotated[
        str | None, typer.Option("--invalidity-date", help="ISO time from which the CA is not to be trusted")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Withdraw a CA: withdrawn on the trust list at once, its certificate revoked by its parent. Locally a
    break-glass operation (no approval, recorded as such); with --url it may wait for approval."""
    from datetime import datetime

    moment = None
    if invalidity_date is not None:
        try:
            moment = datetime.fromisoformat(invalidity_date)
        except ValueError:
            fail("--invalidity-date takes an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00+08:00", 2)
    body = {"reason": reason, "invalidity_date": moment.isoformat() if moment else None}
    result = _dangerous(url, token, f"/v1/cas/{name}/withdraw", body, "ca.withdraw", {"ca": name, **body})
    if result is None:
        return
    revoked = f", certificate {result['revoked_serial']} revoked" if result["revoked_serial"] else ""
    typer.echo(f"withdrew {result['ca']} from {result['withdrawn_at']}{revoked}")
    if result.get("trust_list_published") is False:
        typer.echo("warning: the trust list is not yet republished; the service's scheduler publishes it", err=True)


@ca_app.command("create")
def ca_create(
    name: str,
    parent: Annotated[str, typer.Option(help="the parent CA, e.g. cn-root-sm2")],
    region: Annotated[str, typer.Option(help="6-digit region code (100000: a national issuing CA)")],
    algorithm: Annotated[str, typer.Option(help="sm2 | p256 (the parent's)")] = "sm2",
    region_name: Annotated[str | None, typer.Option("--region-name")] = None,
    common_name: Annotated[str | None, typer.Option("--common-name")] = None,
    permit_dns: Annotated[
        list[str] | None,
        typer.Option("--permit-dns", help="a DNS domain the CA is constrained to (repeatable), e.g. sd.gov.cn"),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a CA under a parent, on the trust list at once (locally break-glass; with --url it may wait
    for approval). With --permit-dns, a critical name constraint: it issues and is trusted for names under
    those domains only, and for no IP address."""

    if algorithm not in ("sm2", "p256"):
        fail("algorithm is sm2 or p256", 2)
    body = {"name": name, "parent": parent, "region": region, "algorithm": algorithm, "region_name": region_name,
            "organization": "trustseal", "common_name": common_name or f"{name} CA",
            "permitted_dns": list(permit_dns or [])}  # fmt: skip
    result = _dangerous(url, token, "/v1/cas", body, "ca.create", body)
    if result is None:
        return
    constrained = f" permitted_dns={','.join(result['permitted_dns'])}" if result.get("permitted_dns") else ""
    typer.echo(f"created CA {result['name']} under {result['parent']} serial={result['serial']}{constrained}")


@ca_app.command("cross-certify")
def ca_cross_certify(
    ca: str,
    certificate: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="the other hierarchy's root (PEM)")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write the cross-certificate (PEM) here")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Cross-certify another hierarchy's root under CA `ca` (locally break-glass; with --url it may wait
    for approval)."""

    body = {"ca": ca, "certificate_pem": certificate.read_text(encoding="ascii", errors="replace")}
    path = f"/v1/cas/{ca}/cross-certify"
    answer = _dangerous(url, token, path, {"certificate_pem": body["certificate_pem"]}, "ca.cross_certify", body)
    if answer is None:
        return
    if out:
        out.write_text(answer["certificate_pem"])
    typer.echo(f"cross-certified under {ca}: serial {answer['serial']}")


@ca_app.command("crl")
def ca_crl(
    name: str,
    out: Annotated[Path, typer.Option("-o", "--out")],
    url: UrlOpt = None,
    scope: Annotated[str, typer.Option("--scope", help="a CA key's CRL after a rollover (k<version>)")] = "",
) -> None:
    """Write a CA's current CRL (DER): its first key's, or with --scope another key's."""
    if url:
        out.write_bytes(remote(url, None, "GET", f"/v1/cas/{name}/crl" + (f"/{scope}" if scope else "")).content)
    else:
        from ca.errors import CAError

        context = local()
        try:
            out.write_bytes(context.ca.current_crl(name, scope))
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"CRL of {name} -> {out}")


@ca_app.command("certificate")
def ca_certificate(name: str, out: Annotated[Path | None, typer.Option("-o", "--out")] = None) -> None:
    """Print or write a CA certificate (PEM)."""
    from api.routes.certificates import to_pem
    from ca.errors import CAError

    context = local()
    try:
        text = to_pem(context.ca.ca_certificate(name).dump())
    except CAError as exc:
        fail(f"{exc.code}: {exc.detail}")
        return
    finally:
        context.close()
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)


def _seal_line(row: dict[str, Any]) -> str:
    return (
        f"{row['id']:22} {row['status']:9} {row['algorithm']:5} {row['ca']:15} "
        f"{row['organisation_uscc']} {row['name']} (valid to {row['valid_end'][:10]})"
    )


def _seal_dict(context: Context, seal_id: str) -> dict[str, Any]:
    from api.routes.seals import _info

    return _info(context.seals.get(seal_id), context).model_dump()


@seal_app.command("list")
def seal_list(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List seals."""
    if url:
        rows = remote(url, token, "GET", "/v1/seals").json()
    else:
        context = local()
        try:
            rows = [_seal_dict(context, s.id) for s in context.seals.list()]
        finally:
            context.close()
    for row in rows:
        typer.echo(_seal_line(row))


@seal_app.command("create")
def seal_create(
    name: Annotated[str, typer.Option(help="text on the seal, e.g. the organisation's name")],
    uscc: Annotated[str, typer.Option(help="the organisation's 18-character unified social credit code")],
    ca: Annotated[str, typer.Option(help="issuing CA, e.g. cn-370000-sm2")],
    organisation: Annotated[str | None, typer.Option(help="organisation name (default: --name)")] = None,
    seal_id: Annotated[str | None, typer.Option("--id", help="seal id (default: generated)")] = None,
    seal_type: Annotated[str, typer.Option("--type")] = "official",
    purpose: str = "",
    shape: str = "round",
    code: str = "",
    valid_days: int = 1095,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="token name that may apply it")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Make a seal: holder key and certificate, SESeal signed by the CA's seal maker (locally a
    break-glass operation, recorded as such; with --url it may wait for approval)."""

    body = {
        "id": seal_id,
        "name": name,
        "organisation_name": organisation or name,
        "organisation_uscc": uscc,
        "ca": ca,
        "seal_type": seal_type,
        "purpose": purpose,
        "shape": shape,
        "code": code,
        "valid_days": valid_days,
        "allowed_callers": list(allow or []),
    }
    row = _dangerous(url, token, "/v1/seals", body, "seal.create", body)
    if row is None:
        return
    typer.echo(_seal_line(row))


def _seal_transition(seal_id: str, target: str, reason: str | None, url: str | None, token: str | None) -> None:
    from seal.errors import SealError

    verb = {"suspended": "suspend", "active": "resume", "revoked": "revoke"}[target]
    if url:
        if _pending(remote(url, token, "POST", f"/v1/seals/{seal_id}/{verb}", json={"reason": reason}).json()):
            return
    else:
        context = local()
        try:
            if target == "revoked":  # an approved operation: break-glass here (suspending is one officer's call)
                _break_glass(context, "seal.revoke", {"seal_id": seal_id, "reason": reason})
            else:
                context.seals.transition(seal_id, target, reason, actor="cli")
        except SealError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"seal {seal_id}: {target}")


@seal_app.command("suspend")
def seal_suspend(seal_id: str, reason: str | None = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    _seal_transition(seal_id, "suspended", reason, url, token)


@seal_app.command("resume")
def seal_resume(seal_id: str, reason: str | None = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    _seal_transition(seal_id, "active", reason, url, token)


@seal_app.command("revoke")
def seal_revoke(seal_id: str, reason: str | None = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Revoke a seal for good; its holder certificate is revoked, so CRL and OCSP tell every verifier."""
    _seal_transition(seal_id, "revoked", reason, url, token)


@seal_app.command("image")
def seal_image(seal_id: str, out: Annotated[Path, typer.Option("-o", "--out")], url: UrlOpt = None) -> None:
    """Write a seal's picture (PNG)."""
    from seal.errors import SealError

    if url:
        out.write_bytes(remote(url, None, "GET", f"/v1/seals/{seal_id}/image").content)
    else:
        context = local()
        try:
            out.write_bytes(context.seals.get(seal_id).picture_png)
        except SealError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"picture of {seal_id} -> {out}")


@app.command("sign")
def sign_command(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="PDF file(s) to seal")],
    seal: Annotated[str, typer.Option("--seal", help="seal id")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output file, or a directory for several inputs")],
    page: Annotated[int | None, typer.Option(help="1-based page (default: last)")] = None,
    x_mm: float | None = None,
    y_mm: float | None = None,
    size_mm: float = 42.0,
    keyword: str | None = None,
    level: Annotated[
        str, typer.Option(help="B-T (timestamped, the default), B-B or B-LT (with validation data)")
    ] = "B-T",
    allow_active_content: Annotated[
        bool, typer.Option("--allow-active-content", help="seal a PDF with JavaScript, launch actions, attachments …")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Seal PDF(s). Locally the CLI acts as an issuer allowed every seal; remotely as the token's owner."""
    from seal.errors import SealError
    from signing.errors import SigningError
    from signing.pdf import Placement
    from signing.service import Caller

    if level not in ("B-B", "B-T", "B-LT"):
        fail("level is B-B, B-T or B-LT", 2)
    if len(files) > 1:
        out.mkdir(parents=True, exist_ok=True)
    targets = [out / f.name if len(files) > 1 else out for f in files]
    placement = Placement(page=page, x_mm=x_mm, y_mm=y_mm, size_mm=size_mm, keyword=keyword)
    context = None if url else local()
    failures = 0
    try:
        with typer.progressbar(list(zip(files, targets, strict=True)), label="sealing", file=sys.stderr) as items:
            for source, target in items:
                try:
                    if url:
                        form = {"seal_id": seal, "size_mm": str(size_mm), "level": level}
                        if allow_active_content:
                            form["allow_active_content"] = "true"
                        for key, value in (("page", page), ("x_mm", x_mm), ("y_mm", y_mm), ("keyword", keyword)):
                            if value is not None:
                                form[key] = str(value)
                        with source.open("rb") as fh:
                            response = remote(
                                url,
                                token,
                                "POST",
                                "/v1/sign",
                                data=form,
                                files={"file": (source.name, fh, "application/pdf")},
                            )
                        target.write_bytes(response.content)
                    else:
                        assert context is not None
                        sealed = context.signing.seal_pdf(
                            source.read_bytes(),
                            seal_id=seal,
                            caller=Caller(role="issuer", name="cli", seal_ids=("*",)),
                            placement=placement,
                            level=level,
                            allow_active_content=allow_active_content,
                        )
                        target.write_bytes(sealed.pdf)
                except (SealError, SigningError) as exc:
                    failures += 1
                    typer.echo(f"\n{source}: {exc.code}: {exc.detail}", err=True)
    finally:
        if context is not None:
            context.close()
    done = len(files) - failures
    typer.echo(f"sealed {done} of {len(files)} -> {out}")
    if failures:
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="PDF, OFD, .esl, SES_Signature or CMS")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="also write the readable HTML report here")] = None,
    trust_list: Annotated[
        list[Path] | None, typer.Option("--trust-list", help="a signed trust list (JSON); repeatable")
    ] = None,
    root: Annotated[
        list[Path] | None, typer.Option("--root", help="national root that certifies trust-list signers (PEM)")
    ] = None,
    pin: Annotated[list[str] | None, typer.Option("--pin", help="SHA-256 of a trusted trust-list signer")] = None,
    anchor: Annotated[list[Path] | None, typer.Option("--anchor", help="an extra trust anchor (PEM/DER)")] = None,
    maker: Annotated[
        list[Path] | None, typer.Option("--maker", help="a trusted seal maker certificate (PEM/DER); repeatable")
    ] = None,
    min_sequence: Annotated[
        int, typer.Option("--min-sequence", min=0, help="refuse trust lists with a lower sequence (anti-rollback)")
    ] = 0,
    at: Annotated[str | None, typer.Option("--at", help="validate as of this ISO time")] = None,
    content: Annotated[Path | None, typer.Option("--content", help="the signed content of a detached CMS")] = None,
    fetch: Annotated[bool, typer.Option("--fetch/--no-fetch", help="fetch CRLs / OCSP from URLs")] = False,
    fetch_timeout: Annotated[
        float, typer.Option("--fetch-timeout", min=0.1, max=120, help="seconds per fetch before giving up")
    ] = 5.0,
) -> None:
    """Verify a sealed document offline. Exit 0 PASSED, 1 FAILED, 3 INDETERMINATE, 2 usage, 4 could not run.

    Trust: lists given with --trust-list (checked against --root / --pin), else the local home's own
    trust list; plus any --anchor (signer CAs) and --maker (seal makers). A home remembers the highest
    list sequence it accepted from each publisher and refuses lower ones, as --min-sequence does."""
    from datetime import datetime

    from api import trust_state
    from verify.html import render
    from verify.report import EXIT_CODES
    from verify.service import Verifier
    from verify.sources import Sources
    from verify.trust import TrustListError, TrustStore, fingerprint, load_certificates, publisher

    if not file.exists():
        fail(f"no such file: {file}", 2)
    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            fail("--at takes an ISO 8601 time, e.g. 2026-01-01T00:00:00+08:00", 2)
            return
        if moment.tzinfo is None:
            fail("--at needs a time zone", 2)
    trust = TrustStore()
    sources = Sources(fetch=fetch, fetch_timeout=fetch_timeout)
    try:
        roots = [c for path in root or [] for c in load_certificates(path.read_bytes())]
        for path in anchor or []:
            for cert in load_certificates(path.read_bytes()):
                trust.add_anchor(cert)
        for path in maker or []:
            for cert in load_certificates(path.read_bytes()):
                trust.add_maker(cert)
        home = Settings.from_env().home
        if trust_list:
            for path in trust_list:
                data = path.read_bytes()
                who = publisher(data)
                seen = trust_state.highest(home, who) if home.is_dir() else 0
                pins = tuple(pin or ())
                pins += trust_state.followed(home, pins) if home.is_dir() else ()  # earlier signer handovers
                trust.add_list(data, roots=roots, pinned=pins, min_sequence=max(min_sequence, seen))
                if home.is_dir():
                    trust_state.remember(home, who, trust.lists[-1]["sequence"])
                    if trust.lists[-1].get("handover_from"):
                        signer = fingerprint(trust.lists[-1]["signer"])
                        trust_state.remember_handover(home, trust.lists[-1]["handover_from"], signer)
            _warn_if_stale(trust)
        elif Settings.from_env().demo_tokens_file.exists():  # an initialised local home: its own list
            from api.verification import ServiceVerification

            context = local()
            try:
                verification = ServiceVerification(context)
                own = verification.verifier().trust
                sequence = own.lists[-1]["sequence"]
                if sequence < min_sequence:
                    raise TrustListError("TRUST_LIST_ROLLBACK", f"the home's list has sequence {sequence}")
                trust.cas.extend(own.cas)
                trust.cross.extend(own.cross)
                trust.links.extend(own.links)
                trust.makers.extend(own.makers)
                trust.lists.extend(own.lists)
                sources = verification.sources() if not fetch else Sources(fetch=True, fetch_timeout=fetch_timeout)
                report = Verifier(trust, sources).verify(
                    file.read_bytes(), content=content.read_bytes() if content else None, at=moment
                )
            finally:
                context.close()
            _emit(report, as_json, html, file, render)
            raise typer.Exit(EXIT_CODES[report.result])
        elif not trust.anchors:
            fail("no trust: give --trust-list (with --root or --pin), --anchor, or run in an initialised home", 2)
    except TrustListError as exc:
        fail(f"{exc.code}: {exc.detail}", 4)
    except (OSError, ValueError) as exc:
        fail(f"could not load trust material: {exc}", 4)
    report = Verifier(trust, sources).verify(
        file.read_bytes(), content=content.read_bytes() if content else None, at=moment
    )
    _emit(report, as_json, html, file, render)
    raise typer.Exit(EXIT_CODES[report.result])


def _warn_if_stale(trust: Any) -> None:
    if trust.stale_since is not None:
        typer.echo(
            f"warning: a trust list expired at {trust.stale_since.isoformat()}: decisions resting on it are "
            "INDETERMINATE (TRY_LATER); fetch a fresh list",
            err=True,
        )


def _emit(report: Any, as_json: bool, html: Path | None, file: Path, render: Any) -> None:
    if html is not None:
        html.write_text(render(report, file.name), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{report.result}  {file.name}  ({report.format})")
    if getattr(report, "code", None):
        typer.echo(f"  {report.code}: {report.detail}")
    for index, signature in enumerate(report.signatures, 1):
        seal = (signature.seal or {}).get("name", "-")
        signer = signature.signer.get("common_name") or "-"
        typer.echo(f"  #{index} {signature.result}  seal {seal}  signer {signer}  at {signature.signing_time}")
        for check in signature.checks:
            if check.status != "PASSED":
                typer.echo(f"     {check.name}: {check.status} {check.code} {check.detail[:160]}")


@app.command("events")
def events_command(
    type_: Annotated[
        str | None, typer.Option("--type", help="event type, or a prefix ending with a dot (certificate.)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="exact actor (officer:alice, cli, …)")] = None,
    subject: Annotated[str | None, typer.Option(help="exact subject (a serial, a seal id, …)")] = None,
    since: Annotated[str | None, typer.Option(help="from this ISO 8601 time with a zone (inclusive)")] = None,
    until: Annotated[str | None, typer.Option(help="before this ISO 8601 time with a zone (exclusive)")] = None,
    limit: Annotated[str | None, typer.Option(help="events per page, 1 to 1000 (default 100)")] = None,
    cursor: Annotated[str | None, typer.Option(help="the next_cursor of a previous page")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the page as the API answers it")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Search the event log, newest first, as GET /v1/events does (officer / auditor / admin token with
    --url). Without --url it reads $TRUSTSEAL_HOME directly (break-glass read; it writes nothing)."""
    from ledger import search

    given = {"type": type_, "actor": actor, "subject": subject, "since": since, "until": until}
    params = {name: value for name, value in {**given, "limit": limit, "cursor": cursor}.items() if value is not None}
    if url:
        page = remote(url, token, "GET", "/v1/events", params=params).json()
    else:
        context = local()
        try:
            page = search.search(context.db, search.parse_query({k: [v] for k, v in params.items()}))
        except search.SearchError as exc:
            fail(f"{exc.code}: {exc}")
            return
        finally:
            context.close()
    if as_json:
        typer.echo(json.dumps(page, ensure_ascii=False, indent=2))
        return
    for event in page["events"]:
        index = "-" if event["ledger_index"] is None else str(event["ledger_index"])
        typer.echo(
            f"{index:>8} {event['time']} {event['type']:24} actor={event['actor'] or '-'} "
            f"subject={event['subject'] or '-'} id={event['id']}"
        )
    if page["next_cursor"] is not None:
        typer.echo(f"more: --cursor {page['next_cursor']}", err=True)


approvals_app = typer.Typer(help="four-eyes approvals of dangerous operations", no_args_is_help=True)
app.add_typer(approvals_app, name="approvals")


def _approval_line(row: dict[str, Any]) -> str:
    return (
        f"{row['id']:24} {row['status']:9} {row['operation']:22} subject={row.get('subject') or '-'} "
        f"{len(row['approvals'])}/{row['required']} ({', '.join(row['approvals'])}) expires {row['expires_at']}"
    )


@approvals_app.command("list")
def approvals_list(
    status: Annotated[str | None, typer.Option(help="pending, executed, rejected, expired, failed …")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List approvals, newest first (officer / auditor / admin token with --url; locally a read)."""
    if url:
        rows = remote(url, token, "GET", "/v1/approvals", params={"status": status} if status else {}).json()
        rows = rows["approvals"]
    else:
        from policies.approvals import PolicyError

        context = local()
        try:
            rows = context.approvals.find(status)
        except PolicyError as exc:
            fail(str(exc))
            return
        finally:
            context.close()
    for row in rows:
        typer.echo(_approval_line(row))


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str,
    url: Annotated[str, typer.Option("--url", envvar="TRUSTSEAL_URL", help="service URL")],
    token: Annotated[str, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="an officer's token")],
) -> None:
    """Approve as the token's officer (an approval needs a person: there is no local form); the approval
    that completes it runs the operation and prints its result."""
    body = remote(url, token, "POST", f"/v1/approvals/{approval_id}/approve").json()
    typer.echo(_approval_line(body["approval"]))
    if "result" in body:
        typer.echo(json.dumps(body["result"], ensure_ascii=False, indent=2))


@approvals_app.command("reject")
def approvals_reject(
    approval_id: str,
    url: Annotated[str, typer.Option("--url", envvar="TRUSTSEAL_URL", help="service URL")],
    token: Annotated[str, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="an officer's token")],
    reason: str | None = None,
) -> None:
    """Reject (or, as its requester, withdraw) a pending approval; final."""
    body = remote(url, token, "POST", f"/v1/approvals/{approval_id}/reject", json={"reason": reason}).json()
    typer.echo(_approval_line(body["approval"]))


keys_app = typer.Typer(help="custody keys: inventory and rotation", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _key_line(row: dict[str, Any]) -> str:
    versions = ",".join(f"{v['version']}{'' if v['enabled'] else '(disabled)'}" for v in row["versions"])
    cert = row.get("certificate")
    expiry = f"cert v{cert['version']} until {cert['not_after'][:10]} ({cert['days_left']}d)" if cert else "no cert"
    newest = row["versions"][-1] if row["versions"] else None
    age = f"{newest['age_days']}d" if newest else "-"
    flag = "  EXPIRING" if row["expiring"] else ""
    if row.get("pending_version"):
        flag += f"  PENDING v{row['pending_version']} (waits for its ceremony)"
    return f"{row['key']:34} {row['algorithm'] or '-':8} v{versions:10} age={age:6} {expiry:40} {row['used_by']}{flag}"


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="print the inventory as JSON")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every custody key: versions, algorithm, age, certificate expiry (EXPIRING within 30 days), what
    uses it (officer / auditor / admin token with --url; locally a read)."""
    if url:
        rows = remote(url, token, "GET", "/v1/keys").json()
    else:
        from api.keys import inventory

        context = local()
        try:
            rows = inventory(context)
        finally:
            context.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        typer.echo(_key_line(row))


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="the custody name `keys list` shows, e.g. tsa.sm2")],
    reason: Annotated[
        str | None,
        typer.Option(help="seal keys only: revoke the old holder certificate for this reason, e.g. keyCompromise"),
    ] = None,
    invalidity_date: Annotated[
        str | None,
        typer.Option("--invalidity-date", help="with --reason: ISO time from which the old key is not trusted"),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Rotate a seal, seal-maker, TSA, trust-list or ledger key: a new version, certified, in use at once;
    what it signed before keeps verifying. A seal key re-keyed with --reason (a compromised key) has its
    old holder certificate revoked with the re-key, so CRL and OCSP cut it off. With --url a ledger or
    trust-list rotation may wait for approval; locally those are break-glass (no approval, recorded as such)."""
    from datetime import datetime

    from api.keys import kind, needs_approval, rotate
    from api.operations import cli_actor
    from api.problems import Problem
    from ca.errors import CAError
    from keys.custody import CustodyError
    from seal.errors import SealError

    params: dict[str, Any] = {"key": key}
    if reason is not None:
        params["reason"] = reason
    if invalidity_date is not None:
        try:
            params["invalidity_date"] = datetime.fromisoformat(invalidity_date).isoformat()
        except ValueError:
            fail("--invalidity-date takes an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00+08:00", 2)
    if url:
        body = {k: v for k, v in params.items() if k != "key"}
        result = remote(url, token, "POST", f"/v1/keys/{key}/rotate", json=body or None).json()
        if _pending(result):
            return
    else:
        context = local()
        try:
            if needs_approval(kind(context, key), params):
                result = _break_glass(context, "key.rotate", params)
            else:
                result = rotate(context, params, cli_actor())
            if _pending(result):
                return
        except (Problem, CustodyError, SealError, CAError) as exc:
            fail(f"{exc.code}: {getattr(exc, 'detail', exc)}")
            return
        finally:
            context.close()
    typer.echo(f"rotated {result['key']}: version {result['previous_version']} -> {result['version']}")
    if result.get("revoked_serial"):
        typer.echo(f"revoked the old holder certificate {result['revoked_serial']} ({reason})")


# -- the offline root (api/ceremony_cli.py): `trustseal ca ceremony …` --
from api.ceremony_cli import ceremony_app  # noqa: E402

ca_app.add_typer(ceremony_app, name="ceremony")


def main() -> None:
    app()
