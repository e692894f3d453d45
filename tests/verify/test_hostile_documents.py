"""Hostile documents cost bounded work (issue 10): duplicate signature dictionaries are verified once,
the bytes hashed per verification are capped, one verification has a CPU budget; active content is
flagged without changing a verdict. Work is counted (calls, bytes, an injected clock), never timed."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.validation import validate_pdf_signature

from api.app import create_app
from api.context import Context
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from tests.pdf_builders import ACTIVE, BENIGN
from verify import pdf as pdf_module
from verify.html import render
from verify.limits import WorkLimits
from verify.pdf import PdfVerifier
from verify.report import FAILED, INDETERMINATE, PASSED
from verify.service import Verifier

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))


@pytest.fixture(scope="module")
def verifier(context: Context) -> Iterator[Verifier]:
    create_demo_seals(context.seals, actor="test")
    yield context.verification.verifier()


def _seal(context: Context, pdf: bytes | None = None, seal_id: str = "demo-370000-sm2", **kwargs: Any) -> bytes:
    return context.signing.seal_pdf(
        pdf or make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), **kwargs
    ).pdf


def _write(writer: IncrementalPdfFileWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _alias_fields(pdf: bytes, count: int, *, copy: bool = False) -> bytes:
    """`count` more signature fields whose /V is the first field's signature dictionary: the same
    object, or (`copy`) a new object with the same /ByteRange and /Contents."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    form = writer.root["/AcroForm"]
    fields = form["/Fields"]
    first = fields[0].get_object()
    value: Any = first.raw_get("/V")
    if copy:
        original = value.get_object()
        value = writer.add_object(generic.DictionaryObject({k: original.raw_get(k) for k in original}))
    page = writer.root["/Pages"]["/Kids"][0]
    for n in range(count):
        alias = generic.DictionaryObject(
            {
                pdf_name("/FT"): pdf_name("/Sig"),
                pdf_name("/T"): generic.TextStringObject(f"Alias{n}"),
                pdf_name("/V"): value,
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(0)] * 4),
                pdf_name("/P"): page,
            }
        )
        fields.append(writer.add_object(alias))
    writer.update_container(form)
    return _write(writer)


class _Counted:
    """Counts calls of PdfVerifier._one (one full verification of one signature)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = PdfVerifier._one

        def counted(this: PdfVerifier, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(this, *args, **kwargs)

        monkeypatch.setattr(PdfVerifier, "_one", counted)


@pytest.mark.parametrize("copy", [False, True], ids=["same-object", "same-contents"])
def test_fields_naming_one_signature_are_verified_once(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch, copy: bool
) -> None:
    hostile = _alias_fields(_seal(context), 49, copy=copy)
    counted = _Counted(monkeypatch)
    report = verifier.verify(hostile).as_json()
    assert counted.calls == 1
    assert len(report["signatures"]) == 1
    assert report["signatures"][0]["also_fields"] == [f"Alias{n}" for n in range(49)]


def test_a_field_listed_twice_is_one_signature(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(_seal(context)))
    form = writer.root["/AcroForm"]
    fields = form["/Fields"]
    for _ in range(20):
        fields.append(fields.raw_get(0))
    writer.update_container(form)
    counted = _Counted(monkeypatch)
    report = verifier.verify(_write(writer)).as_json()
    assert counted.calls == 1
    assert len(report["signatures"]) == 1


def test_two_real_seals_are_two_verifications(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    twice = _seal(context, _seal(context), seal_id="demo-530000-sm2")
    counted = _Counted(monkeypatch)
    report = verifier.verify(twice).as_json()
    assert counted.calls == 2
    assert report["result"] == PASSED, report
    assert all("also_fields" not in s for s in report["signatures"])


def _limited(verifier: Verifier, limits: WorkLimits) -> Verifier:
    return Verifier(verifier.trust, verifier.sources, limits)


def _checks(report: dict[str, Any], index: int) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["code"]) for c in report["signatures"][index]["checks"]}


def test_bytes_hashed_per_verification_are_capped(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three seals in three revisions of a bulky file each cover (almost) the whole file: with a cap
    of twice the file size, the third is not hashed at all and says why."""
    thrice = _seal(context, _seal(context, _seal(context, make_pdf(pad_to=200_000))), seal_id="demo-530000-sm2")
    limited = _limited(verifier, WorkLimits(hash_factor=2.0, hash_floor=0))
    counted = _Counted(monkeypatch)
    report = limited.verify(thrice).as_json()
    assert counted.calls == 2  # the third signature was never handed to pyHanko
    assert report["result"] == INDETERMINATE
    assert [s["result"] for s in report["signatures"]] == [PASSED, PASSED, INDETERMINATE]
    assert _checks(report, 2) == {"integrity": (INDETERMINATE, "WORK_LIMIT")}
    assert "bytes" in report["signatures"][2]["checks"][0]["detail"]
    # the same document within the default limits: every seal verified
    assert verifier.verify(thrice).result == PASSED


def test_an_absolute_cap_applies_to_any_file_size(context: Context, verifier: Verifier) -> None:
    sealed = _seal(context)
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", sealed)
    assert match is not None
    signed = int(match.group(2)) + int(match.group(4))  # the bytes one verification of it hashes
    report = _limited(verifier, WorkLimits(hash_floor=0, hash_cap=signed - 1)).verify(sealed).as_json()
    assert report["result"] == INDETERMINATE  # neither path hashed it: the fast path may not pass it either
    assert _checks(report, 0) == {"integrity": (INDETERMINATE, "WORK_LIMIT")}


