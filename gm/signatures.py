"""Check a signature given a SubjectPublicKeyInfo and an algorithm identifier, whatever the family.

SM2 goes to `gm.sm2` (standard ID unless told otherwise); ECDSA and RSA to `cryptography`. Used for
CSR proof of possession and by verifiers; it only ever answers True or False for well-formed keys.
"""

from __future__ import annotations

from asn1crypto import algos, keys
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gm import oids, sm2

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class UnsupportedSignatureAlgorithm(ValueError):
    pass


def verify_signature(
    spki_der: bytes,
    algorithm: algos.SignedDigestAlgorithm,
    signature: bytes,
    data: bytes,
    sm2_id: bytes = sm2.DEFAULT_ID,
) -> bool:
    oid = algorithm["algorithm"].dotted
    try:
        info = keys.PublicKeyInfo.load(spki_der)
        info["algorithm"]["algorithm"].dotted  # noqa: B018  (an unknown key algorithm fails here, not later)
        sm2.is_sm2_spki(info)
    except (ValueError, TypeError, KeyError):
        return False
    if oid == oids.SM2_WITH_SM3:
        if not sm2.is_sm2_spki(info):
            return False
        try:
            return sm2.SM2PublicKey.from_spki(spki_der).verify(signature, data, sm2_id)
        except sm2.InvalidKey:
            return False
    if sm2.is_sm2_spki(info):
        return False  # an SM2 key signs only with SM2-with-SM3
    try:
        public_key = serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm):
        return False
    try:
        name = algorithm.signature_algo
        hash_name = algorithm.hash_algo
    except (ValueError, TypeError, KeyError):  # e.g. RSASSA-PSS without parameters
        raise UnsupportedSignatureAlgorithm(oid) from None
    if hash_name not in _HASHES:
        raise UnsupportedSignatureAlgorithm(oid)
    digest = _HASHES[hash_name]()
    try:
        if name == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif name == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
        else:
            return False
    except InvalidSignature:
        return False
    return True
