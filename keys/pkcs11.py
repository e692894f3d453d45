"""PKCS#11 custody: signing keys generated in a token (an HSM, a GM/T 0018 cipher machine with a
PKCS#11 interface, or SoftHSM2 in tests) and never leaving it.

Each key version is a key pair in the token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
CKA_EXTRACTABLE), labelled `<prefix>/<name>/v<version>`; its CKA_ID carries the label, the algorithm,
the creation time and a random tag (`trustseal/root/v1;p256;20261202T101500Z;9f3a…`). The token is
the only store: no file, no database. A P-256 version's public-key object is checked against its
private key once per process (a signature over a random digest): a swapped one is `key_tampered`.
Disabling a version clears the private key's CKA_SIGN, so the token itself refuses to sign with it, and
that flag is what `enabled` reads. A session the token drops fails the call in flight with a custody
error; the next call logs in again.

P-256: CKM_EC_KEY_PAIR_GEN on secp256r1; a signature is CKM_ECDSA over SHA-256(data) computed here,
its raw r||s turned into DER, so a handle signs exactly like the local keystore's.

SM2 is not a standard PKCS#11 mechanism (SoftHSM2 has none): a device's vendor-defined key type,
key-generation and signing mechanisms are configuration (`Sm2Mechanisms`, env
TRUSTSEAL_PKCS11_SM2_*). Without them SM2 is refused with `algorithm_not_supported`. The signing
mechanism either takes the message and computes e = SM3(Z_A || M) itself with the default ID
1234567812345678 (`message`), or takes e, which gm/sm2 computes here (`digest`).

HMAC-SM3 keys (ledger/pii.py) are 32-byte generic secrets generated in the token, private (readable
only after login) but extractable, because no PKCS#11 token here computes HMAC-SM3: the MAC is computed
in the process holding the handle, as with the Vault backend.

Writers in one process take turns; writers in several processes (PKCS#11 has no compare-and-set) are
resolved after the fact: each generates its version, then looks for twins with the same label, and
backs off (destroys its own, tries the next number) if there is one (`_add_version`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from gm import sm2
from keys import material
from keys.custody import (
    KEY_NAME,
    CustodyError,
    CustodyLocked,
    KeyAlgorithm,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyTampered,
    KeyVersion,
    KeyWrongType,
    MacHandle,
    SigningHandle,
    parse_ref,
    select,
)

P256_OID = "1.2.840.10045.3.1.7"
SM2_OID = "1.2.156.10197.1.301"
RETRIES = 8
WRITE_RETRIES = 16


class AlgorithmNotSupported(CustodyError):
    """The token (as configured) cannot hold keys of this algorithm."""

    code = "algorithm_not_supported"


class _Vanished(CustodyError):
    """An object found by a search was destroyed before it was read (a writer backing off)."""


@dataclass(frozen=True)
class Sm2Mechanisms:
    """The vendor-defined values a device uses for SM2 (see README: GM/T 0018 note)."""

    key_type: int  # CKK_ of SM2 keys
    keygen: int  # CKM_ of SM2 key-pair generation
    sign: int  # CKM_ of SM2 signing
    input: Literal["message", "digest"] = "digest"  # what the sign mechanism takes: M (device adds Z) or e

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Sm2Mechanisms | None:
        names = ("TRUSTSEAL_PKCS11_SM2_KEY_TYPE", "TRUSTSEAL_PKCS11_SM2_KEYGEN", "TRUSTSEAL_PKCS11_SM2_SIGN")
        given = [env.get(n, "").strip() for n in names]
        if not any(given):
            return None
        if not all(given):
            raise CustodyError(f"SM2 over PKCS#11 needs all of {', '.join(names)} (vendor CKK/CKM values)")
        kind = env.get("TRUSTSEAL_PKCS11_SM2_INPUT", "digest").strip()
        if kind not in ("message", "digest"):
            raise CustodyError("TRUSTSEAL_PKCS11_SM2_INPUT must be message or digest")
        try:
            values = [int(v, 0) for v in given]
        except ValueError:
            raise CustodyError("TRUSTSEAL_PKCS11_SM2_* values are integers (e.g. 0x80000101)") from None
        return cls(key_type=values[0], keygen=values[1], sign=values[2], input=kind)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pkcs11Config:
    module: str  # path to the PKCS#11 .so
    token: str  # token label
    pin: str = ""
    prefix: str = "trustseal"
    sm2: Sm2Mechanisms | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Pkcs11Config:
        env = dict(os.environ) if env is None else env
        module, token = env.get("TRUSTSEAL_PKCS11_MODULE", ""), env.get("TRUSTSEAL_PKCS11_TOKEN", "")
        if not module or not token:
            raise CustodyError("the pkcs11 keystore needs TRUSTSEAL_PKCS11_MODULE and TRUSTSEAL_PKCS11_TOKEN")
        pin = env.get("TRUSTSEAL_PKCS11_PIN", "")
        if not pin and (pin_file := env.get("TRUSTSEAL_PKCS11_PIN_FILE")):
            try:
                pin = Path(pin_file).read_text().strip()
            except OSError as exc:
                raise CustodyError(f"cannot read TRUSTSEAL_PKCS11_PIN_FILE: {exc.strerror}") from None
        if not pin:
            raise CustodyError("the pkcs11 keystore needs TRUSTSEAL_PKCS11_PIN or TRUSTSEAL_PKCS11_PIN_FILE")
        prefix = env.get("TRUSTSEAL_PKCS11_PREFIX", "trustseal")
        if not KEY_NAME.match(prefix):
            raise CustodyError("TRUSTSEAL_PKCS11_PREFIX must look like a key name")
        return cls(module=module, token=token, pin=pin, prefix=prefix, sm2=Sm2Mechanisms.from_env(env))


class _Login:
    """One logged-in R/W session per (module, token) in this process: PKCS#11 login state belongs to the
    application, so a second C_Login would only say 'already logged in'. Later keystores must present
    the same PIN; token calls are serialised by `lock` (a session is not for concurrent use)."""

    def __init__(self, session: Any, pin_digest: bytes) -> None:
        self.session = session
        self.pin_digest = pin_digest
        self.lock = threading.RLock()
        self.dead = False  # the token dropped the session (restart, removal): the next use logs in again


_logins: dict[tuple[str, str], _Login] = {}
_logins_mutex = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise CustodyError("the pkcs11 keystore needs python-pkcs11: pip install 'trustseal[hsm]'") from None
    return pkcs11


def _vendor(enum: Any, value: int, name: str) -> Any:
    """A member of python-pkcs11's IntEnum for a vendor-defined value it does not list."""
    try:
        return enum(value)
    except ValueError:
        member = int.__new__(enum, value)
        member._name_, member._value_ = name, value
        return member


