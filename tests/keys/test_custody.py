"""One behaviour, three backends: the local SM4-GCM keystore, Vault / OpenBao, and PKCS#11 (SoftHSM2; P-256
only there: SoftHSM2 has no SM2, which it refuses as algorithm_not_supported)."""

from __future__ import annotations

import base64
import pickle
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gm import sm2
from keys.custody import CustodyError, CustodyLocked, KeyAlgorithm, KeyCustody, KeyDisabled, KeyExists, KeyNotFound
from keys.local import LocalKeystore
from keys.pkcs11 import AlgorithmNotSupported, Pkcs11Config, Pkcs11Keystore
from keys.vault import VaultKeystore
from tests.conftest import Bao, SoftHSM


def verifies(public_key_der: bytes, algorithm: KeyAlgorithm, signature: bytes, data: bytes) -> bool:
    if algorithm == KeyAlgorithm.SM2:
        return sm2.SM2PublicKey.from_spki(public_key_der).verify(signature, data)
    key = serialization.load_der_public_key(public_key_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


@pytest.fixture(
    params=["local", pytest.param("vault", marks=pytest.mark.vault), pytest.param("pkcs11", marks=pytest.mark.pkcs11)]
)
def custody(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyCustody]:
    if request.param == "local":
        yield LocalKeystore(tmp_path / "ks", passphrase="correct horse", scrypt_n=2**10)
    elif request.param == "pkcs11":
        yield pkcs11_keystore(request.getfixturevalue("softhsm"))
    else:
        bao: Bao = request.getfixturevalue("openbao")
        client = hvac.Client(url=bao.addr, token=bao.token)
        yield VaultKeystore(client, prefix=f"trustseal-test/{secrets.token_hex(4)}")


def pkcs11_keystore(hsm: SoftHSM) -> Pkcs11Keystore:
    """A keystore of its own on the session's SoftHSM2 token (keys kept apart by label prefix)."""
    return Pkcs11Keystore(Pkcs11Config(hsm.module, hsm.token, hsm.pin, prefix=f"c{secrets.token_hex(5)}"))


def second_view(custody: KeyCustody, tmp_path: Path) -> KeyCustody:
    if isinstance(custody, LocalKeystore):
        return LocalKeystore(custody.root, passphrase="correct horse")
    if isinstance(custody, Pkcs11Keystore):
        return Pkcs11Keystore(custody.config)
    assert isinstance(custody, VaultKeystore)
    return VaultKeystore(custody.client, prefix=custody.prefix)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.SM2, KeyAlgorithm.P256])
def test_create_sign_rotate_disable(custody: KeyCustody, algorithm: KeyAlgorithm, tmp_path: Path) -> None:
    if isinstance(custody, Pkcs11Keystore) and algorithm is KeyAlgorithm.SM2:
        with pytest.raises(AlgorithmNotSupported):  # no vendor SM2 mechanisms configured (SoftHSM2 has none)
            custody.create("issuing-key", algorithm)
        assert custody.names() == []
        return
    v1 = custody.create("issuing-key", algorithm)
    assert (v1.version, v1.enabled, v1.algorithm) == (1, True, algorithm)
    signature = custody.signer("issuing-key").sign(b"tbs bytes")
    assert verifies(v1.public_key_der, algorithm, signature, b"tbs bytes")
    assert not verifies(v1.public_key_der, algorithm, signature, b"tbs bytez")

    v2 = custody.rotate("issuing-key")
    assert v2.version == 2 and v2.public_key_der != v1.public_key_der
    assert custody.get("issuing-key").version == 2
    assert custody.get("issuing-key@1").public_key_der == v1.public_key_der
    old = custody.signer("issuing-key@1").sign(b"old documents keep verifying")
    assert verifies(v1.public_key_der, algorithm, old, b"old documents keep verifying")
    new = custody.signer("issuing-key").sign(b"x")
    assert verifies(v2.public_key_der, algorithm, new, b"x")

    custody.disable("issuing-key", 2)
    with pytest.raises(KeyDisabled):
        custody.signer("issuing-key@2")
    assert custody.get("issuing-key").version == 1  # newest enabled
    assert not custody.get("issuing-key@2").enabled

    other = second_view(custody, tmp_path)
    assert [v.version for v in other.versions("issuing-key")] == [1, 2]
    assert "issuing-key" in other.names()
    with pytest.raises(KeyDisabled):
        other.signer("issuing-key@2")


def test_errors(custody: KeyCustody) -> None:
    custody.create("dup", KeyAlgorithm.P256)
    with pytest.raises(KeyExists):
        custody.create("dup", KeyAlgorithm.SM2)
    for bad in ("missing", "../etc/passwd", "UPPER", "a/b", "", "dup@x", "dup@7"):
        with pytest.raises(KeyNotFound):
            custody.get(bad)
    with pytest.raises(KeyNotFound):
        custody.rotate("missing")
    with pytest.raises(KeyNotFound):
        custody.disable("dup", 9)


