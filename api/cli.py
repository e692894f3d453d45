"""`trustseal` command line: mirrors the HTTP API over the same service layer.

Commands work on `$TRUSTSEAL_HOME` by default, or against a running service with `--url` / `--token`
(env TRUSTSEAL_URL, TRUSTSEAL_TOKEN).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from api.auth import ROLES, create_token
from api.context import Context, open_context
from api.settings import Settings

app = typer.Typer(help="trustseal: SM2 CA, electronic seals, verification and ledger", no_args_is_help=True)
ca_app = typer.Typer(help="certificate authority", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
app.add_typer(ca_app, name="ca")
app.add_typer(token_app, name="token")

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="TRUSTSEAL_URL", help="service URL (remote mode)")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="bearer token (remote mode)")]


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def local() -> Context:
    return open_context()


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
    if_needed: Annotated[bool, typer.Option("--if-needed", help="do nothing if already initialised")] = False,
) -> None:
    """Create the database, keystore, demo CA hierarchy and one demo token per role."""
    from ca.hierarchy import create_demo_hierarchy

    settings = Settings.from_env()
    already = settings.demo_tokens_file.exists()
    if already and if_needed:
        typer.echo(f"trustseal home {settings.home} is initialised; demo tokens in {settings.demo_tokens_file}")
        return
    context = open_context(settings, create=True)
    try:
        created = create_demo_hierarchy(context.ca)
        for name in created:
            typer.echo(f"created CA {name}")
        if not already:
            tokens = {role: create_token(context.db, role, f"demo-{role}") for role in ROLES}
            fd_path = settings.demo_tokens_file
            fd_path.write_text(json.dumps(tokens, indent=2) + "\n")
            fd_path.chmod(0o600)
            typer.echo("demo tokens (also in " + str(fd_path) + "):")
            for role, token in tokens.items():
                typer.echo(f"  {role:9} {token}")
    finally:
        context.close()


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the API."""
    import uvicorn

    uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", proxy_headers=False)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="issuer | verifier | officer | auditor | admin")],
    name: Annotated[str, typer.Option(help="who the token is for")],
    seal: Annotated[list[str] | None, typer.Option("--seal", help="seal id an issuer may use (repeat)")] = None,
) -> None:
    """Create a token and print it (it is not shown again)."""
    if role not in ROLES:
        fail(f"unknown role {role}; use one of {', '.join(ROLES)}", 2)
    context = local()
    try:
        typer.echo(create_token(context.db, role, name, list(seal or [])))
    finally:
        context.close()


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
def ca_revoke(serial: str, reason: str = "unspecified", url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Revoke a certificate; the issuing CA's CRL is regenerated at once."""
    from ca.errors import CAError

    if url:
        remote(url, token, "POST", f"/v1/certificates/{serial}/revoke", json={"reason": reason})
    else:
        context = local()
        try:
            context.ca.revoke(serial, reason, actor="cli")
        except CAError as exc:
            fail(f"{exc.code}: {exc.detail}")
        finally:
            context.close()
    typer.echo(f"revoked {serial} ({reason})")


@ca_app.command("crl")
def ca_crl(name: str, out: Annotated[Path, typer.Option("-o", "--out")], url: UrlOpt = None) -> None:
    """Write a CA's current CRL (DER)."""
    if url:
        out.write_bytes(remote(url, None, "GET", f"/v1/cas/{name}/crl").content)
    else:
        from ca.errors import CAError

        context = local()
        try:
            out.write_bytes(context.ca.current_crl(name))
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


def main() -> None:
    app()
