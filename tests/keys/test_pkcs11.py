"""PKCS#11 custody against a real SoftHSM2 token: keys made in the token and never leaving it, signatures
checked by `cryptography` and the OpenSSL CLI, a P-256 CA hierarchy that `openssl verify` accepts, and
refusals (bad PIN, missing token or module, SM2 without vendor mechanisms) that create nothing."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pkcs11
import pytest
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.context import open_custody
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from keys.custody import (
    CustodyError,
    CustodyLocked,
    KeyAlgorithm,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyTampered,
)
from keys.local import LocalKeystore
from keys.pkcs11 import AlgorithmNotSupported, Pkcs11Config, Pkcs11Keystore, Sm2Mechanisms, _raw_to_der
from ledger.key_events import recorded
from policies.profiles import default_profiles
from store.db import Database
from tests.conftest import SoftHSM
from tests.fixtures import ORG_SUBJECT, PUBLIC_URL, make_csr, openssl, pem
from tests.gm.hmac_oracles import openssl_hmac_sm3

pytestmark = pytest.mark.pkcs11

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def config(hsm: SoftHSM, **changes: object) -> Pkcs11Config:
    base = Pkcs11Config(module=hsm.module, token=hsm.token, pin=hsm.pin, prefix=f"t{secrets.token_hex(5)}")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(softhsm: SoftHSM) -> Pkcs11Keystore:
    return Pkcs11Keystore(config(softhsm))


def private_object(store: Pkcs11Keystore, name: str, version: int) -> pkcs11.PrivateKey:
    session = store._login.session
    (obj,) = list(
        session.get_objects({pkcs11.Attribute.LABEL: f"{store.config.prefix}/{name}/v{version}",
                             pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY})
    )  # fmt: skip
    return obj


def verifies(public_der: bytes, signature: bytes, data: bytes) -> bool:
    key = serialization.load_der_public_key(public_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


def openssl_verifies(tmp_path: Path, public_der: bytes, signature: bytes, data: bytes) -> bool:
    tag = secrets.token_hex(3)
    (tmp_path / f"pub{tag}.pem").write_bytes(pem(public_der, "PUBLIC KEY"))
    (tmp_path / f"sig{tag}").write_bytes(signature)
    (tmp_path / f"data{tag}").write_bytes(data)
    result = openssl(
        "dgst", "-sha256", "-verify", f"pub{tag}.pem", "-signature", f"sig{tag}", f"data{tag}", cwd=tmp_path,
        check=False,
    )  # fmt: skip
    return result.returncode == 0 and b"Verified OK" in result.stdout


def test_create_sign_rotate_disable_list(store: Pkcs11Keystore, softhsm: SoftHSM, tmp_path: Path) -> None:
    v1 = store.create("issuing", KeyAlgorithm.P256)
    assert (v1.name, v1.version, v1.algorithm, v1.enabled) == ("issuing", 1, KeyAlgorithm.P256, True)
    assert asn1_keys.PublicKeyInfo.load(v1.public_key_der).curve == ("named", "secp256r1")
    with pytest.raises(KeyExists):
        store.create("issuing", KeyAlgorithm.P256)

    data = b"to be signed"
    signature = store.signer("issuing").sign(data)
    # the local keystore's format: DER ECDSA-Sig-Value with 0 < r, s < n
    r, s = decode_dss_signature(signature)
    assert 0 < r < P256_ORDER and 0 < s < P256_ORDER
    assert verifies(v1.public_key_der, signature, data)
    assert openssl_verifies(tmp_path, v1.public_key_der, signature, data)
    assert not verifies(v1.public_key_der, signature, data + b"!")
    assert not openssl_verifies(tmp_path, v1.public_key_der, signature, data + b"!")

    v2 = store.rotate("issuing")
    assert v2.version == 2 and v2.public_key_der != v1.public_key_der
    assert store.get("issuing").version == 2
    new = store.signer("issuing").sign(data)
    assert verifies(v2.public_key_der, new, data) and not verifies(v1.public_key_der, new, data)
    old = store.signer("issuing@1").sign(data)  # old versions keep signing and verifying
    assert verifies(v1.public_key_der, old, data) and openssl_verifies(tmp_path, v1.public_key_der, old, data)

    disabled = store.disable("issuing", 2)
    assert not disabled.enabled and disabled.public_key_der == v2.public_key_der
    with pytest.raises(KeyDisabled):
        store.signer("issuing@2")
    assert store.get("issuing").version == 1
    # the flag is the token's own: the key object itself no longer signs
    obj = private_object(store, "issuing", 2)
    assert obj[pkcs11.Attribute.SIGN] is False
    with pytest.raises(pkcs11.PKCS11Error):
        store._login.session.get_key(id=obj[pkcs11.Attribute.ID]).sign(b"\0" * 32, mechanism=pkcs11.Mechanism.ECDSA)

    # another keystore on the same token (another process would see the same objects)
    other = Pkcs11Keystore(store.config)
    assert [(v.version, v.enabled, v.public_key_der) for v in other.versions("issuing")] == [
        (1, True, v1.public_key_der),
        (2, False, v2.public_key_der),
    ]
    assert other.names() == ["issuing"]
    with pytest.raises(KeyDisabled):
        other.signer("issuing@2")
    # what `other` knows (its last scan) does not hide another writer's rotation or disable from it
    v3 = store.rotate("issuing")
    assert other.get("issuing").public_key_der == v3.public_key_der
    assert verifies(v3.public_key_der, other.signer("issuing").sign(data), data)
    store.disable("issuing", 3)
    with pytest.raises(KeyDisabled):
        other.signer("issuing@3")
    assert other.get("issuing").version == 1
    # keystores with other prefixes on the same token do not see each other's keys
    assert Pkcs11Keystore(config(softhsm)).names() == []
    for bad in ("missing", "issuing@9", "UPPER", "../x", "issuing@x"):
        with pytest.raises(KeyNotFound):
            store.get(bad)
    with pytest.raises(KeyNotFound):
        store.rotate("missing")
    with pytest.raises(KeyNotFound):
        store.disable("issuing", 9)


def test_private_key_is_made_in_the_token_and_never_leaves_it(store: Pkcs11Keystore) -> None:
    store.create("root", KeyAlgorithm.P256)
    obj = private_object(store, "root", 1)
    attribute = pkcs11.Attribute
    assert obj[attribute.TOKEN] is True and obj[attribute.PRIVATE] is True
    assert obj[attribute.SENSITIVE] is True and obj[attribute.ALWAYS_SENSITIVE] is True
    assert obj[attribute.EXTRACTABLE] is False and obj[attribute.NEVER_EXTRACTABLE] is True
    assert obj[attribute.LOCAL] is True  # generated on the token, not imported
    with pytest.raises(pkcs11.AttributeSensitive):
        obj[attribute.VALUE]
    with pytest.raises(pkcs11.PKCS11Error):  # CKA_EXTRACTABLE can only ever go from true to false
        obj[attribute.EXTRACTABLE] = True
    handle = store.signer("root")
    with pytest.raises(CustodyError):
        handle._material.secret_bytes()
    with pytest.raises(TypeError):
        __import__("pickle").dumps(handle)


def test_a_swapped_public_key_object_is_refused(store: Pkcs11Keystore) -> None:
    """Someone with the PIN replaces a version's public-key object by another key's (same label and ID):
    a CA would certify that key under our name. The pair check refuses it as key_tampered."""
    v1 = store.create("ca-key", KeyAlgorithm.P256)
    session = store._login.session
    (public,) = list(session.get_objects({pkcs11.Attribute.LABEL: f"{store.config.prefix}/ca-key/v1",
                                          pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY}))  # fmt: skip
    template = {a: public[a] for a in (pkcs11.Attribute.LABEL, pkcs11.Attribute.ID, pkcs11.Attribute.EC_PARAMS)}
    public.destroy()
    intruder = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = intruder.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    session.create_object(
        template
        | {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY,
            pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.VERIFY: True,
            pkcs11.Attribute.EC_POINT: b"\x04\x41" + point,
        }
    )
    fresh = Pkcs11Keystore(store.config)  # another process: nothing cached
    for attempt in (lambda: fresh.get("ca-key"), lambda: fresh.signer("ca-key@1"), lambda: fresh.versions("ca-key")):
        with pytest.raises(KeyTampered):
            attempt()
    assert v1.public_key_der != intruder.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_dropped_session_is_one_clear_error_then_a_new_login(store: Pkcs11Keystore) -> None:
    """The token drops the session (an HSM restart, a network HSM's reconnect): the call in flight fails
    with a custody error saying so, and the next one logs in again instead of failing forever."""
    v1 = store.create("survivor", KeyAlgorithm.P256)
    old = store.signer("survivor")
    other = Pkcs11Keystore(store.config)
    other.get("survivor")
    store._login.session.close()
    with pytest.raises(CustodyError, match="dropped the session"):
        old.sign(b"m")
    again = store.signer("survivor")
    assert verifies(v1.public_key_der, again.sign(b"m"), b"m")
    assert verifies(v1.public_key_der, other.signer("survivor").sign(b"n"), b"n")  # shares the new login


def test_mac_key_lives_in_the_token_behind_the_pin(store: Pkcs11Keystore, softhsm: SoftHSM) -> None:
    """HMAC-SM3 keys (ledger/pii.py) are generated in the token as private objects; the MAC is computed
    here (no token computes HMAC-SM3), and equals OpenSSL's over the stored key."""
    store.create("pii", KeyAlgorithm.HMAC_SM3)
    session = store._login.session
    (obj,) = list(session.get_objects({pkcs11.Attribute.LABEL: f"{store.config.prefix}/pii/v1"}))
    assert obj[pkcs11.Attribute.PRIVATE] is True and obj[pkcs11.Attribute.LOCAL] is True
    key = bytes(obj[pkcs11.Attribute.VALUE])
    assert len(key) == 32
    assert store.mac("pii").mac(b"370102199001011234") == openssl_hmac_sm3(key, b"370102199001011234")
    # another process without the PIN (login state is per process) sees public keys only
    script = (
        "import sys, pkcs11; s = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2]).open(); "
        "print('\\n'.join(sorted(o[pkcs11.Attribute.LABEL] for o in s.get_objects())))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script, softhsm.module, softhsm.token], capture_output=True, text=True, check=True,
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)}, timeout=60,
    )  # fmt: skip
    store.create("sig", KeyAlgorithm.P256)
    assert f"{store.config.prefix}/pii/v1" not in listed.stdout.split()
    again = subprocess.run(
        [sys.executable, "-c", script, softhsm.module, softhsm.token], capture_output=True, text=True, check=True,
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)}, timeout=60,
    )  # fmt: skip
    assert again.stdout.split().count(f"{store.config.prefix}/sig/v1") == 1  # the public half only


