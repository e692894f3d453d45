"""Object identifiers of the Chinese commercial-cryptography standards (GM/T 0006, GB/T 35275), and ours."""

import os
import re

SM2_CURVE = "1.2.156.10197.1.301"
SM2_ENCRYPTION = "1.2.156.10197.1.301.3"
SM3 = "1.2.156.10197.1.401"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM4 = "1.2.156.10197.1.104"

# GM/T 0010 / GB/T 35275 PKCS#7-style content types
GM_PKCS7 = "1.2.156.10197.6.1.4.2"
GM_DATA = GM_PKCS7 + ".1"
GM_SIGNED_DATA = GM_PKCS7 + ".2"

ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SECP256R1 = "1.2.840.10045.3.1.7"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"

# CMS attributes
ID_AA_SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"  # RFC 3161 appendix A

# -- Our own OIDs: one arc, configurable -----------------------------------------------------------
# Everything trustseal writes into documents and certificates hangs off ARC, a private-enterprise arc
# `1.3.6.1.4.1.<PEN>`. The demo uses RFC 5612's documentation number 32473 (the operator sets
# TRUSTSEAL_OID_ARC to its own). Never `2.25.<uuid>`: pkilint and GmSSL refuse arcs over 32 bits.
# Verifiers recognise every arc ever used (KNOWN_ARCS), so old documents keep verifying.
DEMO_ARC = "1.3.6.1.4.1.32473"
_PEN_ARC = re.compile(r"1\.3\.6\.1\.4\.1\.([1-9][0-9]{0,9})")


def _arc(value: str) -> str:
    match = _PEN_ARC.fullmatch(value)
    if match is None or int(match.group(1)) >= 2**32:
        raise ValueError(f"TRUSTSEAL_OID_ARC must be 1.3.6.1.4.1.<PEN> with PEN < 2^32, not {value!r}")
    return value


ARC = _arc(os.environ.get("TRUSTSEAL_OID_ARC", DEMO_ARC))
KNOWN_ARCS = tuple(dict.fromkeys((ARC, DEMO_ARC)))
IS_DEMO_ARC = ARC == DEMO_ARC

# .1 certificate policies, .2 CMS attributes, .3 timestamp policies, .4 extended key usages
POLICY_DEMO = f"{ARC}.1.1"
SESEAL_ATTRIBUTE = f"{ARC}.2.1"  # the applied SESeal, a signed CMS attribute
TSA_POLICY = f"{ARC}.3.1"
EKU_SEAL_MAKER = f"{ARC}.4.1"  # a seal maker (制章者): signs SESeal structures
EKU_TRUST_LIST_SIGNER = f"{ARC}.4.2"  # signs the cross-region trust list


def under_known_arcs(suffix: str) -> frozenset[str]:
    """The OID `<arc>.<suffix>` under every arc ever used: what a verifier accepts."""
    return frozenset(f"{arc}.{suffix}" for arc in KNOWN_ARCS)


SESEAL_ATTRIBUTES = under_known_arcs("2.1")
EKU_SEAL_MAKERS = under_known_arcs("4.1")
EKU_TRUST_LIST_SIGNERS = under_known_arcs("4.2")
