"""`trustseal ca ceremony …` on a demo home: move the SM2 root offline, create a CA under it (a pending
ceremony request), export the request, sign it with only the ceremony home (no $TRUSTSEAL_HOME), import it;
sealing and `trustseal verify` keep working; refusals are one line with their code."""

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


def _run(home: Path, *args: str, passphrase: str = CEREMONY_PASSPHRASE) -> tuple[int, str]:
    env = {"TRUSTSEAL_HOME": str(home), "TRUSTSEAL_CEREMONY_PASSPHRASE": passphrase}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_the_offline_root_through_the_cli(home: Path, tmp_path: Path) -> None:
    from tests.fixtures import make_pdf

    vault = tmp_path / "ceremony-home"
    online = (home / "demo-passphrase.txt").read_text().strip()
    move = ("ca", "ceremony", "move-offline", "cn-root-sm2", "--ceremony-home")
    for where, flags, why in (
        (tmp_path / "no-such-folder" / "ceremony-home", ["--same-device-ok"], "does not exist"),  # a typo
        (home / "ceremony-home", ["--same-device-ok"], "inside the online home"),
        (vault, [], "same device"),  # tmp dirs share the online home's device: refused without the flag
    ):
        code, out = _run(home, *move, str(where), *flags)
        assert code == 1 and "ceremony_home_location" in out and why in out and not where.exists(), out
    assert (home / "keystore" / "cn-root-sm2.key.json").exists()
    code, out = _run(home, *move, str(vault), "--same-device-ok", passphrase=online)
    assert code == 1 and "ceremony_home_invalid" in out and not vault.exists(), out  # never the online passphrase
    code, out = _run(home, *move, str(vault), "--same-device-ok")
    assert code == 0 and "cn-root-sm2 is offline" in out, out
    assert not (home / "keystore" / "cn-root-sm2.key.json").exists()
    assert (vault / "keystore" / "cn-root-sm2.key.json").exists() and (vault.stat().st_mode & 0o077) == 0
    code, out = _run(home, *move, str(vault), "--same-device-ok")
    assert code == 1 and "ca_offline_already" in out

    code, out = _run(home, "ca", "create", "cn-440000-sm2", "--parent", "cn-root-sm2", "--region", "440000")
    assert code == 0 and "pending" in out, out
    found = re.search(r"ceremony request ([0-9a-f]{32}) pending", out)
    assert found is not None, out
    request_id = found.group(1)
    code, out = _run(home, "ca", "ceremony", "list")
    assert code == 0 and request_id in out and "ca.create" in out
    request = tmp_path / "request.json"
    assert _run(home, "ca", "ceremony", "export", request_id, "-o", str(request))[0] == 0

    nowhere = tmp_path / "no-home"  # the offline machine: the ceremony home and the request file only
    signed = tmp_path / "output.json"
    code, out = _run(nowhere, "ca", "ceremony", "sign", str(request), "--ceremony-home", str(vault), "-o", str(signed),
                     "--yes", passphrase="wrong")  # fmt: skip
    assert code == 1 and "custody_locked" in out and not signed.exists(), out
    forged = tmp_path / "forged-request.json"  # the request file is unauthenticated: the home checks it
    forged.write_text(json.dumps({**json.loads(request.read_text()), "operation": "trust_list.signer"}))
    code, out = _run(nowhere, "ca", "ceremony", "sign", str(forged), "--ceremony-home", str(vault), "-o", str(signed),
                     "--yes")  # fmt: skip
    assert code == 1 and "ceremony_request_refused" in out and not signed.exists(), out
    code, out = _run(nowhere, "ca", "ceremony", "sign", str(request), "--ceremony-home", str(vault), "-o", str(signed),
                     "--yes")  # fmt: skip
    assert code == 0 and "cn-440000-sm2" in out and "CA        True" in out, out
    assert not nowhere.exists()
    code, out = _run(nowhere, "ca", "ceremony", "log", "--ceremony-home", str(vault), passphrase="")
    assert code == 0 and request_id in out and "ca.create" in out and "move-offline" in out, out
    record = json.loads(_run(nowhere, "ca", "ceremony", "log", "--ceremony-home", str(vault), "--json")[1])[-1]
    assert record["request"] == request_id and record["tbs_sha256"] == json.loads(request.read_text())["tbs_sha256"]
    code, out = _run(nowhere, "ca", "ceremony", "log", "--ceremony-home", str(tmp_path))
    assert code == 1 and "ceremony_home_invalid" in out

    code, out = _run(home, "ca", "ceremony", "import", str(signed))
    assert code == 0 and "completed" in out, out
    code, out = _run(home, "ca", "list")
    assert "cn-440000-sm2" in out
    code, out = _run(home, "ca", "ceremony", "import", str(signed))
    assert code == 1 and "ceremony_not_pending" in out
    tampered = json.loads(signed.read_text())
    tampered["signed"] = tampered["signed"][:-8] + "AAAAAAA="
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    code, out = _run(home, "ca", "ceremony", "import", str(tmp_path / "tampered.json"))
    assert code == 1 and "ceremony_" in out

    code, out = _run(home, "ca", "create", "cn-450000-sm2", "--parent", "cn-root-sm2", "--region", "450000")
    found = re.search(r"ceremony request ([0-9a-f]{32}) pending", out)
    assert code == 0 and found is not None, out
    code, out = _run(home, "ca", "ceremony", "cancel", found.group(1), "--reason", "asked by mistake")
    assert code == 0 and f"ceremony request {found.group(1)} cancelled" in out, out
    code, out = _run(home, "ca", "ceremony", "list", "--status", "cancelled")
    assert found.group(1) in out and "cancelled" in out
    code, out = _run(home, "ca", "ceremony", "cancel", found.group(1))
    assert code == 1 and "ceremony_not_pending" in out

    document = tmp_path / "licence.pdf"
    document.write_bytes(make_pdf(["Licence", "Jinan Market Regulation Bureau"]))
    code, out = _run(home, "sign", str(document), "--seal", "demo-370000-sm2", "-o", str(tmp_path / "sealed.pdf"))
    assert code == 0, out
    code, out = _run(home, "verify", str(tmp_path / "sealed.pdf"), "--json")
    assert code == 0 and json.loads(out)["result"] == "PASSED", out