def test_sm2_is_refused_without_vendor_mechanisms(store: Pkcs11Keystore) -> None:
    with pytest.raises(AlgorithmNotSupported) as refused:
        store.create("seal-key", KeyAlgorithm.SM2)
    assert refused.value.code == "algorithm_not_supported"
    assert store.names() == []


def test_sm2_vendor_mechanisms_are_what_the_token_is_asked(softhsm: SoftHSM) -> None:
    """Configured vendor values reach the token: SoftHSM2 has no such mechanism and says so; nothing made."""
    vendor = Sm2Mechanisms(key_type=0x80000101, keygen=0x80000102, sign=0x80000103, input="digest")
    store = Pkcs11Keystore(config(softhsm, sm2=vendor))
    with pytest.raises(CustodyError, match="SM2 key generation failed: Mechanism"):
        store.create("seal-key", KeyAlgorithm.SM2)
    assert store.names() == []


def test_raw_signatures_become_der() -> None:
    """Both raw forms a device may return (PKCS#11's 2 x 32 bytes, GM/T 0018's 2 x 64 right-aligned) give
    the same DER; anything else is refused, never passed on."""
    r, s = secrets.randbits(255) | 1, secrets.randbits(255) | 1
    der = _raw_to_der(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert decode_dss_signature(der) == (r, s)
    assert _raw_to_der(r.to_bytes(64, "big") + s.to_bytes(64, "big")) == der
    for bad in (b"", b"\1" * 63, b"\0" * 64, b"\xff" * 128):
        with pytest.raises(CustodyError):
            _raw_to_der(bad)


def test_sm2_configuration_from_env() -> None:
    assert Sm2Mechanisms.from_env({}) is None
    parsed = Sm2Mechanisms.from_env(
        {
            "TRUSTSEAL_PKCS11_SM2_KEY_TYPE": "0x80000101",
            "TRUSTSEAL_PKCS11_SM2_KEYGEN": "2147549440",
            "TRUSTSEAL_PKCS11_SM2_SIGN": "0x80000103",
            "TRUSTSEAL_PKCS11_SM2_INPUT": "message",
        }
    )
    assert parsed == Sm2Mechanisms(0x80000101, 2147549440, 0x80000103, "message")
    with pytest.raises(CustodyError, match="needs all of"):
        Sm2Mechanisms.from_env({"TRUSTSEAL_PKCS11_SM2_SIGN": "0x1"})
    base = {"TRUSTSEAL_PKCS11_SM2_KEY_TYPE": "1", "TRUSTSEAL_PKCS11_SM2_KEYGEN": "2", "TRUSTSEAL_PKCS11_SM2_SIGN": "3"}
    with pytest.raises(CustodyError, match="message or digest"):
        Sm2Mechanisms.from_env({**base, "TRUSTSEAL_PKCS11_SM2_INPUT": "z"})
    with pytest.raises(CustodyError, match="integers"):
        Sm2Mechanisms.from_env({**base, "TRUSTSEAL_PKCS11_SM2_SIGN": "sm2"})


def test_bad_pin_missing_token_missing_module_create_nothing(softhsm: SoftHSM, tmp_path: Path) -> None:
    # a token never logged into: C_Login itself says the PIN is wrong
    with pytest.raises(CustodyLocked, match="wrong PIN"):
        Pkcs11Keystore(config(softhsm, token=softhsm.spare_token, pin="000000"))
    # a token this process is logged into: the PIN is still checked
    good = Pkcs11Keystore(config(softhsm))
    with pytest.raises(CustodyLocked, match="wrong PIN"):
        Pkcs11Keystore(config(softhsm, pin=softhsm.pin + "x", prefix=good.config.prefix))
    with pytest.raises(CustodyError, match="no PKCS#11 token labelled 'absent'"):
        Pkcs11Keystore(config(softhsm, token="absent"))
    with pytest.raises(CustodyError, match="does not exist"):
        Pkcs11Keystore(config(softhsm, module=str(tmp_path / "missing.so")))
    not_pkcs11 = tmp_path / "not-pkcs11.so"
    not_pkcs11.write_bytes(b"\x7fELF not a library")
    with pytest.raises(CustodyError, match="cannot be loaded"):
        Pkcs11Keystore(config(softhsm, module=str(not_pkcs11)))
    assert good.names() == []
    spare = Pkcs11Keystore(config(softhsm, token=softhsm.spare_token))
    assert spare.names() == []
    for cls in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY, pkcs11.ObjectClass.SECRET_KEY):
        assert list(spare._login.session.get_objects({pkcs11.Attribute.CLASS: cls})) == []


