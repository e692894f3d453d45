"""verify/library_patches.py is the one place where library code is replaced, each replacement is in
effect, and none is applied to upstream code it was not written for (changed code, untested version).

When `test_recorded_fingerprints_are_the_installed_upstream_code` fails, a library changed a function
we replace or rely on: read the new upstream code against our replacement and its equivalence tests,
then record the fingerprints the failure prints, and the tested range here and in pyproject.toml."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.sign import general
from pyhanko.sign.validation import dss, generic_cms
from pyhanko_certvalidator.revinfo import validate_ocsp

from verify import asn1_speedups, library_patches, names, pdf_speedups, sm2_validator
from verify.library_patches import PATCHES, Patch, Upstream

ROOT = Path(__file__).resolve().parents[2]
OURS = ("gm", "keys", "store", "ledger", "ca", "seal", "signing", "verify", "policies", "api")


@pytest.fixture
def upstream_changes() -> Iterator[pytest.MonkeyPatch]:
    """Changes to the libraries, undone after the test; then every patch is back as the service runs."""
    with pytest.MonkeyPatch.context() as changes:
        yield changes
    library_patches.install()
    assert set(library_patches.status().values()) == {"installed"}


def _patch(name: str) -> Patch:
    return next(p for p in PATCHES if p.name == name)


# ---- the installed libraries are the ones the patches were written for ---------------------------------------


def test_recorded_fingerprints_are_the_installed_upstream_code() -> None:
    changed = [(target, actual) for target, expected, actual in library_patches.recorded() if expected != actual]
    versions = {u.distribution: library_patches.installed_version(u.distribution) for u in library_patches.UPSTREAMS}
    assert not changed, f"upstream code changed under a patch ({versions}); review it, then record:\n" + "\n".join(
        f"  {target}: {actual}" for target, actual in changed
    )


def test_installed_versions_are_inside_the_tested_ranges() -> None:
    for upstream in library_patches.UPSTREAMS:
        version = library_patches.installed_version(upstream.distribution)
        assert version is not None and library_patches.in_range(version, upstream.tested), (upstream, version)


def test_pyproject_pins_the_tested_ranges() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {dep.split(">")[0].split("<")[0].split("=")[0].strip().lower(): dep for dep in dependencies}
    for upstream in library_patches.UPSTREAMS:
        assert pins[upstream.distribution].replace(" ", "") == upstream.distribution + upstream.tested


@pytest.mark.parametrize(
    ("version", "specifier", "inside"),
    [
        ("0.38.0", ">=0.38.0,<0.39", True),
        ("0.38.7", ">=0.38.0,<0.39", True),
        ("0.39.0", ">=0.38.0,<0.39", False),
        ("0.37.9", ">=0.38.0,<0.39", False),
        ("0.38.1rc1", ">=0.38.0,<0.39", False),  # pre-releases are not tested releases
        ("0.38.0.dev3", ">=0.38.0,<0.39", False),
        ("1.5.1", ">=1.5.1,<1.6", True),
        ("1.5.1.post1", ">=1.5.1,<1.6", True),
        ("1.5.1+deb12u1", ">=1.5.1,<1.6", True),
        ("1.5", ">=1.5.1,<1.6", False),
        ("1.6", ">=1.5.1,<1.6", False),
        ("garbage", ">=1.5.1,<1.6", False),
    ],
)
def test_version_ranges(version: str, specifier: str, inside: bool) -> None:
    assert library_patches.in_range(version, specifier) is inside


# ---- every patch is in effect, and only through the one module -----------------------------------------------


def test_every_patch_is_in_effect_after_install() -> None:
    assert library_patches.install() == {patch.name: "installed" for patch in PATCHES}
    assert all(library_patches.in_effect(patch) for patch in PATCHES)
    # the same, spelled out against the libraries themselves
    assert generic.read_hex_string_from_stream is pdf_speedups.read_hex_string_from_stream
    for module in (general, generic_cms, dss):
        assert module.extract_certificate_info is pdf_speedups.extract_certificate_info
    assert inspect.getattr_static(x509.NameTypeAndValue, "prepped_value") is names.PREPPED_VALUE
    assert inspect.getattr_static(x509.Name, "human_friendly") is names.HUMAN_FRIENDLY
    assert inspect.getattr_static(x509.NameTypeAndValue, "_ldap_string_prep") is asn1_speedups.memo_prep
    assert inspect.getattr_static(x509.Name, "hashable") is asn1_speedups.HASHABLE
    assert inspect.getattr_static(x509.Name, "__eq__") is asn1_speedups.memo_eq
    assert validate_ocsp.ValidationContext is sm2_validator.OCSPResponderContext  # type: ignore[attr-defined]


def test_install_is_idempotent() -> None:
    before = {patch.target: library_patches.upstream(patch.target) for patch in PATCHES}
    for _ in range(3):
        library_patches.install()
    assert all(library_patches.in_effect(patch) for patch in PATCHES)
    assert {patch.target: library_patches.upstream(patch.target) for patch in PATCHES} == before
    assert all(before[patch.target] is not patch.replacement for patch in PATCHES)


def test_replacements_fall_back_on_the_upstream_code_they_displaced() -> None:
    """The ORIGINAL_* the replacements call are the very objects the fingerprints were taken of."""
    upstream = library_patches.upstream
    assert pdf_speedups.ORIGINAL is upstream("pyhanko.pdf_utils.generic:read_hex_string_from_stream")
    assert pdf_speedups.ORIGINAL_EXTRACT is upstream("pyhanko.sign.general:extract_certificate_info")
    assert names.ORIGINAL_PREPPED is upstream("asn1crypto.x509:NameTypeAndValue.prepped_value").fget
    assert names.ORIGINAL_HUMAN_FRIENDLY is upstream("asn1crypto.x509:Name.human_friendly").fget
    assert asn1_speedups.ORIGINAL_PREP is upstream("asn1crypto.x509:NameTypeAndValue._ldap_string_prep")
    assert asn1_speedups.ORIGINAL_HASHABLE is upstream("asn1crypto.x509:Name.hashable").fget
    assert asn1_speedups.ORIGINAL_EQ is upstream("asn1crypto.x509:Name.__eq__")
    assert sm2_validator.OCSPResponderContext.__base__ is upstream(
        "pyhanko_certvalidator.revinfo.validate_ocsp:ValidationContext"
    )


def _library_roots(tree: ast.AST) -> set[str]:
    """Names a module binds to third-party modules or their members (any scope)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in OURS:
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] not in (*OURS, "__future__")
        ):
            bound.update(alias.asname or alias.name for alias in node.names)
    for node in ast.walk(tree):  # `for module in (general, dss): module.x = ...`
        if (
            isinstance(node, ast.For | ast.comprehension)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple | ast.List)
            and any(_root(element) in bound for element in node.iter.elts)
        ):
            bound.add(node.target.id)
    return bound


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _assignments_into_libraries(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    libraries = _library_roots(tree)
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for target in targets:
            spine = target  # x509.Name.hashable, module.attr[key]: an attribute somewhere on the way down
            while isinstance(spine, ast.Subscript):
                spine = spine.value
            if isinstance(spine, ast.Attribute) and _root(spine) in libraries:
                found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}: {ast.unparse(target)}")
    return found


