"""The SM2 signature hook for pyhanko-certvalidator: SM2 only with SM2-with-SM3, and the OCSP shim."""

from __future__ import annotations

import pytest
from asn1crypto import algos, keys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko_certvalidator.sig_validate import SignatureValidationContext

from gm import sm2
from verify.sm2_validator import SM2SignatureValidator

SM2_SM3 = algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
ECDSA = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})


def test_sm2_signatures() -> None:
    key = sm2.SM2PrivateKey.generate()
    spki = keys.PublicKeyInfo.load(key.public_key.spki_der())
    validator = SM2SignatureValidator()
    validator.validate_signature(key.sign(b"data"), b"data", spki, SM2_SM3)
    with pytest.raises(InvalidSignature):
        validator.validate_signature(key.sign(b"data"), b"other", spki, SM2_SM3)
    with pytest.raises(InvalidSignature):  # an SM2 key under an ECDSA label
        validator.validate_signature(key.sign(b"data"), b"data", spki, ECDSA)
    with pytest.raises(InvalidSignature):  # SM2 cannot be checked over a bare digest
        validator.validate_signature(
            key.sign(b"data"), b"data", spki, SM2_SM3, SignatureValidationContext(prehashed=True)
        )
    with pytest.raises(InvalidSignature):  # SM2-with-SM3 over a SHA-256 message digest
        validator.validate_signature(
            key.sign(b"data"), b"data", spki, SM2_SM3, SignatureValidationContext(contextual_md_algorithm="sha256")
        )


def test_a_remembered_signature_answers_only_the_same_question() -> None:
    """With the key among the CA keys whose answers are remembered: the same signature under another
    algorithm label or another validation context is checked afresh (and fails)."""
    key = sm2.SM2PrivateKey.generate()
    spki = keys.PublicKeyInfo.load(key.public_key.spki_der())
    validator = SM2SignatureValidator(cache_keys=frozenset({spki.dump()}))
    signature = key.sign(b"data")
    for _ in range(2):
        validator.validate_signature(signature, b"data", spki, SM2_SM3)
    with pytest.raises(InvalidSignature):
        validator.validate_signature(signature, b"data", spki, ECDSA)
    with pytest.raises(InvalidSignature):
        validator.validate_signature(signature, b"data", spki, SM2_SM3, SignatureValidationContext(prehashed=True))
    with pytest.raises(InvalidSignature):
        validator.validate_signature(
            signature, b"data", spki, SM2_SM3, SignatureValidationContext(contextual_md_algorithm="sha256")
        )


def test_other_algorithms_pass_through() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    spki = keys.PublicKeyInfo.load(
        p256.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    validator = SM2SignatureValidator()
    validator.validate_signature(p256.sign(b"data", ec.ECDSA(hashes.SHA256())), b"data", spki, ECDSA)
    with pytest.raises(InvalidSignature):
        validator.validate_signature(p256.sign(b"data", ec.ECDSA(hashes.SHA256())), b"datb", spki, ECDSA)
    with pytest.raises(InvalidSignature):  # a P-256 key under the SM2 label
        validator.validate_signature(p256.sign(b"data", ec.ECDSA(hashes.SHA256())), b"data", spki, SM2_SM3)


def test_ocsp_responder_context_gets_the_sm2_validator() -> None:
    from pyhanko_certvalidator.revinfo import validate_ocsp

    context = validate_ocsp.ValidationContext(trust_roots=[], allow_fetching=False)  # type: ignore[attr-defined]
    assert isinstance(context.sig_validator, SM2SignatureValidator)