def test_signing_handle_stays_in_memory(custody: KeyCustody) -> None:
    custody.create("secretive", KeyAlgorithm.P256 if isinstance(custody, Pkcs11Keystore) else KeyAlgorithm.SM2)
    handle = custody.signer("secretive")
    with pytest.raises(TypeError):
        pickle.dumps(handle)
    if isinstance(custody, Pkcs11Keystore):  # the key is in the token: there are no bytes to leak
        with pytest.raises(CustodyError):
            handle._material.secret_bytes()
        return
    scalar = handle._material.secret_bytes()  # test-only peek to search for leaks
    assert scalar.hex() not in repr(handle) and scalar.hex() not in repr(handle._material)


def _leak_forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret), secret.hex().upper().encode()]


def test_local_files_hold_no_plaintext_and_are_private(tmp_path: Path) -> None:
    store = LocalKeystore(tmp_path / "ks", passphrase="pw", scrypt_n=2**10)
    store.create("k", KeyAlgorithm.SM2)
    store.create("p", KeyAlgorithm.P256)
    for name in ("k", "p"):
        secret = store.signer(name)._material.secret_bytes()
        path = tmp_path / "ks" / f"{name}.key.json"
        raw = path.read_bytes()
        assert not any(form in raw for form in _leak_forms(secret))
        assert path.stat().st_mode & 0o777 == 0o600


def test_local_wrong_passphrase_and_tampering(tmp_path: Path) -> None:
    LocalKeystore(tmp_path / "ks", passphrase="right", scrypt_n=2**10).create("k", KeyAlgorithm.SM2)
    with pytest.raises(CustodyLocked):
        LocalKeystore(tmp_path / "ks", passphrase="wrong")
    path = tmp_path / "ks" / "k.key.json"
    text = path.read_text()
    start = text.index('"wrapped": "') + len('"wrapped": "')
    flipped = "A" if text[start + 20] != "A" else "B"
    path.write_text(text[: start + 20] + flipped + text[start + 21 :])
    with pytest.raises(CustodyLocked):
        LocalKeystore(tmp_path / "ks", passphrase="right").signer("k")


def test_local_wrapped_key_bound_to_its_name(tmp_path: Path) -> None:
    """Copying one key's ciphertext under another name must not yield a usable key (AAD binding)."""
    store = LocalKeystore(tmp_path / "ks", passphrase="pw", scrypt_n=2**10)
    store.create("a", KeyAlgorithm.SM2)
    store.create("b", KeyAlgorithm.SM2)
    a = (tmp_path / "ks" / "a.key.json").read_text()
    b = (tmp_path / "ks" / "b.key.json").read_text()
    wrapped_a = a.split('"wrapped": "')[1].split('"')[0]
    wrapped_b = b.split('"wrapped": "')[1].split('"')[0]
    (tmp_path / "ks" / "b.key.json").write_text(b.replace(wrapped_b, wrapped_a))
    with pytest.raises(CustodyLocked):
        LocalKeystore(tmp_path / "ks", passphrase="pw").signer("b")


@pytest.mark.vault
def test_vault_secret_holds_no_plaintext(openbao: Bao) -> None:
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    store = VaultKeystore(client, prefix=f"leakcheck/{secrets.token_hex(4)}")
    store.create("k", KeyAlgorithm.SM2)
    secret = store.signer("k")._material.secret_bytes()
    raw = client.secrets.kv.v2.read_secret_version(
        path=f"{store.prefix}/k", mount_point="secret", raise_on_deleted_version=True
    )
    blob = repr(raw).encode()
    assert not any(form in blob for form in _leak_forms(secret))
    assert raw["data"]["data"]["versions"][0]["wrapped"].startswith("vault:v1:")


@pytest.mark.vault
def test_vault_concurrent_rotations_lose_nothing(openbao: Bao) -> None:
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    prefix = f"race/{secrets.token_hex(4)}"
    VaultKeystore(client, prefix=prefix).create("r", KeyAlgorithm.SM2)
    results: list[int] = []
    errors: list[Exception] = []

    def rotate() -> None:
        try:
            store = VaultKeystore(hvac.Client(url=openbao.addr, token=openbao.token), prefix=prefix)
            for _ in range(3):
                results.append(store.rotate("r").version)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(2, 11))
    versions = VaultKeystore(client, prefix=prefix).versions("r")
    assert [v.version for v in versions] == list(range(1, 11))


@pytest.mark.vault
def test_vault_ciphertext_bound_to_its_key(openbao: Bao) -> None:
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    store = VaultKeystore(client, prefix=f"bind/{secrets.token_hex(4)}")
    store.create("a", KeyAlgorithm.SM2)
    store.create("b", KeyAlgorithm.SM2)
    path_a, path_b = f"{store.prefix}/a", f"{store.prefix}/b"
    a = client.secrets.kv.v2.read_secret_version(path=path_a, mount_point="secret", raise_on_deleted_version=True)
    b = client.secrets.kv.v2.read_secret_version(path=path_b, mount_point="secret", raise_on_deleted_version=True)
    data_b = b["data"]["data"]
    data_b["versions"][0]["wrapped"] = a["data"]["data"]["versions"][0]["wrapped"]
    client.secrets.kv.v2.create_or_update_secret(path=path_b, secret=data_b, mount_point="secret")
    with pytest.raises(CustodyLocked):
        VaultKeystore(client, prefix=store.prefix).signer("b")
