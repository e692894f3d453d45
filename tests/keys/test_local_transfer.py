"""Moving a key between local keystores (keys/local.py `copy_key_to`, `remove`), as the offline root's
ceremony does: every version keeps its number and public key, opens only under the target's passphrase,
signs the same; a removed key is gone from the source, cached handles included."""

from __future__ import annotations

from pathlib import Path

import pytest

from gm.signatures import verify_signature
from keys.custody import KeyAlgorithm, KeyExists, KeyNotFound
from keys.local import LocalKeystore


def _store(path: Path, passphrase: str) -> LocalKeystore:
    return LocalKeystore(path, passphrase=passphrase, scrypt_n=2**10)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.SM2, KeyAlgorithm.P256])
def test_copy_keeps_every_version_and_remove_deletes_it(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    from asn1crypto import algos

    source, target = _store(tmp_path / "online", "online"), _store(tmp_path / "offline", "offline")
    source.create("root", algorithm)
    source.rotate("root")
    source.signer("root@2")  # a cached handle, which the removal must not leave usable
    before = source.versions("root")
    copied = source.copy_key_to("root", target)
    assert [(v.version, v.public_key_der, v.enabled) for v in copied] == [
        (v.version, v.public_key_der, v.enabled) for v in before
    ]
    assert source.copy_key_to("root", target) == copied  # a re-run after an interruption changes nothing
    name = "sm2_sm3" if algorithm is KeyAlgorithm.SM2 else "sha256_ecdsa"
    signature = target.signer("root@2").sign(b"tbs")
    assert verify_signature(
        before[1].public_key_der, algos.SignedDigestAlgorithm({"algorithm": name}), signature, b"tbs"
    )
    with pytest.raises(Exception, match=r"wrong key-encryption key|check value"):
        _store(tmp_path / "offline", "online")  # the online passphrase does not open it

    source.remove("root")
    assert "root" not in source.names() and not (tmp_path / "online" / "root.key.json").exists()
    with pytest.raises(KeyNotFound):
        source.signer("root@2")  # the cached handle is gone with the file
    with pytest.raises(KeyNotFound):
        source.remove("root")


def test_copy_refuses_another_key_of_the_same_name(tmp_path: Path) -> None:
    source, target = _store(tmp_path / "a", "a"), _store(tmp_path / "b", "b")
    source.create("root", KeyAlgorithm.SM2)
    target.create("root", KeyAlgorithm.SM2)
    with pytest.raises(KeyExists):
        source.copy_key_to("root", target)
    assert "root" in source.names()