def _login(config: Pkcs11Config) -> _Login:
    p = _pkcs11()
    digest = hashlib.sha256(config.pin.encode()).digest()
    key = (os.path.realpath(config.module), config.token)
    with _logins_mutex:
        existing = _logins.get(key)
        if existing is not None and not existing.dead:
            if not hmac.compare_digest(existing.pin_digest, digest):
                raise CustodyLocked(f"PKCS#11 token {config.token!r}: wrong PIN")
            return existing
        if not os.path.isfile(config.module):
            raise CustodyError(f"PKCS#11 module {config.module} does not exist")
        try:
            lib = p.lib(config.module)
        except p.PKCS11Error as exc:
            raise CustodyError(f"PKCS#11 module {config.module} cannot be loaded: {type(exc).__name__}") from None
        try:
            token = lib.get_token(token_label=config.token)
        except p.NoSuchToken:
            raise CustodyError(f"no PKCS#11 token labelled {config.token!r} in {config.module}") from None
        except p.MultipleTokensReturned:
            raise CustodyError(f"several PKCS#11 tokens are labelled {config.token!r}") from None
        except p.PKCS11Error as exc:
            raise CustodyError(f"PKCS#11 token {config.token!r} unavailable: {type(exc).__name__}") from None
        try:
            session = token.open(rw=True, user_pin=config.pin)
        except (p.PinIncorrect, p.PinLenRange, p.PinInvalid):
            raise CustodyLocked(f"PKCS#11 token {config.token!r}: wrong PIN") from None
        except p.PinLocked:
            raise CustodyLocked(f"PKCS#11 token {config.token!r}: the user PIN is locked") from None
        except p.PKCS11Error as exc:
            raise CustodyError(f"PKCS#11 token {config.token!r}: cannot log in ({type(exc).__name__})") from None
        login = _Login(session, digest)
        _logins[key] = login
        return login


