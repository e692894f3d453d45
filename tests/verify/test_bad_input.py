"""Bad input gets a FAILED report with FORMAT_FAILURE (4xx only for a bad request), never an exception."""

from __future__ import annotations

import io
import secrets
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.auth import create_token
from api.context import Context
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import examples, make_pdf
from verify.report import FAILED, INDETERMINATE
from verify.service import Verifier
from verify.trust import TrustStore

INTEROP = Path(__file__).resolve().parents[2].parent / "shared" / "interop" / "ofd"
VERIFIER = Verifier(TrustStore())


@pytest.fixture(scope="module")
def sealed(context: Context) -> bytes:
    create_demo_seals(context.seals, actor="test")
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    pdf = context.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=caller, placement=Placement()).pdf
    return pdf


def _format_failure(report: dict[str, object]) -> bool:
    return report.get("code") == "FORMAT_FAILURE" or any(
        c["code"] == "FORMAT_FAILURE"
        for s in report["signatures"]  # type: ignore[attr-defined]
        for c in s["checks"]
    )


def _ofd(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as package:
        for name, data in entries.items():
            package.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "neither"),
        (b"%PDF-1.7\n%%EOF", "unreadable"),
        (b"%PDF-1.7\n" + b"1 0 obj <<" * 2000, "unreadable"),
        (b"PK\x03\x04garbage", "not a zip"),
        (b"\x30\x80" + b"\x30\x80" * 5000, "not a seal"),  # deeply nested indefinite-length ASN.1
        (b"\x30\x82\xff\xff\x02", "not a seal"),  # length beyond the data
        (b"GIF89a", "neither"),
    ],
)
def test_garbage_is_a_format_failure(data: bytes, fragment: str) -> None:
    report = VERIFIER.verify(data).as_json()
    assert report["result"] == FAILED and _format_failure(report), report
    assert fragment in str(report).lower() or fragment in str(report.get("detail", ""))


def test_zip_bomb_is_refused() -> None:
    bomb = _ofd({"OFD.xml": b"<ofd:OFD/>", "Doc_0/big.bin": b"\x00" * (64 * 1024 * 1024)})
    assert len(bomb) < 200_000
    report = VERIFIER.verify(bomb).as_json()
    assert report["result"] == FAILED and "zip bomb" in report["detail"]


def test_path_traversal_is_refused() -> None:
    report = VERIFIER.verify(_ofd({"OFD.xml": b"<a/>", "../../etc/passwd": b"x"})).as_json()
    assert report["result"] == FAILED and "escapes" in report["detail"]


def test_xml_entity_expansion_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><ofd:OFD xmlns:ofd="x">&lol3;</ofd:OFD>'
    )
    report = VERIFIER.verify(_ofd({"OFD.xml": laughs})).as_json()
    assert report["result"] == FAILED and "unsafe XML" in report["detail"]
    broken = VERIFIER.verify(_ofd({"OFD.xml": b"<ofd:OFD><unclosed>"})).as_json()
    assert broken["result"] == FAILED and _format_failure(broken)


def test_ofd_with_missing_parts_names_them() -> None:
    ofd = b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>'
    ofd += b"<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"
    listing = (
        b'<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016">'
        b'<ofd:Signature ID="1" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
    )
    report = VERIFIER.verify(_ofd({"OFD.xml": ofd, "Doc_0/Signs/Signatures.xml": listing})).as_json()
    assert report["result"] == FAILED
    assert "Sign_0/Signature.xml is not in the package" in str(report)
    unsigned = VERIFIER.verify(
        _ofd({"OFD.xml": ofd.replace(b"<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>", b"")})
    )
    assert unsigned.result == INDETERMINATE and unsigned.code == "NO_SIGNATURE_FOUND"