def test_config_from_env(softhsm: SoftHSM, tmp_path: Path) -> None:
    with pytest.raises(CustodyError, match="TRUSTSEAL_PKCS11_MODULE"):
        Pkcs11Config.from_env({"TRUSTSEAL_PKCS11_TOKEN": "x", "TRUSTSEAL_PKCS11_PIN": "1"})
    with pytest.raises(CustodyError, match="PIN"):
        Pkcs11Config.from_env({"TRUSTSEAL_PKCS11_MODULE": softhsm.module, "TRUSTSEAL_PKCS11_TOKEN": "x"})
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    env = {
        "TRUSTSEAL_PKCS11_MODULE": softhsm.module,
        "TRUSTSEAL_PKCS11_TOKEN": softhsm.token,
        "TRUSTSEAL_PKCS11_PIN_FILE": str(pin_file),
        "TRUSTSEAL_PKCS11_PREFIX": "envtest",
    }
    parsed = Pkcs11Config.from_env(env)
    assert (parsed.pin, parsed.prefix, parsed.sm2) == (softhsm.pin, "envtest", None)
    with pytest.raises(CustodyError, match="cannot read"):
        Pkcs11Config.from_env({**env, "TRUSTSEAL_PKCS11_PIN_FILE": str(tmp_path / "none")})


