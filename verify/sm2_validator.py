"""SM2 for pyhanko-certvalidator: `cryptography` cannot load SM2 keys, so every pyHanko
ValidationContext gets this validator (certificate paths, CRLs, OCSP and CMS all go through it).

It also enforces what pyHanko cannot for a mechanism it does not know: SM2 keys sign only with
SM2-with-SM3, and SM2-with-SM3 is only accepted from SM2 keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

from asn1crypto import algos, keys
from cryptography.exceptions import InvalidSignature
from pyhanko_certvalidator.context import ValidationContext
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
)

import gm.asn1  # noqa: F401  (registers SM2 / SM3 with asn1crypto)
from gm import oids, sm2

# (key SPKI, algorithm, signature, SHA-256 of the data, prehashed, contextual digest): one remembered answer
_Question = tuple[bytes, bytes, bytes, bytes, bool, str | None]


class SM2SignatureValidator(DefaultSignatureValidator):
    """`cache_keys`: SPKIs (DER) of trusted CA keys whose verified signatures may be remembered."""

    def __init__(self, sm2_id: bytes = sm2.DEFAULT_ID, cache_keys: frozenset[bytes] = frozenset()) -> None:
        self.sm2_id = sm2_id
        self.cache_keys = cache_keys
        self._verified: dict[_Question, bool] = {}

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        is_sm2_mechanism = signature_algorithm["algorithm"].dotted == oids.SM2_WITH_SM3
        is_sm2_key = sm2.is_sm2_spki(public_key_info)
        spki = public_key_info.dump()
        # the algorithm and the context belong to the question (an OCSP response's algorithm lies outside
        # what is signed): a remembered answer is reused only for exactly the same question
        key = (
            (spki, signature_algorithm.dump(), bytes(signature), hashlib.sha256(signed_data).digest(),
             context.prehashed, context.contextual_md_algorithm)
            if spki in self.cache_keys
            else None
        )  # fmt: skip
        if key is not None and key in self._verified:
            return
        if not (is_sm2_mechanism or is_sm2_key):
            super().validate_signature(signature, signed_data, public_key_info, signature_algorithm, context)
            self._remember(key)
            return
        if not (is_sm2_mechanism and is_sm2_key):
            raise InvalidSignature("SM2 keys sign only with SM2-with-SM3, and only SM2 keys do")
        if context.prehashed:
            raise InvalidSignature("SM2 cannot be checked over a bare digest: Z_A must be hashed in")
        md = context.contextual_md_algorithm
        if md is not None and md != "sm3":
            raise InvalidSignature(f"SM2-with-SM3 signature over a {md} message digest")
        try:
            sm2_key = sm2.SM2PublicKey.from_spki(spki)
        except sm2.InvalidKey as exc:
            raise InvalidSignature(str(exc)) from None
        if not sm2_key.verify(signature, signed_data, self.sm2_id):
            raise InvalidSignature("SM2 signature does not verify")
        self._remember(key)

    def _remember(self, key: _Question | None) -> None:
        if key is not None:
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[key] = True


class OCSPResponderContext(ValidationContext):
    """pyhanko-certvalidator (0.33) checks a delegated OCSP responder carrying id-pkix-ocsp-nocheck in a
    fresh ValidationContext built without the caller's signature validator, so SM2 responder
    certificates fail there with "curve not supported". verify/library_patches.py makes this the
    ValidationContext of `pyhanko_certvalidator.revinfo.validate_ocsp`, so that one context gets our
    validator; nothing else changes (it is the only ValidationContext the library builds internally)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("signature_validator", SM2SignatureValidator())
        super().__init__(*args, **kwargs)
