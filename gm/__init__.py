"""National (GM/T) cryptography: SM2, SM3, SM4, their OIDs and ASN.1 formats. No keys kept, no I/O."""

from gm import asn1 as _asn1  # noqa: F401  (register SM OIDs with asn1crypto on first import)