def test_open_custody_selects_pkcs11(softhsm: SoftHSM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTSEAL_PKCS11_MODULE", softhsm.module)
    monkeypatch.setenv("TRUSTSEAL_PKCS11_TOKEN", softhsm.token)
    monkeypatch.setenv("TRUSTSEAL_PKCS11_PIN", softhsm.pin)
    monkeypatch.setenv("TRUSTSEAL_PKCS11_PREFIX", f"t{secrets.token_hex(5)}")
    settings = Settings(
        home=tmp_path, database_url="sqlite://", public_url=PUBLIC_URL, keystore="pkcs11", passphrase=None,
        max_upload_bytes=1024,
    )  # fmt: skip
    custody = open_custody(settings)
    assert isinstance(custody, Pkcs11Keystore)
    assert custody.create("k", KeyAlgorithm.P256).version == 1
    assert not (tmp_path / "keystore").exists()  # nothing of the local keystore was made


def test_cli_init_on_a_token_without_sm2_stops_with_the_code(softhsm: SoftHSM, tmp_path: Path) -> None:
    """The demo hierarchy and the ledger key are SM2: on SoftHSM2 `trustseal init` says why it cannot go on
    (no traceback), and has made no key; a wrong PIN is one clean line too."""
    prefix = f"t{secrets.token_hex(5)}"
    env = {
        "TRUSTSEAL_HOME": str(tmp_path / "home"),
        "TRUSTSEAL_KEYSTORE": "pkcs11",
        "TRUSTSEAL_PKCS11_MODULE": softhsm.module,
        "TRUSTSEAL_PKCS11_TOKEN": softhsm.token,
        "TRUSTSEAL_PKCS11_PIN": softhsm.pin,
        "TRUSTSEAL_PKCS11_PREFIX": prefix,
    }
    result = CliRunner().invoke(cli_app, ["init"], env=env)
    assert result.exit_code == 1
    assert "error: algorithm_not_supported: SM2 keys need the token's vendor SM2 mechanisms" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert Pkcs11Keystore(config(softhsm, prefix=prefix)).names() == []
    wrong = CliRunner().invoke(cli_app, ["init"], env={**env, "TRUSTSEAL_PKCS11_PIN": "not-the-pin"})
    assert wrong.exit_code == 1 and "wrong PIN" in wrong.output
    assert wrong.exception is None or isinstance(wrong.exception, SystemExit)


def test_concurrent_rotations_in_one_process_take_turns(store: Pkcs11Keystore) -> None:
    """Keystores of one process share the login and its lock: versions come out contiguous."""
    store.create("raced", KeyAlgorithm.P256)
    results: list[int] = []
    errors: list[Exception] = []

    def rotate() -> None:
        try:
            mine = Pkcs11Keystore(store.config)
            for _ in range(2):
                results.append(mine.rotate("raced").version)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(2, 8))
    versions = store.versions("raced")
    assert [v.version for v in versions] == list(range(1, 8))
    assert len({v.public_key_der for v in versions}) == 7
    for v in versions:
        assert verifies(v.public_key_der, store.signer(v.ref).sign(b"m"), b"m")