def _ec_point(raw: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40); some devices give it bare."""
    if len(raw) == 65 and raw[0] == 4:
        return raw
    if len(raw) == 67 and raw[:2] == b"\x04\x41":
        return raw[2:]
    raise CustodyError("PKCS#11 public key has an unexpected EC_POINT encoding")


def _raw_to_der(signature: bytes) -> bytes:
    """r||s (PKCS#11: 2 x 32 bytes; GM/T 0018's ECCSignature: 2 x 64, right-aligned) as DER."""
    if len(signature) not in (64, 128):
        raise CustodyError(f"PKCS#11 signature of {len(signature)} bytes, not r||s of 64 (or 128)")
    half = len(signature) // 2
    r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    if not (0 < r < 2**256 and 0 < s < 2**256):
        raise CustodyError("PKCS#11 signature values out of range")
    return encode_dss_signature(r, s)


class _TokenKey:
    """`PrivateMaterial` for a key that stays in the token: sign() asks the token, nothing exports it."""

    __slots__ = ("_key", "_login", "_mechanism", "_public_der", "_sm2_input", "algorithm")

    def __init__(
        self,
        algorithm: str,
        key: Any,
        public_der: bytes,
        login: _Login,
        mechanism: Any,
        sm2_input: str = "digest",
    ) -> None:
        self.algorithm = algorithm
        self._key, self._public_der, self._login = key, public_der, login
        self._mechanism, self._sm2_input = mechanism, sm2_input

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == "p256":
            tbs = hashlib.sha256(data).digest()
        elif self._sm2_input == "digest":
            tbs = sm2.SM2PublicKey.from_spki(self._public_der).digest(data)
        else:
            tbs = data
        p = _pkcs11()
        try:
            with self._login.lock:
                raw = self._key.sign(tbs, mechanism=self._mechanism)
        except (p.SessionHandleInvalid, p.SessionClosed, p.UserNotLoggedIn, p.DeviceRemoved, p.TokenNotPresent):
            self._login.dead = True
            raise CustodyError("PKCS#11 signature failed: the token dropped the session; ask custody again") from None
        except p.PKCS11Error as exc:
            raise CustodyError(f"PKCS#11 signature refused: {type(exc).__name__}") from None
        return _raw_to_der(bytes(raw))

    def public_key_der(self) -> bytes:
        return self._public_der

    def secret_bytes(self) -> bytes:
        raise CustodyError("a PKCS#11 private key never leaves the token")

    def __repr__(self) -> str:
        return f"_TokenKey({self.algorithm}, in token)"


class Pkcs11Keystore:
    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self._p = _pkcs11()
        self._login_state = _login(config)
        self._label = re.compile(rf"^{re.escape(config.prefix)}/({KEY_NAME.pattern[1:-1]})/v([1-9][0-9]*)$")
        # What the last scan found, by name and version: a full scan reads every object of the token, so
        # reads start from this and check it live (see `_current`). Public keys by CKA_ID never change.
        self._known: dict[str, dict[int, Any]] = {}
        self._publics: dict[str, bytes] = {}

    @classmethod
    def from_env(cls) -> Pkcs11Keystore:
        return cls(Pkcs11Config.from_env())

    # -- token plumbing ------------------------------------------------------------------------

    @property
    def _login(self) -> _Login:
        """The process's login to the token, made again after the token dropped it (objects found
        through the old session are forgotten: their handles belonged to it)."""
        if self._login_state.dead:
            self._login_state = _login(self.config)
            self._known = {}
        return self._login_state

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        p = self._p
        lost = (p.SessionHandleInvalid, p.SessionClosed, p.UserNotLoggedIn, p.DeviceRemoved, p.TokenNotPresent)
        login = self._login
        try:
            with login.lock:
                return fn(*args, **kwargs)
        except p.ObjectHandleInvalid:
            raise _Vanished(f"PKCS#11 {what}: an object was destroyed meanwhile") from None
        except lost as exc:
            login.dead = True
            raise CustodyError(
                f"PKCS#11 {what} failed: the token dropped the session ({type(exc).__name__}); the next call logs in "
                "again"
            ) from None
        except self._p.PKCS11Error as exc:
            raise CustodyError(f"PKCS#11 {what} failed: {type(exc).__name__}") from None

    def _retrying(self, fn: Any) -> Any:
        """Reads retried while a concurrent writer destroys a twin it lost (see the module docstring)."""
        for _ in range(RETRIES):
            try:
                return fn()
            except _Vanished:
                time.sleep(secrets.randbelow(20) / 1000)
        raise CustodyError("PKCS#11 objects kept changing under the read: too many concurrent writers")

    def _objects(self, **attrs: Any) -> list[Any]:
        template = {self._p.Attribute[k]: v for k, v in attrs.items()}
        found: list[Any] = self._retrying(
            lambda: self._call("search", lambda: list(self._login.session.get_objects(template)))
        )
        return found

    def _label_of(self, name: str, version: int) -> str:
        return f"{self.config.prefix}/{name}/v{version}"

    def _keys(self, name: str | None = None) -> dict[str, dict[int, Any]]:
        result: dict[str, dict[int, Any]] = self._retrying(lambda: self._scan(name))
        return result

    def _scan(self, name: str | None) -> dict[str, dict[int, Any]]:
        """Private and secret key objects of ours, by name and version (twins: the smallest CKA_ID)."""
        out: dict[str, dict[int, Any]] = {}
        found: list[tuple[bytes, str, int, Any]] = []
        for cls in (self._p.ObjectClass.PRIVATE_KEY, self._p.ObjectClass.SECRET_KEY):
            for obj in self._objects(CLASS=cls):
                label = self._call("read", lambda o=obj: o[self._p.Attribute.LABEL])
                match = self._label.match(label or "")
                if match and (name is None or match[1] == name):
                    ident = self._call("read", lambda o=obj: bytes(o[self._p.Attribute.ID]))
                    found.append((ident, match[1], int(match[2]), obj))
        for _, key_name, number, obj in sorted(found, key=lambda f: f[0], reverse=True):
            out.setdefault(key_name, {})[number] = obj  # the smallest ID is written last, so it wins
        if name is None:
            self._known = dict(out)
        else:
            self._known[name] = out.get(name, {})
        return out

    def _current(self, name: str) -> dict[int, Any]:
        """The key's objects: those of the last scan unless a newer version appeared since (a label one or
        two past the newest known, as another process's rotation makes), else a new scan. Flags and
        destroyed objects are seen anyway: `_version` reads CKA_SIGN live, and a vanished object rescans."""
        _ = self._login  # after a new login, objects of the old session are forgotten before this reads them
        known = self._known.get(name)
        if known:
            top = max(known)
            if not any(self._objects(LABEL=self._label_of(name, n)) for n in (top + 1, top + 2)):
                return known
        return self._scan(name).get(name, {})

    def _version(self, name: str, number: int, obj: Any) -> KeyVersion:
        ident = self._call("read", lambda: bytes(obj[self._p.Attribute.ID])).decode("ascii", "replace")
        parts = ident.split(";")
        if len(parts) != 4 or parts[0] != self._label_of(name, number):
            raise CustodyError(f"PKCS#11 key {name}@{number} has a CKA_ID this keystore did not write")
        algorithm = KeyAlgorithm(parts[1])
        created = datetime.strptime(parts[2], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        enabled = bool(self._call("read", lambda: obj[self._p.Attribute.SIGN]))
        public = b"" if algorithm.is_mac else self._public_der(name, number, algorithm, ident, obj, enabled)
        return KeyVersion(name, number, algorithm, public, created, enabled)

    def _public_der(
        self, name: str, number: int, algorithm: KeyAlgorithm, ident: str, private: Any, enabled: bool
    ) -> bytes:
        """The version's public key, checked once per process against its private key (a P-256 signature
        over a random digest must verify): a public-key object swapped in the token, which would have a
        CA certify someone else's key under our name, is `key_tampered`, never used."""
        if (cached := self._publics.get(ident)) is not None:
            return cached
        der = self._read_public_der(name, number, algorithm, ident)
        if algorithm is KeyAlgorithm.P256 and enabled:
            digest = secrets.token_bytes(32)
            raw = self._call("pair check", private.sign, digest, mechanism=self._p.Mechanism.ECDSA)
            public = serialization.load_der_public_key(der)
            assert isinstance(public, ec.EllipticCurvePublicKey)
            try:
                public.verify(_raw_to_der(bytes(raw)), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            except InvalidSignature:
                raise KeyTampered(
                    f"PKCS#11 key {name}@{number}: its public key object is not its private key's; refusing it"
                ) from None
            self._publics[ident] = der
        elif algorithm is not KeyAlgorithm.P256:
            self._publics[ident] = der  # SM2: checking would need the vendor mechanism's exact input rule
        return der  # a disabled P-256 version is not cached: checked if it is ever read enabled

    def _read_public_der(self, name: str, number: int, algorithm: KeyAlgorithm, ident: str) -> bytes:
        pubs = self._objects(CLASS=self._p.ObjectClass.PUBLIC_KEY, ID=ident.encode())
        if len(pubs) != 1:
            raise CustodyError(f"PKCS#11 key {name}@{number}: {len(pubs)} public key objects, not 1")
        point = _ec_point(self._call("read", lambda: bytes(pubs[0][self._p.Attribute.EC_POINT])))
        if algorithm is KeyAlgorithm.SM2:
            return sm2.public_key(point).spki_der()
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def _generate(self, name: str, number: int, algorithm: KeyAlgorithm) -> str:
        p, session = self._p, self._login.session
        label = self._label_of(name, number)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        ident = f"{label};{algorithm};{stamp};{secrets.token_hex(8)}"
        common = {p.Attribute.TOKEN: True, p.Attribute.LABEL: label, p.Attribute.ID: ident.encode()}
        private = {
            **common,
            p.Attribute.PRIVATE: True,
            p.Attribute.SENSITIVE: True,
            p.Attribute.EXTRACTABLE: False,
            p.Attribute.SIGN: True,
            p.Attribute.DECRYPT: False,
            p.Attribute.DERIVE: False,
            p.Attribute.UNWRAP: False,
        }
        public = {**common, p.Attribute.PRIVATE: False, p.Attribute.VERIFY: True}
        if algorithm is KeyAlgorithm.P256:
            params = p.util.ec.encode_named_curve_parameters(P256_OID)
            self._call(
                "key generation",
                session.generate_keypair,
                p.KeyType.EC,
                mechanism=p.Mechanism.EC_KEY_PAIR_GEN,
                capabilities=p.MechanismFlag.SIGN | p.MechanismFlag.VERIFY,
                public_template={**public, p.Attribute.EC_PARAMS: params},
                private_template=private,
            )
        elif algorithm is KeyAlgorithm.SM2:
            sm2_config = self._sm2()
            key_type = _vendor(p.KeyType, sm2_config.key_type, "VENDOR_SM2")
            params = p.util.ec.encode_named_curve_parameters(SM2_OID)
            self._call(
                "SM2 key generation",
                session.generate_keypair,
                key_type,
                mechanism=_vendor(p.Mechanism, sm2_config.keygen, "VENDOR_SM2_KEY_PAIR_GEN"),
                capabilities=p.MechanismFlag.SIGN | p.MechanismFlag.VERIFY,
                public_template={**public, p.Attribute.KEY_TYPE: key_type, p.Attribute.EC_PARAMS: params},
                private_template={**private, p.Attribute.KEY_TYPE: key_type},
            )
        elif algorithm is KeyAlgorithm.HMAC_SM3:
            self._call(
                "MAC key generation",
                session.generate_key,
                p.KeyType.GENERIC_SECRET,
                material.MAC_KEY_BYTES * 8,
                mechanism=p.Mechanism.GENERIC_SECRET_KEY_GEN,
                capabilities=p.MechanismFlag.SIGN,
                template={
                    **common,
                    p.Attribute.PRIVATE: True,
                    p.Attribute.SENSITIVE: False,
                    p.Attribute.EXTRACTABLE: True,
                    p.Attribute.SIGN: True,
                    p.Attribute.VERIFY: False,
                },
            )
        else:
            raise AlgorithmNotSupported(f"unknown algorithm {algorithm}")
        return ident

    def _sm2(self) -> Sm2Mechanisms:
        if self.config.sm2 is None:
            raise AlgorithmNotSupported(
                "SM2 keys need the token's vendor SM2 mechanisms (TRUSTSEAL_PKCS11_SM2_KEY_TYPE, _KEYGEN, _SIGN); "
                "none are configured"
            )
        return self.config.sm2

    def _read_id(self, obj: Any) -> bytes | None:
        """CKA_ID, or None for an object destroyed since it was found."""
        try:
            return bytes(self._call("read", lambda: obj[self._p.Attribute.ID]))
        except _Vanished:
            return None

    def _destroy(self, ident: bytes) -> None:
        for obj in self._objects(ID=ident):
            self._call("destroy", obj.destroy)

    def _add_version(self, name: str, algorithm: KeyAlgorithm, first: bool) -> KeyVersion:
        """The version after the newest, made in the token. Writers in this process take turns (the login's
        lock). Writers in other processes cannot be locked out, so a writer that finds a twin of its new
        object (another chose the same number) destroys its own and tries again: an object that was alone
        when its writer looked is the one that stays, so two writers never both succeed. (Two twins that
        both back off leave that number unused if a third writer took the next one meanwhile: versions may
        then have a gap, never a duplicate.)"""
        for attempt in range(WRITE_RETRIES):
            with self._login.lock:
                versions = self._keys(name).get(name, {})
                if first and versions:
                    raise KeyExists(f"key {name} exists")
                if not first and not versions:
                    raise KeyNotFound(f"no key named {name}")
                number = max(versions, default=0) + 1
                ident = self._generate(name, number, algorithm).encode()
                twins = {self._read_id(o): o for o in self._objects(LABEL=self._label_of(name, number))}
                twins.pop(None, None)  # destroyed meanwhile
                mine = twins.pop(ident, None)
                if mine is not None and not twins:
                    self._known.pop(name, None)  # the next read scans and finds it
                    return self._retrying(lambda n=number, o=mine: self._version(name, n, o))
                self._destroy(ident)
            time.sleep(secrets.randbelow(10 << min(attempt, 6)) / 1000)  # random, growing back-off
        raise CustodyError(f"could not add a version of {name}: too many concurrent writers")

    # -- KeyCustody ----------------------------------------------------------------------------

    def create(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion:
        if not KEY_NAME.match(name):
            raise KeyNotFound(f"invalid key name {name!r}")
        return self._add_version(name, KeyAlgorithm(algorithm), first=True)

    def rotate(self, name: str) -> KeyVersion:
        current = self.versions(name)
        return self._add_version(name, current[0].algorithm, first=False)

    def disable(self, name: str, version: int) -> KeyVersion:
        obj = self._keys(name).get(name, {}).get(version)
        if obj is None:
            raise KeyNotFound(f"key {name} has no version {version}")

        def clear() -> None:
            obj[self._p.Attribute.SIGN] = False

        self._call("disable (CKA_SIGN=false)", clear)
        return self._version(name, version, obj)

    def _read_versions(self, name: str) -> tuple[list[KeyVersion], dict[int, Any]]:
        if not KEY_NAME.match(name):
            raise KeyNotFound(f"invalid key name {name!r}")

        def read() -> tuple[list[KeyVersion], dict[int, Any]]:
            objects = self._current(name)
            if not objects:
                raise KeyNotFound(f"no key named {name}")
            try:
                return [self._version(name, n, objects[n]) for n in sorted(objects)], objects
            except _Vanished:
                self._known.pop(name, None)  # destroyed behind our back: scan again
                raise

        result: tuple[list[KeyVersion], dict[int, Any]] = self._retrying(read)
        return result

    def versions(self, name: str) -> list[KeyVersion]:
        return self._read_versions(name)[0]

    def names(self) -> list[str]:
        return sorted(self._keys())

    def get(self, ref: str) -> KeyVersion:
        name, _ = parse_ref(ref)
        return select(self.versions(name), ref)

    def _enabled_object(self, ref: str) -> tuple[KeyVersion, Any]:
        name, _ = parse_ref(ref)
        versions, objects = self._read_versions(name)
        version = select(versions, ref)
        if not version.enabled:
            raise KeyDisabled(f"key {version.ref} is disabled")
        return version, objects[version.version]

    def signer(self, ref: str) -> SigningHandle:
        version, obj = self._enabled_object(ref)
        if version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a MAC key, not a signing key")
        if version.algorithm is KeyAlgorithm.SM2:
            config = self._sm2()
            mechanism = _vendor(self._p.Mechanism, config.sign, "VENDOR_SM2_SIGN")
            key = _TokenKey("sm2", obj, version.public_key_der, self._login, mechanism, config.input)
        else:
            key = _TokenKey("p256", obj, version.public_key_der, self._login, self._p.Mechanism.ECDSA)
        return SigningHandle(version, key)

    def mac(self, ref: str) -> MacHandle:
        version, obj = self._enabled_object(ref)
        if not version.algorithm.is_mac:
            raise KeyWrongType(f"key {version.name} is a signing key, not a MAC key")
        secret = self._call("MAC key read", lambda: bytes(obj[self._p.Attribute.VALUE]))
        return MacHandle(version, material.load_mac(str(version.algorithm), secret))
