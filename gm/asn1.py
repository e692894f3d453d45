"""Teach asn1crypto the SM2 / SM3 identifiers, once, in one place.

asn1crypto has a public hook for named curves only; digest and signature algorithms are
registered through the `_map` / `_reverse_map` tables, as pyhanko-certvalidator does for its own
post-quantum OIDs. Importing this module is idempotent.
"""

from asn1crypto import algos, keys

from gm import oids


def _register_map(cls: type, oid: str, name: str) -> None:
    mapping = cls._map  # type: ignore[attr-defined]
    mapping[oid] = name
    reverse = getattr(cls, "_reverse_map", None)
    if reverse is not None:
        reverse[name] = oid


def register() -> None:
    if "sm2p256v1" not in keys.NamedCurve._map.values():
        keys.NamedCurve.register("sm2p256v1", oids.SM2_CURVE, 32)
    _register_map(algos.DigestAlgorithmId, oids.SM3, "sm3")
    _register_map(algos.SignedDigestAlgorithmId, oids.SM2_WITH_SM3, "sm2_sm3")
    _register_map(algos.EncryptionAlgorithmId, oids.SM4, "sm4")


register()
