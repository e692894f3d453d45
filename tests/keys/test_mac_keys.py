"""HMAC-SM3 keys in custody, both backends: the key is generated, wrapped and versioned like a signing
key; callers get a MAC handle, never the key. The test plays the auditor who may unwrap the stored key
(it knows the passphrase / has the Vault token) to check the MACs against independent implementations."""

from __future__ import annotations

import base64
import pickle
import secrets
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from hvac.exceptions import InvalidRequest

from keys.custody import KeyAlgorithm, KeyCustody, KeyDisabled, KeyExists, KeyWrongType
from keys.local import LocalKeystore
from keys.vault import VaultKeystore
from tests.conftest import Bao
from tests.gm.hmac_oracles import openssl_hmac_sm3, rfc2104_hmac_sm3
from tests.keys.test_custody import pkcs11_keystore
from tests.keys.unwrap import stored_key

PASSPHRASE = "correct horse"


@pytest.fixture(
    params=["local", pytest.param("vault", marks=pytest.mark.vault), pytest.param("pkcs11", marks=pytest.mark.pkcs11)]
)
def custody(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyCustody]:
    if request.param == "local":
        yield LocalKeystore(tmp_path / "ks", passphrase=PASSPHRASE, scrypt_n=2**10)
    elif request.param == "pkcs11":
        yield pkcs11_keystore(request.getfixturevalue("softhsm"))
    else:
        bao: Bao = request.getfixturevalue("openbao")
        yield VaultKeystore(hvac.Client(url=bao.addr, token=bao.token), prefix=f"trustseal-test/{secrets.token_hex(4)}")


def test_mac_key_create_mac_rotate_disable(custody: KeyCustody) -> None:
    v1 = custody.create("pii-key", KeyAlgorithm.HMAC_SM3)
    assert (v1.version, v1.algorithm, v1.public_key_der, v1.enabled) == (1, KeyAlgorithm.HMAC_SM3, b"", True)
    with pytest.raises(KeyExists):
        custody.create("pii-key", KeyAlgorithm.HMAC_SM3)

    message = b"370102199001011234"
    mac1 = custody.mac("pii-key").mac(message)
    key1 = stored_key(custody, "pii-key", 1, PASSPHRASE)
    assert len(key1) == 32
    assert mac1 == rfc2104_hmac_sm3(key1, message) == openssl_hmac_sm3(key1, message)
    assert custody.mac("pii-key@1").mac(message) == mac1  # stable per version

    v2 = custody.rotate("pii-key")
    assert v2.version == 2 and v2.public_key_der == b""
    key2 = stored_key(custody, "pii-key", 2, PASSPHRASE)
    assert key2 != key1
    handle = custody.mac("pii-key")
    assert handle.version.version == 2
    assert handle.mac(message) == openssl_hmac_sm3(key2, message) != mac1
    assert custody.mac("pii-key@1").mac(message) == mac1  # old digests can still be recomputed

    custody.disable("pii-key", 2)
    with pytest.raises(KeyDisabled):
        custody.mac("pii-key@2")
    assert custody.mac("pii-key").version.version == 1


def test_keys_are_used_only_for_what_they_are(custody: KeyCustody) -> None:
    custody.create("mac-only", KeyAlgorithm.HMAC_SM3)
    custody.create("sign-only", KeyAlgorithm.P256)
    with pytest.raises(KeyWrongType):
        custody.signer("mac-only")
    with pytest.raises(KeyWrongType):
        custody.mac("sign-only")


def test_the_handle_does_not_give_the_key_away(custody: KeyCustody) -> None:
    custody.create("secret-mac", KeyAlgorithm.HMAC_SM3)
    handle = custody.mac("secret-mac")
    key = stored_key(custody, "secret-mac", 1, PASSPHRASE)
    with pytest.raises(TypeError):
        pickle.dumps(handle)
    for text in (repr(handle), str(handle), repr(handle.version)):
        assert key.hex() not in text.lower() and base64.b64encode(key).decode() not in text
    assert not any(callable(getattr(handle, a, None)) and "secret" in a for a in dir(handle))


def test_local_keystore_file_holds_the_mac_key_wrapped(tmp_path: Path) -> None:
    custody = LocalKeystore(tmp_path / "ks", passphrase=PASSPHRASE, scrypt_n=2**10)
    custody.create("pii-key", KeyAlgorithm.HMAC_SM3)
    key = stored_key(custody, "pii-key", 1, PASSPHRASE)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "ks").iterdir() if p.is_file())
    assert key not in raw and key.hex().encode() not in raw and base64.b64encode(key) not in raw
    # a second process (another view of the same folder) computes the same MAC
    other = LocalKeystore(tmp_path / "ks", passphrase=PASSPHRASE)
    assert other.mac("pii-key").mac(b"x") == custody.mac("pii-key").mac(b"x")


@pytest.mark.vault
def test_openbao_transit_hmac_has_no_sm3(openbao: Bao) -> None:
    """Why the Vault backend wraps the MAC key with Transit instead of using Transit's HMAC endpoint:
    its algorithms are SHA-2 / SHA-3 only. If a future OpenBao adds SM3, this test says so."""
    # Raw requests: hvac's own parameter checks know neither the `hmac` key type nor sm3.
    adapter = hvac.Client(url=openbao.addr, token=openbao.token).adapter
    name = f"hmac-probe-{secrets.token_hex(4)}"
    adapter.post(f"/v1/transit/keys/{name}", json={"type": "hmac", "key_size": 32})
    ok = adapter.post(f"/v1/transit/hmac/{name}", json={"input": "bQ==", "algorithm": "sha2-256"})
    assert ok["data"]["hmac"].startswith("vault:v1:")
    with pytest.raises(InvalidRequest, match="unsupported algorithm"):
        adapter.post(f"/v1/transit/hmac/{name}", json={"input": "bQ==", "algorithm": "sm3"})