def test_no_other_module_assigns_into_a_library() -> None:
    ours = [path for package in OURS for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(ours) > 50
    found = [hit for path in ours if path.name != "library_patches.py" for hit in _assignments_into_libraries(path)]
    assert not found, "replace library code only in verify/library_patches.py:\n" + "\n".join(found)


def test_the_scan_sees_a_patch(tmp_path: Path) -> None:
    monkeypatcher = tmp_path / "sneaky.py"
    monkeypatcher.write_text(
        "from asn1crypto import x509\nimport pyhanko.pdf_utils.generic as g\n\n\ndef install():\n"
        "    x509.Name.hashable = property(len)\n    g.read_hex_string_from_stream = None\n"
        "    setattr(x509.Name, '__eq__', None)\n    self.fine = 1\n"
        "    for module in (g, x509):\n        module.thing = 1\n"
    )
    found = _assignments_into_libraries(monkeypatcher, tmp_path)
    assert [hit.split(": ", 1)[1] for hit in found] == [
        "x509.Name.hashable",
        "g.read_hex_string_from_stream",
        "x509.Name.?",
        "module.thing",
    ]


# ---- refused when upstream is not what the patch was written for -------------------------------------------


def test_a_changed_upstream_function_is_not_patched(
    upstream_changes: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = library_patches.upstream("pyhanko.pdf_utils.generic:read_hex_string_from_stream")

    def read_hex_string_from_stream(stream: object) -> object:  # "the next pyHanko release"
        return upstream(stream)

    upstream_changes.setattr(generic, "read_hex_string_from_stream", read_hex_string_from_stream)
    with caplog.at_level(logging.WARNING, logger="trustseal.verify.library_patches"):
        status = library_patches.install()
    assert status["pdf.hex_string"].startswith("refused: upstream pyhanko.pdf_utils.generic:read_hex_string")
    assert "fingerprint differs" in status["pdf.hex_string"]
    assert generic.read_hex_string_from_stream is read_hex_string_from_stream  # upstream's, untouched
    assert "pdf.hex_string not applied" in caplog.text
    assert all(state == "installed" for name, state in status.items() if name != "pdf.hex_string")


def test_a_change_in_code_a_patch_relies_on_refuses_it_and_puts_upstream_back(
    upstream_changes: pytest.MonkeyPatch,
) -> None:
    assert library_patches.in_effect(_patch("asn1.name_equality"))
    original_eq = library_patches.upstream("asn1crypto.x509:Name.__eq__")
    rdn_eq = x509.RDNSequence.__eq__

    def __eq__(self: x509.RDNSequence, other: object) -> bool:  # "a new asn1crypto"
        return bool(rdn_eq(self, other))

    upstream_changes.setattr(x509.RDNSequence, "__eq__", __eq__)
    status = library_patches.install()
    assert "RDNSequence.__eq__" in status["asn1.name_equality"]
    assert inspect.getattr_static(x509.Name, "__eq__") is original_eq
    assert library_patches.in_effect(_patch("asn1.string_prep"))  # the others stay


def test_a_version_outside_the_tested_range_is_not_patched(upstream_changes: pytest.MonkeyPatch) -> None:
    real = library_patches.installed_version
    upstream_changes.setattr(
        library_patches, "installed_version", lambda dist: "0.39.0" if dist == "pyhanko" else real(dist)
    )
    status = library_patches.install()
    for name in ("pdf.hex_string", "pdf.interned_certificates"):
        assert status[name] == "refused: pyhanko 0.39.0 is outside the tested range >=0.38.0,<0.39"
        assert not library_patches.in_effect(_patch(name))
    assert generic.read_hex_string_from_stream is pdf_speedups.ORIGINAL
    for module in (general, generic_cms, dss):
        assert module.extract_certificate_info is pdf_speedups.ORIGINAL_EXTRACT
    assert library_patches.in_effect(_patch("names.prepped_value"))


def test_a_module_holding_another_copy_is_not_patched(upstream_changes: pytest.MonkeyPatch) -> None:
    upstream_changes.setattr(dss, "extract_certificate_info", lambda signed_data: None)
    status = library_patches.install()
    assert status["pdf.interned_certificates"].startswith(
        "refused: pyhanko.sign.validation.dss.extract_certificate_info"
    )
    assert general.extract_certificate_info is pdf_speedups.ORIGINAL_EXTRACT


def test_the_whole_cycle_on_a_library_of_our_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "fakelib.py").write_text(
        "class Thing:\n    def size(self):\n        return 1\n\n\n"
        "def size(self):\n    return 2  # what the next release does\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fakelib", raising=False)
    monkeypatch.setattr(library_patches, "_status", {})
    monkeypatch.setattr(library_patches, "_applied", {})
    fakelib = importlib.import_module("fakelib")
    monkeypatch.setitem(sys.modules, "fakelib", fakelib)  # gone again after the test
    upstream = fakelib.Thing.size

    def ours(self: object) -> int:
        return 1

    version = library_patches.installed_version("pytest")
    assert version is not None
    tested = Upstream("pytest", f"=={version}")
    patch = Patch("fake.size", tested, "fakelib:Thing.size", ours, library_patches.fingerprint(upstream) or "")
    assert library_patches.install([patch]) == {"fake.size": "installed"}
    assert fakelib.Thing.size is ours and library_patches.in_effect(patch)
    assert library_patches.install([patch]) == {"fake.size": "installed"}  # idempotent
    assert library_patches.upstream("fakelib:Thing.size") is upstream

    untested = Patch("fake.size", Upstream("pytest", ">=0.1,<0.2"), patch.target, ours, patch.fingerprint)
    assert "outside the tested range" in library_patches.install([untested])["fake.size"]
    assert fakelib.Thing.size is upstream  # put back
    assert library_patches.install([patch]) == {"fake.size": "installed"}

    fakelib.Thing.size = fakelib.size  # upstream changed under us
    with caplog.at_level(logging.WARNING, logger="trustseal.verify.library_patches"):
        assert "fingerprint differs" in library_patches.install([patch])["fake.size"]
    assert fakelib.Thing.size is fakelib.size
    assert "fake.size not applied" in caplog.text

    moved = Patch("fake.gone", tested, "fakelib:Gone.size", ours, patch.fingerprint)  # upstream reorganised
    assert "is not there" in library_patches.install([moved])["fake.gone"]
    moved = Patch("fake.gone", tested, "fakelib_renamed:Thing.size", ours, patch.fingerprint)
    assert "is not there" in library_patches.install([moved])["fake.gone"]
