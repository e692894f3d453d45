from gm import sm2


def test_sign_verify_round_trip() -> None:
    key = sm2.SM2PrivateKey.generate()
    sig = key.sign(b"message")
    assert key.public_key.verify(sig, b"message")
    assert not key.public_key.verify(sig, b"messagf")
    assert not key.public_key.verify(sig, b"message", b"another-id")
