"""`$TRUSTSEAL_HOME` at rest: created private, refused by the service when others can reach it, and a
demo home (its passphrase beside its keys) never accepted where production is declared."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import home
from api.cli import app
from api.context import open_context
from api.home import HomeError
from api.settings import Settings, SettingsError
from keys.custody import KeyAlgorithm

runner = CliRunner()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The usual umask (022, which gave 0644 databases) and no configuration from outside."""
    for name in ("TRUSTSEAL_DATABASE_URL", "TRUSTSEAL_KEY_PASSPHRASE", "TRUSTSEAL_ENV", "TRUSTSEAL_KEYSTORE"):
        monkeypatch.delenv(name, raising=False)

    def no_server(*_: object, **__: object) -> None:
        raise AssertionError("serve went on to start the server")

    monkeypatch.setattr("uvicorn.run", no_server)
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _demo_home(path: Path) -> Settings:
    """What `trustseal init` does to the home before it makes the hierarchy (the slow part)."""
    settings = Settings.from_env(path)
    context = open_context(settings, create=True)
    context.custody.create("cn-root-sm2", KeyAlgorithm.SM2)
    context.close()
    assert context.db.checkpoint_thread is not None
    context.db.checkpoint_thread.join()  # its connection, the last to close, removes the WAL file
    return settings


def _serve(path: Path, **env: str) -> tuple[int, str]:
    result = runner.invoke(app, ["serve"], env={"TRUSTSEAL_HOME": str(path), **env})
    return result.exit_code, result.output


def test_a_new_home_is_the_owners_only(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "var")
    context = open_context(settings, create=True)
    try:
        context.custody.create("cn-root-sm2", KeyAlgorithm.SM2)
        db = settings.home / "trustseal.db"
        assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()  # open, in WAL mode
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert _mode(path) == 0o600, path
        assert _mode(settings.home) == 0o700 and _mode(settings.keystore_dir) == 0o700
        for path in settings.keystore_dir.iterdir():  # header, key file and lock file
            assert _mode(path) == 0o600, path
        for path in (settings.demo_passphrase_file, settings.demo_marker_file):
            assert _mode(path) == 0o600, path
        assert home.exposed(settings) == []
    finally:
        context.close()
    open_context(settings, serving=True).close()


@pytest.mark.parametrize(
    ("target", "mode", "fix"),
    [
        ("trustseal.db", 0o644, "chmod 600"),  # what older versions wrote
        ("trustseal.db-wal", 0o640, "chmod 600"),
        ("keystore/cn-root-sm2.key.json", 0o604, "chmod 600"),
        ("keystore", 0o755, "chmod 700"),
        (".", 0o750, "chmod 700"),
        ("demo-passphrase.txt", 0o620, "chmod 600"),
    ],
)
def test_the_service_refuses_a_home_others_can_reach(tmp_path: Path, target: str, mode: int, fix: str) -> None:
    settings = _demo_home(tmp_path / "var")
    path = (settings.home / target).resolve()
    path.touch(exist_ok=True)  # the WAL file exists only while the database is open
    path.chmod(mode)
    with pytest.raises(HomeError, match="refusing to start") as refused:
        open_context(settings, serving=True)
    assert f"{fix} {path}" in str(refused.value) and f"mode {mode:04o}" in str(refused.value)
    code, out = _serve(settings.home)
    assert code == 1 and "refusing to start" in out and str(path) in out
    assert _mode(path) == mode  # serve never changes permissions itself
    home.tighten(settings)  # what `trustseal init` does on an old home
    assert _mode(path) == (0o700 if path.is_dir() else 0o600)
    open_context(settings, serving=True).close()


