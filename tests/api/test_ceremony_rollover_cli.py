"""`trustseal keys rotate` of a regional CA under the offline SM2 root on a demo home (break-glass): the
ceremony request is printed, the root itself is refused with `ca_offline_rollover`, and export → sign (only
the ceremony home) → import completes the rollover; sealing and `trustseal verify` keep working."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()
CEREMONY_PASSPHRASE = "a ceremony passphrase of its own"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    result = runner.invoke(app, ["init"], env={"TRUSTSEAL_HOME": str(path)})
    assert result.exit_code == 0, result.output
    return path


def _run(home: Path, *args: str) -> tuple[int, str]:
    env = {"TRUSTSEAL_HOME": str(home), "TRUSTSEAL_CEREMONY_PASSPHRASE": CEREMONY_PASSPHRASE}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_a_rollover_under_the_offline_root_through_the_cli(home: Path, tmp_path: Path) -> None:
    from tests.fixtures import make_pdf

    vault = tmp_path / "ceremony-home"
    code, out = _run(
        home, "ca", "ceremony", "move-offline", "cn-root-sm2", "--ceremony-home", str(vault), "--same-device-ok"
    )
    assert code == 0, out

    code, out = _run(home, "keys", "rotate", "cn-root-sm2")
    assert code == 1 and "ca_offline_rollover" in out, out
    code, out = _run(home, "keys", "rotate", "cn-370000-sm2")
    assert code == 0, out
    found = re.search(r"ceremony request ([0-9a-f]{32}) pending: ca.rollover cn-370000-sm2", out)
    assert found is not None, out
    code, out = _run(home, "keys", "rotate", "cn-370000-sm2")
    assert code == 1 and "ceremony_pending" in out, out
    code, out = _run(home, "keys", "list")  # the officer sees the version that waits
    line = next(text for text in out.splitlines() if text.startswith("cn-370000-sm2 "))
    assert "PENDING v2 (waits for its ceremony)" in line, out

    request, signed = tmp_path / "request.json", tmp_path / "output.json"
    assert _run(home, "ca", "ceremony", "export", found.group(1), "-o", str(request))[0] == 0
    code, out = _run(tmp_path / "no-home", "ca", "ceremony", "sign", str(request), "--ceremony-home", str(vault),
                     "-o", str(signed), "--yes")  # fmt: skip
    assert code == 0 and "CA        True" in out, out
    code, out = _run(home, "ca", "ceremony", "import", str(signed))
    assert code == 0 and "completed" in out, out

    code, out = _run(home, "keys", "list", "--json")
    assert code == 0, out
    rows = {row["key"]: row for row in json.loads(out)}  # the CA's certificate in use certifies the new version
    assert rows["cn-370000-sm2"]["certificate"]["version"] == rows["cn-370000-sm2"]["current_version"] == 2
    assert rows["cn-370000-sm2"]["pending_version"] is None  # in use now
    document = tmp_path / "licence.pdf"
    document.write_bytes(make_pdf(["Licence", "Jinan Market Regulation Bureau"]))
    code, out = _run(home, "sign", str(document), "--seal", "demo-370000-sm2", "-o", str(tmp_path / "sealed.pdf"))
    assert code == 0, out
    code, out = _run(home, "verify", str(tmp_path / "sealed.pdf"), "--json")
    assert code == 0 and json.loads(out)["result"] == "PASSED", out
