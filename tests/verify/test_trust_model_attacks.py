"""The document never vouches for itself (issue 10, fail-opens 1, 2 and 5): a forged seal made by a
certificate holder who is no seal maker, a signature backdated after its key was revoked, a bare
SES_Signature bound to nothing. Each verified on both PDF paths (tests/conftest.py compares them)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from api.context import Context
from gm import ses
from gm.sm3 import sm3
from seal.demo import create_demo_seals
from signing import pdf as signing_pdf
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from tests.verify.attackers import Clock, Holder, both_paths, check, issue, seal_with
from verify.report import FAILED, INDETERMINATE, PASSED
from verify.service import Verifier

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))
ATTACKER_USCC = "91350100M000100Y43"


@pytest.fixture(scope="module")
def verifier(context: Context) -> Iterator[Verifier]:
    create_demo_seals(context.seals, actor="test")
    yield context.verification.verifier()


def _holder(context: Context, ca: str = "cn-370000-sm2") -> Holder:
    """An ordinary organisation certificate from a trusted regional CA: what any customer can have."""
    return issue(context, "org-seal", ca)


def _forged_seal(
    context: Context, holder: Holder, victim_id: str = "demo-370000-sm2", es_id: str | None = None
) -> bytes:
    """The victim's public seal (name, picture, esID) re-made and signed by the holder as its own maker."""
    copied = ses.parse_seal(context.seals.get(victim_id).esl_der)
    info = ses.build_seal_info(
        es_id=es_id or copied.es_id,
        seal_type=copied.seal_type,
        name=copied.name,
        certs=[holder.certificate],
        create_date=datetime.now(UTC),
        valid_start=copied.valid_start,
        valid_end=copied.valid_end,
        picture_type=copied.picture_type,
        picture=copied.picture,
        width_mm=copied.width_mm,
        height_mm=copied.height_mm,
    )
    return ses.assemble_seal(info, holder.certificate, holder.handle.sign(info))


def test_forged_seal_with_the_victims_esid_is_not_passed(context: Context, verifier: Verifier) -> None:
    holder = _holder(context)
    seal_der = _forged_seal(context, holder)
    picture = context.seals.get("demo-370000-sm2").picture_png
    report = both_paths(verifier, seal_with(holder, seal_der, picture))
    assert report["result"] == FAILED, report
    assert check(report, "signature") == (PASSED, "OK")  # the crypto is fine: only trust is missing
    assert check(report, "seal") == (INDETERMINATE, "SEAL_MAKER_UNTRUSTED")
    assert check(report, "seal_validity") == (FAILED, "SEAL_NOT_REGISTERED")
    assert report["subindication"] == "SIG_CONSTRAINTS_FAILURE"


def test_forged_seal_with_a_fresh_esid_is_indeterminate(context: Context, verifier: Verifier) -> None:
    holder = _holder(context)
    seal_der = _forged_seal(context, holder, es_id="370000" + "".join(secrets.choice("0123456789") for _ in range(8)))
    report = both_paths(verifier, seal_with(holder, seal_der, context.seals.get("demo-370000-sm2").picture_png))
    assert report["result"] == INDETERMINATE, report
    assert check(report, "seal") == (INDETERMINATE, "SEAL_MAKER_UNTRUSTED")
    assert report["signatures"][0]["subindication"] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_genuine_seal_still_passes_with_its_maker_trusted(context: Context, verifier: Verifier) -> None:
    sealed = context.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=CALLER, placement=Placement())
    report = both_paths(verifier, sealed.pdf)
    assert report["result"] == PASSED, report
    assert report["subindication"] is None and report["signatures"][0]["subindication"] is None
    assert check(report, "seal") == (PASSED, "OK")