@settings(max_examples=examples(150), deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    report = VERIFIER.verify(data)
    assert report.result in (FAILED, INDETERMINATE)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[at] = draw(st.integers(0, 255))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_sealed_pdfs_never_raise_and_never_pass(sealed: bytes, data: st.DataObject) -> None:
    mutant = data.draw(mutated(sealed))
    report = VERIFIER.verify(mutant)  # no trust at all: the best possible verdict is INDETERMINATE
    assert report.result in (FAILED, INDETERMINATE)


def test_an_oversized_xml_part_is_refused_before_it_is_parsed() -> None:
    """An OFD.xml of 9 MB of empty elements (compressing ~1000:1 would be refused as a bomb; this one
    is within the ratio): a FORMAT_FAILURE naming the size, without building a 9 MB tree."""
    ofd = b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016">' + b"<a/>" * (9 * 1024 * 256) + b"</ofd:OFD>"
    report = VERIFIER.verify(_ofd({"OFD.xml": ofd}, compression=zipfile.ZIP_STORED)).as_json()
    assert report["result"] == FAILED and _format_failure(report) and "larger than" in str(report), report


def test_package_entries_are_hashed_as_read_whole() -> None:
    """Referenced files are hashed a chunk at a time: the same SM3 as of the whole entry, for every
    entry of every vendor sample, and a damaged entry is an OfdFormatError, not a wrong digest."""
    from gm.sm3 import sm3
    from verify.ofd_package import OfdFormatError, Package

    for path in sorted(INTEROP.glob("*.ofd")):
        package = Package(path.read_bytes())
        for name in package.names:
            assert package.sm3(name) == sm3(package.read(name)), (path.name, name)
    original = (INTEROP / "1.ofd").read_bytes()
    info = max(zipfile.ZipFile(io.BytesIO(original)).infolist(), key=lambda i: i.compress_size)
    start = original.index(b"PK\x03\x04", info.header_offset) + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(original)
    damaged[start + info.compress_size // 2] ^= 0xFF
    with pytest.raises(OfdFormatError):
        Package(bytes(damaged)).sm3(info.filename)


def test_an_ofd_needing_a_newer_zip_version_is_a_format_failure() -> None:
    """zipfile refuses such a directory with NotImplementedError, which used to escape the OFD reader."""
    original = bytearray((INTEROP / "1.ofd").read_bytes())
    central = original.index(b"PK\x01\x02")
    original[central + 6 : central + 8] = (64).to_bytes(2, "little")  # version needed to extract: 6.4
    report = VERIFIER.verify(bytes(original)).as_json()
    assert report["result"] == FAILED and _format_failure(report) and "zip file version" in str(report), report


def test_a_damaged_entry_in_a_vendor_ofd_is_named_in_a_format_failure() -> None:
    """Corrupt deflate data or a wrong CRC inside a package entry: a FORMAT_FAILURE naming the entry,
    not the generic "could not be processed" (zipfile raises zlib.error / BadZipFile only on reading)."""
    original = (INTEROP / "1.ofd").read_bytes()
    package = zipfile.ZipFile(io.BytesIO(original))
    target = next(i for i in package.infolist() if i.filename.endswith("Signature.xml"))
    header = original.index(b"PK\x03\x04", target.header_offset)
    start = header + 30 + len(target.filename.encode()) + len(target.extra)  # the entry's compressed data
    for offset in (0, target.compress_size // 2):
        damaged = bytearray(original)
        damaged[start + offset] ^= 0xFF
        report = VERIFIER.verify(bytes(damaged)).as_json()
        assert report["result"] == FAILED and _format_failure(report), report
        assert "Signature.xml" in str(report) and "could not be processed" not in str(report), report


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_mutated_vendor_ofd_never_raises(data: st.DataObject) -> None:
    path = INTEROP / "1.ofd"
    if not path.exists():
        pytest.fail("interop samples missing")
    mutant = data.draw(mutated(path.read_bytes()))
    assert VERIFIER.verify(mutant).result in (FAILED, INDETERMINATE)


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


def test_verify_endpoint_bad_requests(client: TestClient, context: Context) -> None:
    assert client.post("/v1/verify").json()["code"] == "invalid_request"  # no file
    assert client.post("/v1/verify", files={"file": ("a.pdf", b"", "application/pdf")}).json()["code"] == (
        "invalid_request"
    )
    big = b"%PDF-" + b"0" * context.settings.max_upload_bytes
    assert client.post("/v1/verify", files={"file": ("a.pdf", big, "application/pdf")}).status_code == 413
    garbage = client.post("/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 nothing", "application/pdf")})
    assert garbage.status_code == 200 and garbage.json()["result"] == FAILED
    verifier = {"Authorization": "Bearer " + create_token(context.db, "verifier", f"v-{secrets.token_hex(4)}")}
    at = {"at": "yesterday"}
    assert client.post("/v1/verify", files={"file": ("a", b"x")}, data=at, headers=verifier).status_code == 400


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("issuer", 403), ("verifier", 200), ("auditor", 200),
                                              ("officer", 200), ("admin", 200)])  # fmt: skip
def test_validating_as_of_a_past_time_needs_a_reviewing_role(
    client: TestClient, context: Context, role: str | None, status: int
) -> None:
    """`at=` moves validation into the past: only verifier / officer / auditor / admin may ask, and the
    report says "as of" (DESIGN.md)."""
    headers = {}
    if role is not None:
        headers["Authorization"] = "Bearer " + create_token(context.db, role, f"{role}-{secrets.token_hex(4)}")
    at = "2026-01-01T00:00:00+08:00"
    answer = client.post("/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 x")}, data={"at": at}, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["as_of"] == datetime.fromisoformat(at).isoformat()
    else:
        assert answer.json()["code"] == ("unauthenticated" if role is None else "forbidden_role")
    plain = client.post("/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 x")})
    assert plain.status_code == 200 and "as_of" not in plain.json()


def test_public_endpoints_are_rate_limited(context: Context) -> None:
    from api.ratelimit import RateLimiter

    limiter = RateLimiter(per_minute=60, burst=3)
    for _ in range(3):
        limiter.check("10.0.0.1")
    from api.problems import Problem

    with pytest.raises(Problem) as limited:
        limiter.check("10.0.0.1")
    assert limited.value.status == 429 and limited.value.code == "rate_limited"
    limiter.check("10.0.0.2")  # another client has its own budget
    original = context.rate_limiter
    context.rate_limiter = RateLimiter(per_minute=60, burst=1)
    try:
        with TestClient(create_app(context), raise_server_exceptions=False) as fresh:
            first = fresh.post("/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 x", "application/pdf")})
            second = fresh.post("/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 x", "application/pdf")})
    finally:
        context.rate_limiter = original
    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["code"] == "rate_limited" and "retry-after" in second.headers
