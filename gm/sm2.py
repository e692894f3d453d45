"""SM2 signatures (GB/T 32918.2, GB/T 35276) behind one small interface.

Signing runs in Botan (constant-time, CSPRNG nonces). Verification handles public data only and
runs in `gm/_sm2verify.c` (u1*G + u2*P with a precomputed table for G: ~2x OpenSSL 3 here), or in
Botan where that extension was not built. This module adds what a careful caller needs around
them: strict DER for signatures, r/s range checks, point validation, and the distinguishing ID
(default `1234567812345678`) kept explicit on every call.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

from asn1crypto import algos, keys

from gm import _botan, oids
from gm import asn1 as _asn1  # noqa: F401  (registers the SM OIDs)
from gm.sm3 import sm3

try:
    from gm import _sm2verify
except ImportError:  # built by `pip install` (gcc + Python headers); without it Botan verifies
    _sm2verify = None  # type: ignore[assignment]

DEFAULT_ID = b"1234567812345678"

# Keys verified again and again (CAs, TSAs, seal makers) get a precomputed table in C once they
# are clearly hot: ~2x faster verification for 90 KB each. A table costs about four plain
# verifications to build and pays for itself after eight uses; a key must earn its 16 uses
# again after its table is evicted, which bounds the loss when more than _MAX_TABLES hot keys
# rotate to +25 %. Tables are derived from public keys only.
_TABLE_AFTER_USES = 16
_MAX_TABLES = 128
_tables: OrderedDict[bytes, bytes] = OrderedDict()
_uses: dict[bytes, int] = {}
_tables_lock = threading.Lock()


def _key_table(point: bytes, x: bytes, y: bytes) -> bytes | None:
    table = _tables.get(point)
    if table is not None:
        with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
            _tables.move_to_end(point)  # least recently used goes first
        return table
    uses = _uses.get(point, 0) + 1
    if uses < _TABLE_AFTER_USES:
        if len(_uses) > 8192:
            _uses.clear()
        _uses[point] = uses
        return None
    table = _sm2verify.key_table(x, y)
    with _tables_lock:
        _tables[point] = table
        _uses.pop(point, None)
        while len(_tables) > _MAX_TABLES:
            _tables.popitem(last=False)
    return table


P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

MAX_ID_BYTES = 8191  # ENTL is a 16-bit count of bits


class InvalidKey(ValueError):
    """Key material that is not a valid SM2 key."""


class InvalidSignatureEncoding(ValueError):
    """A signature that is not a strict DER SEQUENCE { r, s } with 1 <= r, s < n."""


def _int32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def z_value(point: bytes, ident: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA), GB/T 32918.2 §5.5."""
    if len(ident) > MAX_ID_BYTES:
        raise ValueError("SM2 ID longer than 8191 bytes")
    x, y = _split_point(point)
    entl = (len(ident) * 8).to_bytes(2, "big")
    return sm3(entl + ident + _int32(A) + _int32(B) + _int32(GX) + _int32(GY) + x + y)


def _split_point(point: bytes) -> tuple[bytes, bytes]:
    if len(point) != 65 or point[0] != 4:
        raise InvalidKey("SM2 public key must be a 65-byte uncompressed point")
    return point[1:33], point[33:]


def _check_on_curve(x: bytes, y: bytes) -> None:
    """Affine coordinates in [0, p) satisfying y^2 = x^3 + ax + b. With cofactor 1 this makes the
    point a valid public key (the point at infinity has no affine encoding)."""
    xi, yi = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    if xi >= P or yi >= P or (yi * yi - (xi * xi * xi + A * xi + B)) % P != 0:
        raise InvalidKey("point is not on the SM2 curve")


def encode_signature(r: int, s: int) -> bytes:
    return algos.DSASignature({"r": r, "s": s}).dump()