def test_forged_bare_ses_signature_is_not_passed(context: Context, verifier: Verifier) -> None:
    holder = _holder(context)
    seal_der = _forged_seal(context, holder)
    content = b"licence body"
    tbs = ses.build_tbs_sign(seal_der=seal_der, time_info=datetime.now(UTC), data_hash=sm3(content),
                             property_info="licence.txt")  # fmt: skip
    blob = ses.assemble_ses_signature(tbs, holder.certificate, holder.handle.sign(tbs))
    report = verifier.verify(blob, content=content).as_json()
    assert report["result"] == FAILED
    assert check(report, "integrity") == (PASSED, "OK")
    assert check(report, "seal") == (INDETERMINATE, "SEAL_MAKER_UNTRUSTED")
    assert check(report, "seal_validity") == (FAILED, "SEAL_NOT_REGISTERED")
    # the forged .esl on its own
    alone = verifier.verify(seal_der).as_json()
    assert alone["result"] != PASSED
    assert check(alone, "seal") == (INDETERMINATE, "SEAL_MAKER_UNTRUSTED")


def test_bare_ses_signature_without_its_data_is_indeterminate(context: Context, verifier: Verifier) -> None:
    material = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="test", caller_seal_ids=("*",))
    content = b"the signed licence"
    tbs = ses.build_tbs_sign(seal_der=material.seal.esl_der, time_info=datetime.now(UTC), data_hash=sm3(content),
                             property_info="licence.txt")  # fmt: skip
    blob = ses.assemble_ses_signature(tbs, material.certificate, material.handle.sign(tbs))
    assert verifier.verify(blob, content=content).result == PASSED
    nothing = verifier.verify(blob).as_json()
    assert nothing["result"] == INDETERMINATE
    assert check(nothing, "integrity") == (INDETERMINATE, "SIGNED_DATA_NOT_FOUND")
    assert nothing["subindication"] == "SIGNED_DATA_NOT_FOUND"
    empty = verifier.verify(blob, content=b"").as_json()  # b"" is content: checked, and it does not match
    assert empty["result"] == FAILED
    assert check(empty, "integrity") == (FAILED, "DATA_HASH_FAILURE")


def test_seal_listing_nothing_usable_does_not_pass(context: Context, verifier: Verifier) -> None:
    """A genuine maker's seal whose certificate list is empty names no signer: not PASSED."""
    maker = context.seals.maker("cn-370000-sm2")
    victim = ses.parse_seal(context.seals.get("demo-370000-sm2").esl_der)
    material = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="test", caller_seal_ids=("*",))
    for certs, digests in (([], None), (None, [("md5", b"\x00" * 16)]), (None, [])):
        info = ses.build_seal_info(
            es_id=victim.es_id, seal_type=victim.seal_type, name=victim.name, certs=certs, cert_digests=digests,
            create_date=datetime.now(UTC), valid_start=victim.valid_start, valid_end=victim.valid_end,
            picture_type=victim.picture_type, picture=victim.picture, width_mm=40, height_mm=40,
        )  # fmt: skip
        seal_der = ses.assemble_seal(info, maker.certificate_der, context.custody.signer(maker.key_ref).sign(info))
        holder = Holder(material.handle, material.certificate, list(material.chain), "")
        report = both_paths(verifier, seal_with(holder, seal_der, victim.picture))
        assert report["result"] != PASSED
        assert check(report, "seal") == (INDETERMINATE, "SEAL_CERT_LIST_UNUSABLE")


