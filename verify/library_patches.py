"""The one place where trustseal replaces functions of the libraries it uses.

Each `Patch` names its upstream target (module and qualified name), our replacement, the library
versions it was tested with (the same ranges `pyproject.toml` pins) and fingerprints of the upstream
code it replaces or relies on: SHA-256 of the function's (or class's) source text, dedented and with
line ends normalised — the same for one library version on every platform and Python version.

`install()` (run when the `verify` package is imported) applies every patch idempotently and refuses
one — logging a warning and leaving upstream in place — when the library's installed version is
outside the tested range, the upstream code's fingerprint differs, or the target holds something that
is neither upstream's nor ours. A refused speed-up costs time only (its answers are upstream's, see
the equivalence tests); without a compatibility patch upstream's behaviour returns (the warning says
what that costs). tests/verify/test_library_patches.py fails when an installed
upstream function no longer matches its recorded fingerprint: review the new upstream code, then
record the new fingerprints (the failing test prints them) and widen the range, here and in the pins.

Nothing else in trustseal assigns into a library module or class (a test walks the source for it).
Registration through a library's own tables (gm/asn1.py teaching asn1crypto the SM2 / SM3 OIDs) is
not a replacement and stays where it is.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from verify import asn1_speedups, names, pdf_speedups, sm2_validator

log = logging.getLogger("trustseal.verify.library_patches")


@dataclass(frozen=True)
class Upstream:
    distribution: str
    tested: str  # version specifier, as pinned in pyproject.toml: ">=A,<B"


PYHANKO = Upstream("pyhanko", ">=0.38.0,<0.39")
CERTVALIDATOR = Upstream("pyhanko-certvalidator", ">=0.33.0,<0.34")
ASN1CRYPTO = Upstream("asn1crypto", ">=1.5.1,<1.6")
UPSTREAMS = (PYHANKO, CERTVALIDATOR, ASN1CRYPTO)


@dataclass(frozen=True)
class Patch:
    name: str
    upstream: Upstream
    target: str  # "module:Qualified.name"
    replacement: Any
    fingerprint: str  # of the upstream object at `target`
    relies_on: tuple[tuple[str, str], ...] = ()  # (target, fingerprint): upstream code the replacement assumes
    also: tuple[str, ...] = ()  # modules that imported the target by name and get the replacement too
    without: str = "slower, same answers"


PATCHES: tuple[Patch, ...] = (
    Patch(
        "pdf.hex_string",
        PYHANKO,
        "pyhanko.pdf_utils.generic:read_hex_string_from_stream",
        pdf_speedups.read_hex_string_from_stream,
        "292dbeaf45a0d1c62e0a5ac45f6f0c5963613ba77af6643ff423c2230658e0bb",
    ),
    Patch(
        "pdf.interned_certificates",
        PYHANKO,
        "pyhanko.sign.general:extract_certificate_info",
        pdf_speedups.extract_certificate_info,
        "fa4ba62d8ae6f9a7224da6e1a5595422d82068d3e75ecc8e974b4255c74dfb00",
        relies_on=(
            (
                "pyhanko.sign.general:SignedDataCerts",
                "87600dd697180a406ac72a706dc690ea39cc000c3b9788f8d7ed2b8e4eecd000",
            ),
        ),
        also=("pyhanko.sign.validation.generic_cms", "pyhanko.sign.validation.dss"),
    ),
    # names first: the memoised comparisons below cache what the name patches answer
    Patch(
        "names.prepped_value",
        ASN1CRYPTO,
        "asn1crypto.x509:NameTypeAndValue.prepped_value",
        names.PREPPED_VALUE,
        "968e5c4bd76d92aa63d929dbd7ce402beb0536992d85047fb71f36587b78366a",
        without="GBK / UTF-8 bytes in 8-bit name strings compare as decoded text: chains through such "
        "names stop on codec errors, look-alike names may compare equal",
    ),
    Patch(
        "names.human_friendly",
        ASN1CRYPTO,
        "asn1crypto.x509:Name.human_friendly",
        names.HUMAN_FRIENDLY,
        "09af2acb688b7198002b5062a3795a9c812fc2dde7d3d4b95267336a74cefde2",
        without="names with GBK / UTF-8 bytes in 8-bit strings are shown as mojibake or raise",
    ),
    Patch(
        "asn1.string_prep",
        ASN1CRYPTO,
        "asn1crypto.x509:NameTypeAndValue._ldap_string_prep",
        asn1_speedups.memo_prep,
        "1a0ceab6b226f30c4c1470e97e330c4330e97bb37dd8a25c5a3c466d8e16dcfb",
    ),
    Patch(
        "asn1.name_hashable",
        ASN1CRYPTO,
        "asn1crypto.x509:Name.hashable",
        asn1_speedups.HASHABLE,
        "2d57c21eef75c9d67d3e45f19c54a884f1729775f8a09150507b9b3656cfcb74",
        relies_on=(
            (
                "asn1crypto.x509:RDNSequence.hashable",
                "628cc0559a42dbb77c42fa12f057ae3706c434c15c5e5c311502acf21310c513",
            ),
            (
                "asn1crypto.x509:RelativeDistinguishedName.hashable",
                "98238af6248470ff7c411d4087ee4162ef025b9d0014895a9a4db08ece1f4ad1",
            ),
        ),
    ),
    Patch(
        "asn1.name_equality",
        ASN1CRYPTO,
        "asn1crypto.x509:Name.__eq__",
        asn1_speedups.memo_eq,
        "bad26d7ef1c250d21c218a5230e086371effe183ff7d24092990c4eb8a4bd2c7",
        relies_on=(  # equality of `hashable` strings is RDNSequence equality
            ("asn1crypto.x509:Name.hashable", "2d57c21eef75c9d67d3e45f19c54a884f1729775f8a09150507b9b3656cfcb74"),
            (
                "asn1crypto.x509:RDNSequence.hashable",
                "628cc0559a42dbb77c42fa12f057ae3706c434c15c5e5c311502acf21310c513",
            ),
            ("asn1crypto.x509:RDNSequence.__eq__", "ac3fddd48fc004a135cca675bf85438a97a29f6bca69f7be6e9eeeb803af0082"),
            (
                "asn1crypto.x509:RelativeDistinguishedName.hashable",
                "98238af6248470ff7c411d4087ee4162ef025b9d0014895a9a4db08ece1f4ad1",
            ),
            (
                "asn1crypto.x509:RelativeDistinguishedName.__eq__",
                "4ac11a867c120c3f4a513207a45782db9538e6b69ba2653e269cd9af300d0cf1",
            ),
            (
                "asn1crypto.x509:NameTypeAndValue.__eq__",
                "11584b951fac0d4779a1ca6a217c7886ba834aa92269fca097d7c07ee1f9d901",
            ),
        ),
    ),
    Patch(
        "ocsp.sm2_responder_context",
        CERTVALIDATOR,
        "pyhanko_certvalidator.revinfo.validate_ocsp:ValidationContext",
        sm2_validator.OCSPResponderContext,
        "423d68b1d2b70b8d92c9ad8e49067a9359fee0decc4eeb5677786fa4efbbd008",
        relies_on=(  # the one ValidationContext the library builds for itself
            (
                "pyhanko_certvalidator.revinfo.validate_ocsp:_validate_delegated_ocsp_provenance",
                "c9dea9dc48eff486b4ba73a6b66320f93ba476aeac2ba64cf697e29b96192ca0",
            ),
        ),
        without="SM2 OCSP responders with id-pkix-ocsp-nocheck are not accepted (revocation stays unknown)",
    ),
)

_applied: dict[str, tuple[Any, Any]] = {}  # target -> (the upstream object displaced, our replacement)
_status: dict[str, str] = {}


def fingerprint(obj: Any) -> str | None:
    """SHA-256 of the source text of a function, property (its getter) or class; None without source."""
    if isinstance(obj, property):
        obj = obj.fget
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    text = "\n".join(line.rstrip() for line in textwrap.dedent(source).splitlines())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _locate(target: str) -> tuple[Any, str]:
    """The object holding the target attribute, and the attribute's name."""
    module_name, _, qualname = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, attribute = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, attribute


