"""Object identifiers of the Chinese commercial-cryptography standards (GM/T 0006, GB/T 35275)."""

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
SESEAL_ATTRIBUTE = "1.3.6.1.4.1.32473.2.1"  # trustseal: the applied SESeal, a signed attribute (RFC 5612 arc)