ROTATOR = """
import sys
from keys.custody import CustodyError
from keys.pkcs11 import Pkcs11Config, Pkcs11Keystore
config = Pkcs11Config(module=sys.argv[1], token=sys.argv[2], pin=sys.argv[3], prefix=sys.argv[4])
for _ in range(int(sys.argv[5])):
    try:
        v = Pkcs11Keystore(config).rotate("raced")
    except CustodyError as exc:
        print("refused", type(exc).__name__, flush=True)
        continue
    print(v.version, v.public_key_der.hex(), flush=True)
"""


def test_concurrent_rotations_in_several_processes_never_share_a_version(
    store: Pkcs11Keystore, softhsm: SoftHSM
) -> None:
    """Processes cannot be locked out of each other (PKCS#11 has no compare-and-set): writers that pick the
    same number back off, so no two rotations return the same version, and each returned version is the
    one the token lists. SoftHSM2's file store itself sometimes fails a key generation under contention
    (CKR_FUNCTION_FAILED): such a writer gets a CustodyError, which is allowed; a duplicate never is."""
    store.create("raced", KeyAlgorithm.P256)
    c = store.config
    writers, rounds = (4, 5) if os.environ.get("TRUSTSEAL_SOAK") else (2, 2)
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ROTATOR, c.module, c.token, c.pin, c.prefix, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(writers)
    ]
    returned: dict[int, str] = {}
    refused = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        for first, second in (line.split()[:2] for line in out.strip().splitlines()):
            if first == "refused":
                refused += 1
                continue
            assert int(first) not in returned, "two writers both got version " + first
            returned[int(first)] = second
    # every attempt accounted for, and some got through: how many SoftHSM2's file store lets through under
    # contention varies run to run (a CI run saw 1 of 4), the invariant is that none shares a version
    assert len(returned) + refused == writers * rounds and len(returned) >= 1
    listed = {v.version: v.public_key_der.hex() for v in store.versions("raced")}
    assert {n: listed.get(n) for n in returned} == returned
    if not refused:
        assert set(listed) == {1, *returned}  # no leftover twin: every listed version was returned to a writer