def _der_integer(der: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(der) or der[pos] != 0x02:
        raise InvalidSignatureEncoding("expected INTEGER")
    length = der[pos + 1]
    if length == 0 or length > 33 or pos + 2 + length > len(der):  # short-form lengths only
        raise InvalidSignatureEncoding("bad INTEGER length")
    body = der[pos + 2 : pos + 2 + length]
    if body[0] & 0x80:
        raise InvalidSignatureEncoding("negative INTEGER")
    if body[0] == 0 and length > 1 and not body[1] & 0x80:
        raise InvalidSignatureEncoding("INTEGER not minimally encoded")
    return int.from_bytes(body, "big"), pos + 2 + length


def decode_signature(der: bytes) -> tuple[int, int]:
    """Strict DER: SEQUENCE { r INTEGER, s INTEGER }, nothing trailing, both in [1, n-1].

    Hand-written because it sits on every verification: asn1crypto's strict load costs more than
    a tenth of the SM2 operation itself.
    """
    if not isinstance(der, bytes | bytearray) or len(der) < 8 or len(der) > 72:
        raise InvalidSignatureEncoding("not a DER SM2 signature")
    if der[0] != 0x30 or der[1] != len(der) - 2:
        raise InvalidSignatureEncoding("not a DER SEQUENCE of the right length")
    r, pos = _der_integer(der, 2)
    s, pos = _der_integer(der, pos)
    if pos != len(der):
        raise InvalidSignatureEncoding("trailing bytes in signature")
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignatureEncoding("r or s out of range")
    return r, s


@dataclass(frozen=True)
class SM2PublicKey:
    point: bytes  # 0x04 || x || y

    def __post_init__(self) -> None:
        x, y = _split_point(self.point)
        _check_on_curve(x, y)
        object.__setattr__(self, "_xy", (x, y))
        object.__setattr__(self, "_z_cache", {})
        object.__setattr__(self, "_botan_key", None)

    def _botan(self) -> _botan.PublicKey:
        key: _botan.PublicKey | None = self._botan_key  # type: ignore[attr-defined]
        if key is None:
            x, y = self._xy  # type: ignore[attr-defined]
            try:
                key = _botan.PublicKey.from_xy(x, y)
            except ValueError as exc:
                raise InvalidKey(str(exc)) from None
            object.__setattr__(self, "_botan_key", key)
        return key

    @classmethod
    def from_spki(cls, der: bytes) -> SM2PublicKey:
        """From a DER SubjectPublicKeyInfo: id-ecPublicKey with the SM2 curve as parameter."""
        try:
            info = keys.PublicKeyInfo.load(der, strict=True)
            algorithm = info["algorithm"]
            if algorithm["algorithm"].dotted != oids.ID_EC_PUBLIC_KEY:
                raise InvalidKey("not an EC public key")
            params = algorithm["parameters"]
            if not isinstance(params, keys.ECDomainParameters) or params.name != "named":
                raise InvalidKey("EC key without a named curve")
            if params.chosen.dotted != oids.SM2_CURVE:
                raise InvalidKey("EC key is not on the SM2 curve")
            if not info["public_key"].contents:  # an empty BIT STRING has no unused-bits octet
                raise InvalidKey("empty public key BIT STRING")
            point = info["public_key"].native
        # KeyError: an unknown algorithm OID; IndexError: asn1crypto reading a truncated value
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise InvalidKey(f"malformed SubjectPublicKeyInfo: {exc}") from None
        return cls(bytes(point))

    def spki(self) -> keys.PublicKeyInfo:
        return keys.PublicKeyInfo(
            {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": keys.ECDomainParameters(name="named", value="sm2p256v1"),
                },
                "public_key": self.point,
            }
        )

    def spki_der(self) -> bytes:
        return self.spki().dump()

    def digest(self, data: bytes, ident: bytes = DEFAULT_ID) -> bytes:
        """e = SM3(Z_A || data): what SM2 actually signs."""
        return sm3(self.z(ident) + data)

    def z(self, ident: bytes = DEFAULT_ID) -> bytes:
        cache: dict[bytes, bytes] = self._z_cache  # type: ignore[attr-defined]
        value = cache.get(ident)
        if value is None:
            value = z_value(self.point, ident)
            if len(cache) < 8:
                cache[ident] = value
        return value

    def verify(self, signature: bytes, data: bytes, ident: bytes = DEFAULT_ID, *, one_shot: bool = False) -> bool:
        """True only for a valid, strictly encoded signature over `data` with this ID."""
        return self.verify_digest(signature, self.digest(data, ident), one_shot=one_shot)

    def verify_digest(self, signature: bytes, e: bytes, *, one_shot: bool = False) -> bool:
        """Check a signature against a precomputed e = SM3(Z_A || M). `one_shot`: a key that will
        not be seen again (a CSR's): never counted towards a precomputed table."""
        if len(e) != 32:
            return False
        try:
            r, s = decode_signature(signature)
        except InvalidSignatureEncoding:
            return False
        if _sm2verify is None:
            return self._botan().verify_digest(bytes(signature), e)
        return self._verify_rs(r, s, e, one_shot)

    def _verify_rs(self, r: int, s: int, e: bytes, one_shot: bool) -> bool:
        """GB/T 32918.2 §7.1 B5-B7 for r, s already in [1, n-1]."""
        t = (r + s) % N
        if t == 0:
            return False
        x, y = self._xy  # type: ignore[attr-defined]
        table = None if one_shot else _key_table(self.point, x, y)
        u1, u2 = s.to_bytes(32, "big"), t.to_bytes(32, "big")
        x1 = _sm2verify.combine(x, y, u1, u2) if table is None else _sm2verify.combine_table(table, u1, u2)
        return x1 is not None and (int.from_bytes(e, "big") + int.from_bytes(x1, "big")) % N == r

    def verify_with_botan(self, signature: bytes, e: bytes) -> bool:
        """The same check through Botan: the independent implementation the tests compare against."""
        try:
            decode_signature(signature)
        except InvalidSignatureEncoding:
            return False
        return len(e) == 32 and self._botan().verify_digest(bytes(signature), e)


