"""ctypes glue to Botan 2's C FFI (Debian `libbotan-2-19`): the constant-time SM2 backend.

Botan blinds its scalar multiplications and draws SM2 nonces from the system RNG, which is why
it is the signing backend (see README for the measurements). Only `gm.sm2` uses this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LIB_NAMES = ("libbotan-2.so.19", "botan-2")

_c_void_p = ctypes.c_void_p
_c_size_t = ctypes.c_size_t
_c_char_p = ctypes.c_char_p

BOTAN_FFI_SUCCESS = 0
BOTAN_FFI_INVALID_VERIFIER = 1
DER_SIGNATURE_FLAG = 1


class BotanUnavailable(RuntimeError):
    """The Botan shared library is not installed on this machine."""


def _load() -> ctypes.CDLL:
    for name in _LIB_NAMES:
        path = ctypes.util.find_library(name) if "/" not in name and ".so" not in name else name
        if not path:
            continue
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    raise BotanUnavailable("libbotan-2.so.19 not found: install the Debian package libbotan-2-19")


def _declare(lib: ctypes.CDLL) -> None:
    sigs: dict[str, list[type]] = {
        "botan_rng_init": [ctypes.POINTER(_c_void_p), _c_char_p],
        "botan_mp_init": [ctypes.POINTER(_c_void_p)],
        "botan_mp_destroy": [_c_void_p],
        "botan_mp_from_bin": [_c_void_p, _c_char_p, _c_size_t],
        "botan_mp_to_bin": [_c_void_p, ctypes.c_char_p],
        "botan_mp_num_bytes": [_c_void_p, ctypes.POINTER(_c_size_t)],
        "botan_privkey_create": [ctypes.POINTER(_c_void_p), _c_char_p, _c_char_p, _c_void_p],
        "botan_privkey_load_sm2": [ctypes.POINTER(_c_void_p), _c_void_p, _c_char_p],
        "botan_privkey_destroy": [_c_void_p],
        "botan_privkey_get_field": [_c_void_p, _c_void_p, _c_char_p],
        "botan_privkey_check_key": [_c_void_p, _c_void_p, ctypes.c_uint32],
        "botan_pubkey_load_sm2": [ctypes.POINTER(_c_void_p), _c_void_p, _c_void_p, _c_char_p],
        "botan_pubkey_check_key": [_c_void_p, _c_void_p, ctypes.c_uint32],
        "botan_pubkey_destroy": [_c_void_p],
        "botan_pk_op_sign_create": [ctypes.POINTER(_c_void_p), _c_void_p, _c_char_p, ctypes.c_uint32],
        "botan_pk_op_sign_update": [_c_void_p, _c_char_p, _c_size_t],
        "botan_pk_op_sign_finish": [_c_void_p, _c_void_p, _c_char_p, ctypes.POINTER(_c_size_t)],
        "botan_pk_op_sign_destroy": [_c_void_p],
        "botan_pk_op_verify_create": [ctypes.POINTER(_c_void_p), _c_void_p, _c_char_p, ctypes.c_uint32],
        "botan_pk_op_verify_update": [_c_void_p, _c_char_p, _c_size_t],
        "botan_pk_op_verify_finish": [_c_void_p, _c_char_p, _c_size_t],
        "botan_pk_op_verify_destroy": [_c_void_p],
    }
    for name, argtypes in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_tls = threading.local()


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                loaded = _load()
                _declare(loaded)
                _lib = loaded
    return _lib


def available() -> bool:
    try:
        lib()
    except BotanUnavailable:
        return False
    return True


def rng() -> ctypes.c_void_p:
    """The system CSPRNG (getrandom), one handle per thread: Botan RNG objects are not thread-safe."""
    handle = getattr(_tls, "rng", None)
    if handle is None:
        handle = _c_void_p()
        _check(lib().botan_rng_init(ctypes.byref(handle), b"system"), "rng_init")
        _tls.rng = handle
    return handle


class BotanError(Exception):
    pass


def _check(rc: int, what: str) -> None:
    if rc != BOTAN_FFI_SUCCESS:
        raise BotanError(f"botan {what} failed ({rc})")


@contextmanager
def mp(value: bytes | None = None) -> Iterator[ctypes.c_void_p]:
    handle = _c_void_p()
    _check(lib().botan_mp_init(ctypes.byref(handle)), "mp_init")
    try:
        if value is not None:
            _check(lib().botan_mp_from_bin(handle, value, len(value)), "mp_from_bin")
        yield handle
    finally:
        lib().botan_mp_destroy(handle)


def mp_bytes(handle: ctypes.c_void_p, size: int) -> bytes:
    n = _c_size_t()
    _check(lib().botan_mp_num_bytes(handle, ctypes.byref(n)), "mp_num_bytes")
    if n.value > size:
        raise BotanError("integer larger than expected")
    buf = ctypes.create_string_buffer(max(n.value, 1))
    _check(lib().botan_mp_to_bin(handle, buf), "mp_to_bin")
    return buf.raw[: n.value].rjust(size, b"\0")


# Botan reads "userid,hash". With hash "Raw" the input is the 32-byte e = SM3(Z_A || M) that
# gm.sm2 computes itself, so any distinguishing ID works (Botan would turn an empty one into the
# default) and a large document is hashed once. The userid is then unused.
_RAW = b"unused,Raw"


class _Op:
    """A Botan sign/verify operation reused by one thread (ops are not thread-safe, and building a
    verification op costs a point precomputation), destroyed with that thread's storage."""

    __slots__ = ("destroy", "handle")

    def __init__(self, handle: ctypes.c_void_p, destroy: str) -> None:
        self.handle = handle
        self.destroy = destroy

    def __del__(self) -> None:
        if _lib is not None and self.handle:
            getattr(_lib, self.destroy)(self.handle)
            self.handle = _c_void_p()