@pytest.mark.openssl
def test_p256_ca_hierarchy_on_the_token_passes_openssl_verify(
    store: Pkcs11Keystore, database: Database, tmp_path: Path
) -> None:
    custody = recorded(store, database)  # as api/context.py wraps every backend
    service = CertificateAuthorityService(database, custody, default_profiles(), PUBLIC_URL)
    subject = {"country_name": "CN", "organization_name": "trustseal hsm test"}
    root, regional = f"cn-root-p256-{store.config.prefix}", f"cn-370000-p256-{store.config.prefix}"
    service.create_ca(root, algorithm=KeyAlgorithm.P256, subject=subject | {"common_name": "HSM Root"},
                      ca_profile="root-ca")  # fmt: skip
    service.create_ca(regional, algorithm=KeyAlgorithm.P256, ca_profile="regional-ca", parent=root,
                      subject=subject | {"state_or_province_name": "山东省", "common_name": "HSM Shandong"},
                      region_code="370000", region_name="Shandong")  # fmt: skip
    assert {root, f"{root}.ocsp", regional, f"{regional}.ocsp"} <= set(store.names())
    csr = make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT)
    issued = service.issue(csr, "org-seal", regional)

    root_pem, regional_pem, leaf_pem = tmp_path / "root.pem", tmp_path / "regional.pem", tmp_path / "leaf.pem"
    root_pem.write_bytes(pem(service.ca_certificate(root).dump()))
    regional_pem.write_bytes(pem(service.ca_certificate(regional).dump()))
    leaf_pem.write_bytes(pem(issued.der))
    ok = openssl("verify", "-CAfile", str(root_pem), "-untrusted", str(regional_pem), str(leaf_pem), check=False)
    assert ok.returncode == 0 and b": OK" in ok.stdout, ok.stderr
    # the CA certificate certifies the token's key: the regional CA's public key is custody's
    regional_spki = service.ca_certificate(regional).public_key.dump()
    assert regional_spki == store.get(regional).public_key_der

    # a key from elsewhere does not pass: the same chain with a root made by another keystore fails
    other = CertificateAuthorityService(
        database, LocalKeystore(tmp_path / "ks", passphrase="x", scrypt_n=2**10), default_profiles(), PUBLIC_URL
    )
    other.create_ca(f"{root}-x", algorithm=KeyAlgorithm.P256, subject=subject | {"common_name": "HSM Root"},
                    ca_profile="root-ca")  # fmt: skip
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(pem(other.ca_certificate(f"{root}-x").dump()))
    bad = openssl("verify", "-CAfile", str(foreign), "-untrusted", str(regional_pem), str(leaf_pem), check=False)
    assert bad.returncode != 0