def test_a_spent_cpu_budget_passes_nothing(context: Context, verifier: Verifier) -> None:
    sealed = _seal(context)
    report = _limited(verifier, WorkLimits(cpu_seconds=0.0)).verify(sealed).as_json()
    assert report["result"] == INDETERMINATE
    assert _checks(report, 0)["integrity"] == (INDETERMINATE, "WORK_LIMIT")
    assert "CPU budget" in report["signatures"][0]["checks"][0]["detail"]


class _Clock:
    """A CPU clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_cpu_budget_is_checked_between_signatures_and_steps(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first pyHanko validation "costs" 6 s on the injected clock, the budget is 5 s: the first
    signature is validated but its later steps are not; the second is not started."""
    twice = _seal(context, _seal(context), seal_id="demo-530000-sm2")
    clock = _Clock()
    original = validate_pdf_signature

    def expensive(*args: Any, **kwargs: Any) -> Any:
        clock.now += 6.0
        return original(*args, **kwargs)

    monkeypatch.setattr("verify.pdf.validate_pdf_signature", expensive)
    report = _limited(verifier, WorkLimits(cpu_seconds=5.0, clock=clock)).verify(twice).as_json()
    assert report["result"] == INDETERMINATE
    first = _checks(report, 0)
    assert first["integrity"] == (PASSED, "OK") and first["signature"] == (PASSED, "OK")
    assert first["chain"] == (INDETERMINATE, "WORK_LIMIT")
    assert "modifications" not in first and "seal" not in first
    assert _checks(report, 1) == {"integrity": (INDETERMINATE, "WORK_LIMIT")}
    # the same clock standing still: the budget is never reached and both seals pass
    monkeypatch.setattr("verify.pdf.validate_pdf_signature", original)
    assert _limited(verifier, WorkLimits(cpu_seconds=5.0, clock=_Clock())).verify(twice).result == PASSED


def test_more_than_max_signatures_is_never_a_silent_pass(context: Context, verifier: Verifier) -> None:
    sealed = _seal(context)
    monkey = pytest.MonkeyPatch()
    try:
        monkey.setattr(pdf_module, "MAX_SIGNATURES", 1)
        twice = _seal(context, sealed, seal_id="demo-530000-sm2")
        report = verifier.verify(twice).as_json()
    finally:
        monkey.undo()
    assert report["result"] == INDETERMINATE
    assert len(report["signatures"]) == 1 and report["signatures"][0]["result"] == PASSED
    (check,) = report["checks"]
    assert (check["name"], check["status"], check["code"]) == ("signatures", INDETERMINATE, "WORK_LIMIT")
    assert check["detail"] == "1 signatures beyond the first 1 were not verified"


@pytest.mark.parametrize("kind", sorted(ACTIVE))
def test_active_content_is_flagged_and_does_not_change_the_verdict(
    context: Context, verifier: Verifier, kind: str
) -> None:
    build, what = ACTIVE[kind]
    sealed = _seal(context, build(), allow_active_content=True)
    report = verifier.verify(sealed)
    assert verifier.pdf.fast_declined == ""  # the fast path's list; tests/conftest.py compares the full path's
    assert report.result == PASSED
    assert what in report.as_json()["active_content"]
    page = render(report, "licence.pdf")
    assert "Active content" in page and html.escape(what) in page


@pytest.mark.parametrize("kind", sorted(BENIGN))
def test_plain_documents_carry_no_active_content_key(context: Context, verifier: Verifier, kind: str) -> None:
    report = verifier.verify(_seal(context, BENIGN[kind]())).as_json()
    assert report["result"] == PASSED and "active_content" not in report
    assert "Active content" not in render(verifier.verify(_seal(context)), "plain.pdf")


def test_active_content_added_after_sealing_is_flagged_and_a_modification(context: Context, verifier: Verifier) -> None:
    sealed = _seal(context)

    def open_action(writer: IncrementalPdfFileWriter) -> None:
        action = {pdf_name("/S"): pdf_name("/JavaScript"), pdf_name("/JS"): generic.TextStringObject("app.alert(1)")}
        writer.root[pdf_name("/OpenAction")] = generic.DictionaryObject(action)
        writer.update_root()

    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    open_action(writer)
    report = verifier.verify(_write(writer)).as_json()
    assert report["active_content"] == ["/OpenAction (JavaScript)"]
    assert report["result"] == FAILED
    assert _checks(report, 0)["modifications"] == (FAILED, "MODIFIED_AFTER_SIGNING")


def test_unsigned_documents_are_scanned_too(verifier: Verifier) -> None:
    report = verifier.verify(ACTIVE["page-open-launch"][0]()).as_json()
    assert (report["result"], report["code"]) == (INDETERMINATE, "NO_SIGNATURE_FOUND")
    assert report["active_content"] == ["page 1 /AA (Launch)"]


def test_the_public_endpoint_answers_a_spent_budget_with_a_report(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = _alias_fields(_seal(context), 10)
    tiny = _limited(verifier, WorkLimits(cpu_seconds=0.0))
    monkeypatch.setattr(context.verification, "verifier", lambda: tiny)
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        response = client.post("/v1/verify", files={"file": ("x.pdf", hostile, "application/pdf")})
        assert response.status_code == 200
        report = response.json()
        assert report["result"] == INDETERMINATE
        assert len(report["signatures"]) == 1 and len(report["signatures"][0]["also_fields"]) == 10
        assert _checks(report, 0) == {"integrity": (INDETERMINATE, "WORK_LIMIT")}
        page = client.post("/v1/verify", files={"file": ("x.pdf", hostile, "application/pdf")},
                           headers={"Accept": "text/html"})  # fmt: skip
        assert page.status_code == 200 and "Alias9" in page.text