def test_init_tightens_an_old_home_and_marks_it(tmp_path: Path) -> None:
    """A home from an older version: 0644 database, demo passphrase file but no demo marker."""
    settings = _demo_home(tmp_path / "var")
    (settings.home / "trustseal.db").chmod(0o644)
    settings.demo_marker_file.unlink()
    code, out = _serve(settings.home)
    assert code == 1 and "refusing to start" in out
    (settings.home / "trustseal.db").chmod(0o600)
    with pytest.raises(HomeError, match="not marked as a demo home"):
        open_context(settings, serving=True)
    (settings.home / "trustseal.db").chmod(0o644)
    passphrase = settings.demo_passphrase_file.read_text()
    for path, _ in home.tighten(settings):
        assert path == settings.home / "trustseal.db"
    open_context(settings, create=True).close()  # `trustseal init --if-needed` opens the home so
    assert settings.demo_marker_file.exists() and settings.demo_passphrase_file.read_text() == passphrase
    context = open_context(settings, serving=True)
    assert context.custody.get("cn-root-sm2").version == 1
    context.close()


def test_production_refuses_a_demo_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _demo_home(tmp_path / "var")
    passphrase = settings.demo_passphrase_file.read_text().strip()
    production = Settings.from_env(settings.home)
    for env in ({}, {"TRUSTSEAL_KEY_PASSPHRASE": passphrase}, {"TRUSTSEAL_KEYSTORE": "vault"}):
        code, out = _serve(settings.home, TRUSTSEAL_ENV="production", **env)
        assert code == 1 and "is a demo home" in out and "production never runs on one" in out, env
        result = runner.invoke(app, ["ca", "list"], env={"TRUSTSEAL_HOME": str(settings.home),
                                                         "TRUSTSEAL_ENV": "production", **env})  # fmt: skip
        assert result.exit_code == 1 and "is a demo home" in result.output, env
    # the marker alone, or the passphrase file alone, is enough
    settings.demo_passphrase_file.rename(tmp_path / "elsewhere.txt")
    with pytest.raises(HomeError, match="is a demo home"):
        open_context(Settings(**{**vars(production), "production": True, "passphrase": passphrase}))
    # a copy outside production still serves, in demo mode, and says it is a copy
    (tmp_path / "elsewhere.txt").rename(settings.demo_passphrase_file)
    copy = tmp_path / "copy"
    shutil.copytree(settings.home, copy)
    capsys.readouterr()
    open_context(Settings.from_env(copy), serving=True).close()
    warning = capsys.readouterr().err
    assert "DEMO MODE" in warning and f"it was initialised at {settings.home}" in warning


def test_production_with_its_own_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTSEAL_ENV", "production")
    path = tmp_path / "prod"
    with pytest.raises(HomeError, match="needs TRUSTSEAL_KEY_PASSPHRASE"):
        open_context(Settings.from_env(path), create=True)  # no demo passphrase in production
    assert not (path / "demo-passphrase.txt").exists() and not (path / "demo-home.json").exists()
    monkeypatch.setenv("TRUSTSEAL_KEY_PASSPHRASE", "production passphrase from the vault of the operator")
    settings = Settings.from_env(path)
    assert settings.production
    context = open_context(settings, create=True)
    context.custody.create("cn-root-sm2", KeyAlgorithm.SM2)
    context.close()
    context = open_context(settings, serving=True)
    assert home.demo_warning(settings) is None and context.custody.signer("cn-root-sm2").sign(b"x")
    context.close()
    monkeypatch.setenv("TRUSTSEAL_KEY_PASSPHRASE", "")
    with pytest.raises(HomeError, match="needs TRUSTSEAL_KEY_PASSPHRASE"):
        open_context(Settings.from_env(path))
    code, out = _serve(path, TRUSTSEAL_ENV="production", TRUSTSEAL_KEY_PASSPHRASE="")
    assert code == 1 and "needs TRUSTSEAL_KEY_PASSPHRASE" in out, out  # before the server starts


def test_an_unknown_environment_is_not_taken_for_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRUSTSEAL_ENV", "prod")
    with pytest.raises(SettingsError, match="TRUSTSEAL_ENV"):
        Settings.from_env(tmp_path)
    code, out = _serve(tmp_path, TRUSTSEAL_ENV="prod")
    assert code == 1 and "TRUSTSEAL_ENV='prod'" in out