def test_a_ceremony_home_on_another_device_is_accepted(tmp_path: Path) -> None:
    from ca.ceremony_home import check_location

    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem (/dev/shm) on this machine")
    check_location(other / "trustseal-ceremony-home-never-made", tmp_path)  # no refusal, nothing made
    assert not (other / "trustseal-ceremony-home-never-made").exists()


def test_a_root_made_in_the_ceremony_home_is_adopted_online(home: Path, tmp_path: Path) -> None:
    """`init-root` generates the key inside the ceremony home (never online); `adopt-root` takes the
    self-signed root as a new hierarchy root, offline from the start; its responder certificate and a CA
    under it come through ceremonies."""
    import base64

    from asn1crypto import pem, x509

    vault, bundle, nowhere = tmp_path / "root-home", tmp_path / "root.json", tmp_path / "offline-machine"
    init = ("ca", "ceremony", "init-root", "cn-root2-sm2", "--ceremony-home", str(vault), "-o", str(bundle))
    code, out = _run(nowhere, *init)
    assert code == 0 and "root cn-root2-sm2 made" in out and not nowhere.exists(), out
    assert (vault / "keystore" / "cn-root2-sm2.key.json").exists()
    code, out = _run(nowhere, *init)
    assert code == 1 and "ca_exists" in out

    document = json.loads(bundle.read_text())
    cert = x509.Certificate.load(pem.unarmor(document["certificate"].encode())[2])
    assert cert.ca and cert.subject == cert.issuer
    forged = bytearray(cert.dump())
    forged[-1] ^= 1  # the self-signature no longer verifies
    forged_pem = pem.armor("CERTIFICATE", bytes(forged)).decode()
    (tmp_path / "forged.json").write_text(json.dumps({**document, "certificate": forged_pem}))
    code, out = _run(home, "ca", "ceremony", "adopt-root", str(tmp_path / "forged.json"))
    assert code == 1 and "ceremony_root_invalid" in out, out
    other_crl = {**document, "crl": base64.b64encode(b"\x30\x00").decode()}
    (tmp_path / "bad-crl.json").write_text(json.dumps(other_crl))
    code, out = _run(home, "ca", "ceremony", "adopt-root", str(tmp_path / "bad-crl.json"))
    assert code == 1 and "ceremony_root_invalid" in out, out

    code, out = _run(home, "ca", "ceremony", "adopt-root", str(bundle))
    assert code == 0 and "cn-root2-sm2 adopted" in out, out
    found = re.search(r"ceremony request ([0-9a-f]{32}) pending: its OCSP", out)
    assert found is not None, out
    assert not (home / "keystore" / "cn-root2-sm2.key.json").exists()  # the root key never came online
    code, out = _run(home, "events", "--type", "approval.break_glass", "--json")
    glass = [e for e in json.loads(out)["events"] if e["subject"] == "cn-root2-sm2"]  # no approval: said so
    assert code == 0 and [e["payload"]["operation"] for e in glass] == ["ca.create"], out
    code, out = _run(home, "ca", "ceremony", "adopt-root", str(bundle))
    assert code == 1 and "ca_exists" in out

    def complete(request_id: str) -> str:
        request, signed = tmp_path / f"{request_id}.json", tmp_path / f"{request_id}.out.json"
        assert _run(home, "ca", "ceremony", "export", request_id, "-o", str(request))[0] == 0
        code, out = _run(nowhere, "ca", "ceremony", "sign", str(request), "--ceremony-home", str(vault), "-o",
                         str(signed), "--yes")  # fmt: skip
        assert code == 0, out
        code, out = _run(home, "ca", "ceremony", "import", str(signed))
        assert code == 0 and "completed" in out, out
        return out

    assert "ocsp.signer" in complete(found.group(1))
    code, out = _run(home, "ca", "create", "cn-460000-sm2", "--parent", "cn-root2-sm2", "--region", "460000")
    created = re.search(r"ceremony request ([0-9a-f]{32}) pending", out)
    assert code == 0 and created is not None, out
    complete(created.group(1))
    code, out = _run(home, "ca", "list")
    assert "cn-root2-sm2" in out and "cn-460000-sm2" in out, out
    code, out = _run(nowhere, "ca", "ceremony", "log", "--ceremony-home", str(vault), "--json")
    assert [r["operation"] for r in json.loads(out)] == ["init-root", "init-root", "ocsp.signer", "ca.create"]