class PrivateKey:
    """Owns a Botan SM2 private key handle."""

    def __init__(self, handle: ctypes.c_void_p) -> None:
        self._handle = handle
        self._ops = threading.local()

    def _op(self) -> ctypes.c_void_p:
        op: _Op | None = getattr(self._ops, "op", None)
        if op is None:
            handle = _c_void_p()
            _check(
                lib().botan_pk_op_sign_create(ctypes.byref(handle), self._handle, _RAW, DER_SIGNATURE_FLAG),
                "sign_create",
            )
            op = _Op(handle, "botan_pk_op_sign_destroy")
            self._ops.op = op
        return op.handle

    @classmethod
    def generate(cls) -> PrivateKey:
        handle = _c_void_p()
        _check(lib().botan_privkey_create(ctypes.byref(handle), b"SM2_Sig", b"sm2p256v1", rng()), "keygen")
        return cls(handle)

    @classmethod
    def from_scalar(cls, scalar: bytes) -> PrivateKey:
        handle = _c_void_p()
        with mp(scalar) as d:
            _check(lib().botan_privkey_load_sm2(ctypes.byref(handle), d, b"sm2p256v1"), "load private key")
        key = cls(handle)
        if lib().botan_privkey_check_key(handle, rng(), 0) != BOTAN_FFI_SUCCESS:
            raise ValueError("invalid SM2 private key")
        return key

    def field(self, name: bytes, size: int = 32) -> bytes:
        with mp() as out:
            _check(lib().botan_privkey_get_field(out, self._handle, name), "get_field")
            return mp_bytes(out, size)

    def sign_digest(self, e: bytes) -> bytes:
        op = self._op()
        _check(lib().botan_pk_op_sign_update(op, e, len(e)), "sign_update")
        buf = ctypes.create_string_buffer(80)
        size = _c_size_t(80)
        _check(lib().botan_pk_op_sign_finish(op, rng(), buf, ctypes.byref(size)), "sign_finish")
        return buf.raw[: size.value]

    def __del__(self) -> None:
        if _lib is not None and self._handle:
            _lib.botan_privkey_destroy(self._handle)
            self._handle = _c_void_p()


class PublicKey:
    def __init__(self, handle: ctypes.c_void_p) -> None:
        self._handle = handle
        self._ops = threading.local()

    def _op(self) -> ctypes.c_void_p:
        op: _Op | None = getattr(self._ops, "op", None)
        if op is None:
            handle = _c_void_p()
            _check(
                lib().botan_pk_op_verify_create(ctypes.byref(handle), self._handle, _RAW, DER_SIGNATURE_FLAG),
                "verify_create",
            )
            op = _Op(handle, "botan_pk_op_verify_destroy")
            self._ops.op = op
        return op.handle

    @classmethod
    def from_xy(cls, x: bytes, y: bytes) -> PublicKey:
        handle = _c_void_p()
        with mp(x) as px, mp(y) as py:
            rc = lib().botan_pubkey_load_sm2(ctypes.byref(handle), px, py, b"sm2p256v1")
        if rc != BOTAN_FFI_SUCCESS:
            raise ValueError("point is not on the SM2 curve")
        # The caller (gm.sm2) has checked that the point lies on the curve; SM2's cofactor is 1,
        # so that is the whole validation. Botan's check_key would add a scalar multiplication.
        return cls(handle)

    def verify_digest(self, signature_der: bytes, e: bytes) -> bool:
        op = self._op()
        _check(lib().botan_pk_op_verify_update(op, e, len(e)), "verify_update")
        rc = lib().botan_pk_op_verify_finish(op, signature_der, len(signature_der))
        if rc == BOTAN_FFI_SUCCESS:
            return True
        if rc == BOTAN_FFI_INVALID_VERIFIER:
            return False
        return False  # malformed signature encodings count as invalid, never as an exception

    def __del__(self) -> None:
        if _lib is not None and self._handle:
            _lib.botan_pubkey_destroy(self._handle)
            self._handle = _c_void_p()
