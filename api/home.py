"""`$TRUSTSEAL_HOME` at rest: private permissions, demo homes, and production's refusal of them.

The home holds the database (tokens' digests, personal data of licences), the keystore and, in a
demo home, the passphrase that unlocks every private key in it: whoever can read a demo home, or a
copy of it, signs as its root. So everything is created for the owner only (umask 077, 0700 / 0600),
`trustseal serve` refuses a home group or others can reach, and the demo passphrase file is read
only on a home `trustseal init` marked as a demo home, never where production is declared
(`TRUSTSEAL_ENV=production`), whatever the passphrase.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from api.settings import Settings
from keys.custody import CustodyError
from store.db import sqlite_files

PRIVATE_UMASK = 0o077


class HomeError(Exception):
    """The home may not be used as it is; the message names the path and the fix."""


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created meanwhile are the owner's only (0600 / 0700)."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


def private_paths(settings: Settings) -> list[Path]:
    """What must be the owner's only: the home, the SQLite files, the keystore and the demo files."""
    keystore = settings.keystore_dir
    paths = [settings.home, *sqlite_files(settings.database_url), keystore]
    if keystore.is_dir():
        paths += sorted(keystore.iterdir())
    paths += [settings.demo_passphrase_file, settings.demo_marker_file, settings.demo_tokens_file]
    paths.append(settings.home / "jobs")
    return paths


def exposed(settings: Settings) -> list[tuple[Path, int]]:
    """The private paths group or others have any access to, with their modes."""
    found = []
    for path in private_paths(settings):
        mode = _mode(path)
        if mode is not None and mode & 0o077:
            found.append((path, mode))
    return found


def refuse_exposed(settings: Settings) -> None:
    bad = exposed(settings)
    if not bad:
        return
    folders = [str(p) for p, _ in bad if p.is_dir()]
    files = [str(p) for p, _ in bad if not p.is_dir()]
    fix = "; ".join(f"chmod {m} {' '.join(ps)}" for m, ps in (("700", folders), ("600", files)) if ps)
    listing = "\n".join(f"  {p} (mode {m:04o})" for p, m in bad)
    raise HomeError(
        f"refusing to start: group or others can reach private state of {settings.home}:\n{listing}\n"
        f"fix: {fix}\n(or `trustseal init --if-needed`, which tightens what it made)"
    )


def tighten(settings: Settings) -> list[tuple[Path, int]]:
    """`trustseal init` takes back what it made (homes from versions that wrote 0644 databases)."""
    fixed = exposed(settings)
    for path, _ in fixed:
        path.chmod(0o700 if path.is_dir() else 0o600)
    return fixed


def is_demo_home(settings: Settings) -> bool:
    return settings.demo_marker_file.exists() or settings.demo_passphrase_file.exists()


def refuse_demo_in_production(settings: Settings) -> None:
    if settings.production and is_demo_home(settings):
        raise HomeError(
            f"TRUSTSEAL_ENV=production, but {settings.home} is a demo home (its key passphrase is "
            f"{settings.demo_passphrase_file}, beside the keys it protects): production never runs on one. "
            "Initialise a new home with TRUSTSEAL_KEY_PASSPHRASE set (or TRUSTSEAL_KEYSTORE=vault)."
        )


PRODUCTION_NEEDS_ITS_OWN_KEY = (
    "TRUSTSEAL_ENV=production needs TRUSTSEAL_KEY_PASSPHRASE (or TRUSTSEAL_KEYSTORE=vault); "
    "a demo passphrase is never generated or read in production"
)


def refuse_unfit_for_production(settings: Settings) -> None:
    """What `serve` checks before it starts: no demo home, and a passphrase of production's own."""
    refuse_demo_in_production(settings)
    if settings.production and settings.keystore == "local" and not settings.passphrase:
        raise HomeError(PRODUCTION_NEEDS_ITS_OWN_KEY)


def key_passphrase(settings: Settings, create: bool) -> str:
    """The local keystore's passphrase: the environment's, or on a demo home outside production the
    demo file (generated, with the demo marker, when `create`: by `trustseal init`)."""
    refuse_demo_in_production(settings)
    if settings.passphrase:
        return settings.passphrase
    if settings.production:
        raise HomeError(PRODUCTION_NEEDS_ITS_OWN_KEY)
    path, marker = settings.demo_passphrase_file, settings.demo_marker_file
    if path.exists():
        if not marker.exists():
            if not create:
                raise HomeError(
                    f"{path} exists but {settings.home} is not marked as a demo home ({marker} is missing); "
                    "a home made by an older version is marked by `trustseal init --if-needed`"
                )
            _mark_demo(settings)
        return path.read_text().strip()
    if not create:
        raise CustodyError(
            f"no key passphrase: set TRUSTSEAL_KEY_PASSPHRASE or run `trustseal init` (demo passphrase file {path})"
        )
    passphrase = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(passphrase + "\n")
    _mark_demo(settings)
    print(
        f"WARNING: generated a DEMO key-encryption passphrase in {path}. It protects every private key in "
        "this keystore, and anyone with a copy of this home signs as its root CAs; production must supply "
        "TRUSTSEAL_KEY_PASSPHRASE or use the vault keystore, and declares TRUSTSEAL_ENV=production.",
        file=sys.stderr,
    )
    return passphrase


def _mark_demo(settings: Settings) -> None:
    marker = {"demo": True, "home": str(settings.home), "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    fd = os.open(settings.demo_marker_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(marker, fh)
        fh.write("\n")


def demo_warning(settings: Settings) -> str | None:
    """The loud line a service on a demo home prints at start (None on any other home)."""
    if not settings.demo_marker_file.exists():
        return None
    text = (
        f"WARNING: DEMO MODE. {settings.home} is a demo home: its key passphrase lies in "
        f"{settings.demo_passphrase_file}, so anyone with a copy of this folder signs as its root CAs. "
        "Never use it for real documents; production sets TRUSTSEAL_ENV=production on a home initialised "
        "with TRUSTSEAL_KEY_PASSPHRASE or the vault keystore."
    )
    try:
        made_at = json.loads(settings.demo_marker_file.read_text()).get("home")
    except (OSError, ValueError, AttributeError):
        made_at = None
    if made_at and made_at != str(settings.home):
        text += f" This home is a copy: it was initialised at {made_at}."
    return text