def test_backdated_signature_after_key_compromise_is_not_passed(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = _holder(context)
    before = seal_with(holder, None, context.seals.get("demo-370000-sm2").picture_png)
    assert both_paths(verifier, before)["result"] == PASSED  # a plain signature, not revoked yet
    context.ca.revoke(holder.serial, "keyCompromise")
    # the thief signs a new document, claiming a signing time just before the revocation
    Clock.offset = timedelta(seconds=30)
    monkeypatch.setattr(signing_pdf, "datetime", Clock)
    backdated = seal_with(holder, None, context.seals.get("demo-370000-sm2").picture_png)
    monkeypatch.undo()
    for document in (backdated, before):  # without a timestamp nobody can tell the two apart
        report = both_paths(verifier, document)
        assert report["result"] == INDETERMINATE, report
        assert check(report, "revocation") == (INDETERMINATE, "REVOKED_NO_POE")
        assert report["subindication"] == "REVOKED_NO_POE"
        assert check(report, "signing_time")[1] == "CLAIMED_TIME"


def test_timestamp_before_revocation_keeps_a_signature_valid(context: Context, verifier: Verifier) -> None:
    """The same key, but a B-T signature made before the revocation: the timestamp is the proof."""
    from seal.service import SealRequest

    seal = context.seals.create(
        SealRequest(name="测试局", organisation_name="测试局", organisation_uscc="11370000MB00000015",
                    ca="cn-370000-sm2", allowed_callers=("test",)),
        actor="test",
    )  # fmt: skip
    stamped = context.signing.seal_pdf(make_pdf(), seal_id=seal.id, caller=CALLER, placement=Placement(), level="B-T")
    assert both_paths(verifier, stamped.pdf)["result"] == PASSED
    time.sleep(1.1)  # times are whole seconds: a revocation in the timestamp's second proves no order
    context.seals.transition(seal.id, "revoked", "test", actor="test")  # revokes its certificate too
    after = both_paths(verifier, stamped.pdf)
    assert check(after, "signing_time") == (PASSED, "TIMESTAMP")
    assert check(after, "revocation")[0] == PASSED
    assert check(after, "seal_validity")[0] == PASSED  # revoked after the timestamp
    assert after["result"] == PASSED, after


def test_validation_as_of_a_later_time_is_out_of_bounds(context: Context, verifier: Verifier) -> None:
    sealed = context.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=CALLER, placement=Placement())
    report = verifier.verify(sealed.pdf, at=datetime.now(UTC) + timedelta(days=365 * 30)).as_json()
    assert report["result"] == INDETERMINATE
    assert report["as_of"] == report["validation_time"]
    assert check(report, "chain") == (INDETERMINATE, "OUT_OF_BOUNDS_NO_POE")
    assert report["subindication"] == "OUT_OF_BOUNDS_NO_POE"


def test_forged_seal_in_an_ofd_is_not_passed(context: Context, verifier: Verifier) -> None:
    """The same forgery in an OFD package, the way vendors lay it out (tests/verify/ofd_builder.py)."""
    from types import SimpleNamespace

    from tests.verify import ofd_builder

    holder = _holder(context)
    forged = SimpleNamespace(
        seal=SimpleNamespace(esl_der=_forged_seal(context, holder)),
        certificate=holder.certificate,
        handle=holder.handle,
    )
    package = ofd_builder.zipped(ofd_builder.seal(forged, ofd_builder.content()).items())
    report = verifier.verify(package).as_json()
    assert report["format"] == "ofd" and report["result"] == FAILED, report
    assert check(report, "signature") == (PASSED, "OK") and check(report, "references")[0] == PASSED
    assert check(report, "seal") == (INDETERMINATE, "SEAL_MAKER_UNTRUSTED")
    assert check(report, "seal_validity") == (FAILED, "SEAL_NOT_REGISTERED")
    genuine = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="test", caller_seal_ids=("*",))
    honest = ofd_builder.zipped(ofd_builder.seal(genuine, ofd_builder.content()).items())
    assert verifier.verify(honest).result == PASSED


def test_a_genuine_makers_seal_for_another_region_is_not_passed(context: Context, verifier: Verifier) -> None:
    """Yunnan's own seal maker signs a seal whose esID says Shandong: a region's maker vouches only for
    its own region's seals."""
    maker = context.seals.maker("cn-530000-sm2")
    holder = _holder(context, "cn-530000-sm2")
    copied = ses.parse_seal(context.seals.get("demo-530000-sm2").esl_der)
    info = ses.build_seal_info(
        es_id="370000" + "".join(secrets.choice("0123456789") for _ in range(8)),
        seal_type=copied.seal_type, name="跨区印章", certs=[holder.certificate], create_date=datetime.now(UTC),
        valid_start=copied.valid_start, valid_end=copied.valid_end, picture_type=copied.picture_type,
        picture=copied.picture, width_mm=copied.width_mm, height_mm=copied.height_mm,
    )  # fmt: skip
    seal_der = ses.assemble_seal(info, maker.certificate_der, context.custody.signer(maker.key_ref).sign(info))
    report = both_paths(verifier, seal_with(holder, seal_der, copied.picture))
    assert report["result"] == INDETERMINATE, report
    assert check(report, "seal") == (INDETERMINATE, "SEAL_MAKER_REGION")