def _current(target: str) -> Any:
    owner, attribute = _locate(target)
    return inspect.getattr_static(owner, attribute)


def upstream(target: str) -> Any:
    """The upstream object at `target`: what is there, or what our replacement there displaced."""
    current = _current(target)
    applied = _applied.get(target)
    return applied[0] if applied is not None and current is applied[1] else current


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_RELEASE = re.compile(r"(\d+(?:\.\d+)*)(?:\.post\d+)?(?:\+[0-9A-Za-z.]+)?")


def _release(version: str) -> tuple[int, ...] | None:
    """The release numbers of a final (or post, or local) version; None for pre-releases and the like."""
    match = _RELEASE.fullmatch(version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def in_range(version: str, specifier: str) -> bool:
    """`version` satisfies every clause of `specifier` (">=", "<", "=="; comma-separated)."""
    have = _release(version)
    if have is None:
        return False
    for clause in specifier.split(","):
        match = re.fullmatch(r"\s*(>=|<|==)\s*([\d.]+)\s*", clause)
        if match is None:
            raise ValueError(f"unsupported version clause {clause!r}")
        op, bound = match.groups()
        want = tuple(int(part) for part in bound.split("."))
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        if not {">=": a >= b, "<": a < b, "==": a == b}[op]:
            return False
    return True


def upstream_fingerprint(target: str) -> str | None:
    """The fingerprint of the upstream code at `target`; None when it is not there (or has no source)."""
    try:
        return fingerprint(upstream(target))
    except (ImportError, AttributeError):
        return None


def refusal(patch: Patch) -> str | None:
    """Why `patch` must not be applied now, or None."""
    version = installed_version(patch.upstream.distribution)
    if version is None:
        return f"{patch.upstream.distribution} is not installed"
    if not in_range(version, patch.upstream.tested):
        return f"{patch.upstream.distribution} {version} is outside the tested range {patch.upstream.tested}"
    try:
        return _code_refusal(patch)
    except (ImportError, AttributeError) as exc:
        return f"upstream {patch.target} or a module it lives in is not there ({exc})"


def _code_refusal(patch: Patch) -> str | None:
    original = upstream(patch.target)
    if original is patch.replacement or fingerprint(original) != patch.fingerprint:
        return f"upstream {patch.target} is not the code this patch was written for (fingerprint differs)"
    for target, expected in patch.relies_on:
        if upstream_fingerprint(target) != expected:
            return f"upstream {target}, which the patch relies on, is not the code it was written for"
    attribute = _locate(patch.target)[1]
    for module_name in patch.also:
        held = getattr(importlib.import_module(module_name), attribute, None)
        if held is not original and held is not patch.replacement:
            return f"{module_name}.{attribute} is not upstream {patch.target}"
    return None


def _slots(patch: Patch) -> list[tuple[Any, str]]:
    """Where the patch puts its replacement: the target, and the same name in every module in `also`."""
    owner, attribute = _locate(patch.target)
    return [(owner, attribute)] + [(importlib.import_module(module), attribute) for module in patch.also]


def install(patches: Iterable[Patch] = PATCHES) -> dict[str, str]:
    """Apply each patch that may be applied, idempotently; a refused one leaves (or puts back) upstream's
    code. Returns each patch's status."""
    for patch in patches:
        reason = refusal(patch)
        if reason is None:
            _applied[patch.target] = (upstream(patch.target), patch.replacement)
            for owner, attribute in _slots(patch):
                setattr(owner, attribute, patch.replacement)
            _status[patch.name] = "installed"
            continue
        applied = _applied.get(patch.target)
        if applied is not None:  # applied earlier (so its slots exist), refused now: upstream back wherever ours is
            for owner, attribute in _slots(patch):
                if inspect.getattr_static(owner, attribute, None) is patch.replacement:
                    setattr(owner, attribute, applied[0])
        _status[patch.name] = f"refused: {reason}"
        log.warning(
            "library patch %s not applied, upstream %s stays in place: %s (without it: %s)",
            patch.name, patch.target, reason, patch.without,
        )  # fmt: skip
    return dict(_status)


def status() -> dict[str, str]:
    """Each patch's state after the last `install()`: "installed" or "refused: <why>"."""
    return dict(_status)


def in_effect(patch: Patch) -> bool:
    """The replacement is what the target (and the same name in every module in `also`) holds."""
    return all(
        inspect.getattr_static(owner, attribute, None) is patch.replacement for owner, attribute in _slots(patch)
    )


def recorded(patches: Iterable[Patch] = PATCHES) -> Iterable[tuple[str, str, str | None]]:
    """(target, recorded fingerprint, fingerprint of the installed upstream code), for every fingerprint."""
    for patch in patches:
        yield patch.target, patch.fingerprint, upstream_fingerprint(patch.target)
        for target, expected in patch.relies_on:
            yield target, expected, upstream_fingerprint(target)
