"""Keyed digests of personal data (ledger/pii.py): labelled with the key version, stable per version,
different across keys and versions, the custody key created once on first use."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from gm.sm3 import sm3
from keys.custody import KeyAlgorithm, KeyWrongType
from keys.local import LocalKeystore
from ledger.pii import PII_KEY, PiiDigests, StoredDigest, scheme_of
from tests.gm.hmac_oracles import openssl_hmac_sm3
from tests.keys.unwrap import stored_key

PASSPHRASE = "pii passphrase"
LABEL = re.compile(r"^hmac-sm3:v(\d+):([0-9a-f]{64})$")
ID = "370102199002141238"


def keystore(path: Path) -> LocalKeystore:
    return LocalKeystore(path, passphrase=PASSPHRASE, scrypt_n=2**10)


def test_label_key_and_independent_check(tmp_path: Path) -> None:
    custody = keystore(tmp_path / "ks")
    assert PII_KEY not in custody.names()
    digest = PiiDigests(custody)(ID)
    # created on first use, as an HMAC-SM3 key in custody
    assert custody.get(PII_KEY).algorithm == KeyAlgorithm.HMAC_SM3 and custody.get(PII_KEY).version == 1
    match = LABEL.match(digest)
    assert match is not None and match[1] == "1"
    key = stored_key(custody, PII_KEY, 1, PASSPHRASE)
    assert bytes.fromhex(match[2]) == openssl_hmac_sm3(key, ID.encode())
    assert match[2] != sm3(ID.encode()).hex()


def test_stable_per_key_version_and_across_processes(tmp_path: Path) -> None:
    custody = keystore(tmp_path / "ks")
    first = PiiDigests(custody)
    assert first(ID) == first(ID)
    assert first(ID) != first(ID[:-1] + "X")
    assert first("张三") != first("张四")
    # another process opening the same keystore gets the same digest
    assert PiiDigests(keystore(tmp_path / "ks"))(ID) == first(ID)


def test_different_keys_give_different_digests(tmp_path: Path) -> None:
    one, two = PiiDigests(keystore(tmp_path / "a")), PiiDigests(keystore(tmp_path / "b"))
    assert LABEL.match(one(ID))[2] != LABEL.match(two(ID))[2]  # type: ignore[index]
    same_store = keystore(tmp_path / "a")
    assert PiiDigests(same_store, key_name="other.pii-hmac")(ID).split(":")[2] != one(ID).split(":")[2]


def test_rotation_labels_the_new_version_and_search_finds_both(tmp_path: Path) -> None:
    custody = keystore(tmp_path / "ks")
    digests = PiiDigests(custody)
    old = digests(ID)
    custody.rotate(PII_KEY)
    new = digests(ID)  # the cached handle is dropped when the key file changes
    assert old.startswith("hmac-sm3:v1:") and new.startswith("hmac-sm3:v2:")
    assert old.split(":")[2] != new.split(":")[2]
    assert digests.all_versions(ID) == [new, old]
    custody.disable(PII_KEY, 2)
    assert digests(ID) == old
    assert digests.all_versions(ID) == [old]


def test_created_once_under_concurrency(tmp_path: Path) -> None:
    root = tmp_path / "ks"
    keystore(root)  # header written once, before the threads
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(PiiDigests(keystore(root))(ID))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert [v.version for v in keystore(root).versions(PII_KEY)] == [1]


def test_a_signing_key_under_the_name_is_refused(tmp_path: Path) -> None:
    custody = keystore(tmp_path / "ks")
    custody.create(PII_KEY, KeyAlgorithm.SM2)
    with pytest.raises(KeyWrongType):
        PiiDigests(custody)(ID)


def test_scheme_of_stored_digests(tmp_path: Path) -> None:
    keyed = PiiDigests(keystore(tmp_path / "ks"))(ID)
    found = scheme_of(keyed)
    assert (found.scheme, found.key_version, found.hex) == ("hmac-sm3", 1, keyed.split(":")[2])
    legacy = sm3(ID.encode()).hex()  # what events written before the keyed scheme carry
    assert scheme_of(legacy) == StoredDigest("sm3", None, legacy)
    for bad in (ID, "", "hmac-sm3:v0:" + "0" * 64, "hmac-sm3:v1:" + "0" * 63, legacy.upper(), "sm3:" + legacy):
        with pytest.raises(ValueError):
            scheme_of(bad)
