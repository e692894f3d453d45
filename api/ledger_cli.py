"""`trustseal ledger verify` and `trustseal ledger export`: the auditor's side of the ledger (issue 11).

`verify` holds no private key and writes nothing but its state file: the checks are ledger/audit.py's,
over the live API (`--url`, public reads, no token) or an export file (`--export`). `export` writes
the file ledger/export.py describes, from a running service or from the local home.
Exit codes: 0 verified, 1 failed, 2 usage, 4 could not run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ledger import audit_state, export
from ledger.audit import (
    PAGE,
    AuditFailure,
    AuditResult,
    LogSource,
    SourceUnavailable,
    audit,
    check_pin,
    key_of_certificate,
)
from ledger.errors import CheckpointError
from ledger.merkle import subtree_nodes, tree_hasher

ledger_app = typer.Typer(help="the tamper-evident ledger: verify it as an auditor, export it", no_args_is_help=True)

STATE_FILE = "ledger-state.json"
EXIT_VERIFIED, EXIT_FAILED, EXIT_USAGE, EXIT_COULD_NOT_RUN = 0, 1, 2, 4


def default_state_path() -> Path:
    """`$TRUSTSEAL_HOME/ledger-state.json` when TRUSTSEAL_HOME is set, else `./ledger-state.json`."""
    home = os.environ.get("TRUSTSEAL_HOME")
    return (Path(home) if home else Path.cwd()) / STATE_FILE


class HttpSource:
    """A `LogSource` over the public /v1/ledger/* reads of a running service."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._checkpoint: object | None = None

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"{self.client.base_url}{path}: {exc}") from None
        if response.status_code >= 500:
            raise SourceUnavailable(f"{path}: HTTP {response.status_code}")
        return response

    def _json(self, path: str, **params: Any) -> Any:
        response = self._get(path, **params)
        if response.status_code != 200:
            raise AuditFailure("source_refused", f"{path} {params}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise AuditFailure("source_refused", f"{path}: the answer is not JSON") from None

    def checkpoint(self) -> object:
        """The service's checkpoint, fetched once: one run checks one checkpoint."""
        if self._checkpoint is None:
            self._checkpoint = self._json("/v1/ledger/checkpoint")
        return self._checkpoint

    def certificate(self, key_id: str) -> bytes | None:
        response = self._get("/v1/ledger/key", key_id=key_id)
        return response.content if response.status_code == 200 else None

    def current_certificate(self) -> bytes:
        response = self._get("/v1/ledger/key")
        if response.status_code != 200:
            raise AuditFailure("source_refused", f"/v1/ledger/key: HTTP {response.status_code}")
        return response.content

    def span(self, size: int) -> tuple[int, int]:
        return 0, size

    def frontier(self) -> list[bytes]:
        return []

    def entries(self, start: int, end: int) -> Iterator[Mapping[str, Any]]:
        for first in range(start, end, PAGE):
            page = self._json("/v1/ledger/entries", start=first, end=min(end, first + PAGE))
            items = page.get("entries") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise AuditFailure("entries_malformed", f"entries page at {first} has no list of entries")
            yield from items

    def _path(self, path: str, **params: Any) -> list[bytes]:
        body = self._json(path, **params)
        try:
            return [bytes.fromhex(value) for value in body["path"]]
        except (KeyError, TypeError, ValueError):
            raise AuditFailure("source_refused", f"{path}: no hex path in the answer") from None

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        if first == 0 or first == second:
            return []
        return self._path("/v1/ledger/proofs/consistency", first=first, second=second)

    def inclusion_proof(self, index: int, size: int) -> list[bytes] | None:
        return self._path("/v1/ledger/proofs/inclusion", index=index, size=size)


def _emit(result: AuditResult, as_json: bool, state_path: Path, advanced: bool) -> None:
    if as_json:
        body = result.to_json()
        body["state"] = {"path": str(state_path), "advanced": advanced}
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    checkpoint = result.checkpoint
    head = "VERIFIED" if result.ok else f"FAILED {result.code}"
    where = f"{result.origin} size {checkpoint.size}" if checkpoint is not None else "(no checkpoint)"
    typer.echo(f"{head}  {where}")
    for check in result.checks:
        typer.echo(f"  {check.name}: {check.status}  {check.detail}")
    if result.ok:
        typer.echo(f"  state: {state_path} {'advanced' if advanced else 'unchanged'}")


@ledger_app.command("verify")
def verify_command(
    url: Annotated[str | None, typer.Option("--url", envvar="TRUSTSEAL_URL", help="a running service")] = None,
    export_file: Annotated[
        Path | None, typer.Option("--export", help="an export file (trustseal ledger export)")
    ] = None,
    cert: Annotated[
        list[Path] | None, typer.Option("--cert", help="a trusted ledger certificate (PEM/DER); repeatable")
    ] = None,
    pin: Annotated[
        list[str] | None, typer.Option("--pin", help="a trusted ledger key_id (hex SM3 of its SPKI); repeatable")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", help="kept checkpoints (default $TRUSTSEAL_HOME/ledger-state.json, else ./ledger-state.json)"
        ),
    ] = None,
    entry: Annotated[list[int] | None, typer.Option("--entry", help="check this entry's inclusion; repeatable")] = None,
    document: Annotated[
        Path | None, typer.Option("--document", help="check the inclusion of this document's document.sealed entries")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Verify the ledger as an auditor: checkpoint signature by a trusted key, consistency with the kept
    checkpoint, root recomputed from every entry, inclusion of --entry / --document. Exit 0 verified,
    1 failed, 2 usage, 4 could not run. The state advances only after a run that verified everything."""
    if (url is None) == (export_file is None):
        _usage("give exactly one of --url or --export")
    state_path = state or default_state_path()
    trusted: dict[str, bytes | None] = {}
    try:
        for path in cert or []:
            key_id, spki = key_of_certificate(path.read_bytes())
            trusted[key_id] = spki
        for value in pin or []:
            trusted.setdefault(check_pin(value), None)
        try:
            logs = audit_state.load(state_path)
        except audit_state.StateError as exc:  # never overwritten: the auditor must look at it
            typer.echo(f"error: could not run: {exc}", err=True)
            raise typer.Exit(EXIT_COULD_NOT_RUN) from None
        wanted = tuple(entry or ())
        if any(index < 0 for index in wanted):
            raise ValueError("--entry takes a non-negative index")
        data = document.read_bytes() if document is not None else None
    except (OSError, ValueError) as exc:  # CheckpointError and StateError are ValueErrors
        _usage(str(exc))
        return
    source: LogSource
    http: HttpSource | None = None
    try:
        if export_file is not None:
            if not export_file.is_file():
                _usage(f"no such export file: {export_file}")
            source = export.ExportSource(export_file)
        else:
            assert url is not None
            http = source = HttpSource(url)
        origin = _origin_of(source)
        kept = logs.get(origin) if origin is not None else None
        if not trusted and not logs:
            _usage(
                "no trust: give --cert (the ledger certificate) or --pin (its key_id), or a --state that has this log"
            )
        result = audit(source, trusted=trusted, state=kept, entries_wanted=wanted, document=data, kept=logs)
    except AuditFailure as failure:  # the export could not even be opened
        result = AuditResult(code=failure.code, reason=str(failure))
    except SourceUnavailable as exc:
        typer.echo(f"error: could not run: {exc}", err=True)
        raise typer.Exit(EXIT_COULD_NOT_RUN) from None
    finally:
        if http is not None:
            http.close()
    advanced = False
    if result.ok and result.state is not None:
        logs[result.state.origin] = result.state
        audit_state.save(state_path, logs)
        advanced = True
    _emit(result, as_json, state_path, advanced)
    if not result.ok and not as_json:
        typer.echo(f"error: {result.code}: {result.reason}", err=True)
    raise typer.Exit(EXIT_VERIFIED if result.ok else EXIT_FAILED)


def _origin_of(source: LogSource) -> str | None:
    document = source.checkpoint()
    origin = document.get("origin") if isinstance(document, dict) else None
    return origin if isinstance(origin, str) else None


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


@ledger_app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="the export file (JSON lines)")],
    start: Annotated[int, typer.Option("--start", min=0, help="first entry (inclusive)")] = 0,
    end: Annotated[
        int | None, typer.Option("--end", min=0, help="last entry (exclusive; default the checkpoint's size)")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", envvar="TRUSTSEAL_URL", help="a running service")] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="TRUSTSEAL_TOKEN", help="bearer token (optional)")
    ] = None,
) -> None:
    """Export entries [start, end) with the signed checkpoint that covers them (and its cosignatures),
    the ledger certificates of its signers and what a verifier needs for a part of the log. From the
    service with --url (the reads are public), else from $TRUSTSEAL_HOME."""
    try:
        if url:
            head, entries = _remote_export(url, token, start, end)
        else:
            head, entries = _local_export(start, end)
        tmp = out.with_name(f".{out.name}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                count = export.write(fh, head, entries)
            os.replace(tmp, out)  # a complete file or none
        finally:
            tmp.unlink(missing_ok=True)
    except SourceUnavailable as exc:
        typer.echo(f"error: could not run: {exc}", err=True)
        raise typer.Exit(EXIT_COULD_NOT_RUN) from None
    except (AuditFailure, CheckpointError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    size = head["checkpoint"]["size"]
    typer.echo(f"exported entries [{head['start']}, {head['end']}) of {size} ({count}) -> {out}")


def _range(start: int, end: int | None, size: int) -> int:
    end = size if end is None else end
    if not start <= end <= size:
        _usage(f"--start {start} / --end {end} must satisfy start ≤ end ≤ {size} (the checkpoint's size)")
    return end


def _remote_export(
    url: str, token: str | None, start: int, end: int | None
) -> tuple[dict[str, Any], Iterator[Mapping[str, Any]]]:
    source = HttpSource(url, token)
    checkpoint = source.checkpoint()
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("size"), int):
        raise AuditFailure("checkpoint_malformed", "the service's checkpoint has no size")
    size = checkpoint["size"]
    end = _range(start, end, size)
    hasher = tree_hasher(str(checkpoint.get("hash", "sm3")))
    frontier = []
    if start:  # the API serves no node hashes: the frontier from the leaves of [0, start)
        from ledger.merkle import MerkleTree
        from ledger.node_store import MemoryNodeStore

        tree = MerkleTree(MemoryNodeStore(), hasher)
        for item in source.entries(0, start):
            tree.append_leaves([_leaf(item)])
        frontier = tree.store.read(subtree_nodes(0, start))
    prefix = source.consistency_proof(end, size) or []
    certificates = [_certificate_text(source.certificate(key_id), key_id) for key_id in _signers(checkpoint)]
    head = export.header(
        checkpoint, start=start, end=end, frontier=frontier, prefix_proof=prefix, certificates=certificates
    )

    def entries() -> Iterator[Mapping[str, Any]]:
        try:
            yield from source.entries(start, end)
        finally:
            source.close()

    return head, entries()


def _local_export(start: int, end: int | None) -> tuple[dict[str, Any], Iterator[Mapping[str, Any]]]:
    from api.context import open_context
    from ledger.merkle import MerkleTree
    from ledger.sql_node_store import SqlNodeStore

    context = open_context()
    try:
        checkpoint = context.ledger.checkpoint()  # break-glass, like `trustseal events`: covers every event
        size = checkpoint.size
        end = _range(start, end, size)
        with context.db.engine.connect() as connection:
            tree = MerkleTree(SqlNodeStore(connection), context.ledger.hasher)
            frontier = tree.store.read(subtree_nodes(0, start)) if start else []
        prefix = context.ledger.consistency_proof(end, size) if 0 < end < size else []
        certificates = [
            _certificate_text(context.ledger_key.certificate_for(entry.key_id), entry.key_id)
            for entry in checkpoint.signatures
        ]
        head = export.header(
            checkpoint.to_json(),
            start=start,
            end=end,
            frontier=frontier,
            prefix_proof=prefix,
            certificates=certificates,
        )
        pages = [context.ledger.entries(first, min(end, first + PAGE)) for first in range(start, end, PAGE)]
    finally:
        context.close()
    return head, (item for page in pages for item in page)


def _leaf(item: Mapping[str, Any]) -> bytes:
    import base64

    return base64.b64decode(str(item["leaf_input"]), validate=True)


def _signers(checkpoint: Mapping[str, Any]) -> list[str]:
    signatures = checkpoint.get("signatures")
    if not isinstance(signatures, list):
        raise AuditFailure("checkpoint_malformed", "the checkpoint has no signatures list")
    return [str(entry.get("key_id")) for entry in signatures if isinstance(entry, dict)]


def _certificate_text(data: bytes | None, key_id: str) -> str:
    if data is None:
        raise AuditFailure("key_unavailable", f"no certificate for the ledger key {key_id}")
    from asn1crypto import pem

    if pem.detect(data):
        return data.decode("ascii")
    return pem.armor("CERTIFICATE", data).decode("ascii")