@functools.lru_cache(maxsize=1024)
def public_key(point: bytes) -> SM2PublicKey:
    """The key object for a point, made once: the curve check and Z_A are not redone per signature."""
    return SM2PublicKey(point)


class SM2PrivateKey:
    """An SM2 private key. Only `keys/` custody holds these; `repr` never shows the secret."""

    __slots__ = ("_backend", "_public")

    def __init__(self, backend: _botan.PrivateKey) -> None:
        self._backend = backend
        x = backend.field(b"public_x")
        y = backend.field(b"public_y")
        self._public = SM2PublicKey(b"\x04" + x + y)

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(_botan.PrivateKey.generate())

    @classmethod
    def from_scalar(cls, scalar: bytes) -> SM2PrivateKey:
        d = int.from_bytes(scalar, "big")
        if len(scalar) != 32 or not 1 <= d < N - 1:
            raise InvalidKey("SM2 private scalar must be 32 bytes in [1, n-2]")
        try:
            return cls(_botan.PrivateKey.from_scalar(scalar))
        except (ValueError, _botan.BotanError):
            raise InvalidKey("invalid SM2 private key") from None

    def private_scalar(self) -> bytes:
        """The 32-byte secret, for custody to encrypt; nothing else should call this."""
        return self._backend.field(b"x")

    @property
    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes, ident: bytes = DEFAULT_ID) -> bytes:
        """DER SEQUENCE { r, s } over SM3(Z_A || data), with a fresh CSPRNG nonce."""
        return self.sign_digest(self._public.digest(data, ident))

    def sign_digest(self, e: bytes) -> bytes:
        """Sign a precomputed e = SM3(Z_A || M) (see SM2PublicKey.digest)."""
        if len(e) != 32:
            raise ValueError("SM2 digest must be 32 bytes")
        return self._backend.sign_digest(e)

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public.point[:9].hex()}…)"


def is_sm2_spki(info: keys.PublicKeyInfo) -> bool:
    algorithm = info["algorithm"]
    if algorithm["algorithm"].dotted != oids.ID_EC_PUBLIC_KEY:
        return False
    params = algorithm["parameters"]
    return (
        isinstance(params, keys.ECDomainParameters)
        and params.name == "named"
        and (params.chosen.dotted == oids.SM2_CURVE)
    )
