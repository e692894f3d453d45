"""The trust list's rollover fields (`certificates`, `links`: ca/trust_list.py, verify/trust.py) as hostile
input: `linked_roots` reads the list before its signature is checked, so no shape may crash it, and a
signed list with junk in those fields is refused with a code, never an exception of another kind."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.context import Context
from ca.trust_list import SIGNER_KEY
from gm import jcs
from tests.fixtures import examples
from verify.trust import TrustListError, TrustStore, linked_roots

_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40)  # JSON-safe (RFC 8785)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_pemish = st.sampled_from(["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "", "x"]) | _json


@given(doc=st.dictionaries(st.sampled_from(["regions", "cas", "links", "x"]), _json, max_size=3))
@settings(max_examples=examples(200), deadline=None)
def test_linked_roots_never_crashes_on_any_shape(doc: dict[str, Any]) -> None:
    assert linked_roots(doc, [], [], datetime.now(UTC)) == []


@pytest.fixture(scope="module")
def document(context: Context) -> dict[str, Any]:
    return context.verification.trust_list()


def _resigned(context: Context, doc: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k not in ("signature", "handover_signature")}
    body.pop("previous_signer_certificate", None)
    signature = context.custody.signer(context.custody.get(SIGNER_KEY).ref).sign(jcs.canonical(body))
    return {**body, "signature": base64.b64encode(signature).decode("ascii")}


@given(certificates=_pemish, links=_pemish)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_junk_in_certificates_or_links_is_refused_with_a_code(
    context: Context, document: dict[str, Any], certificates: Any, links: Any
) -> None:
    doc = copy.deepcopy(document)
    entry = doc["regions"][0]["cas"][0]
    entry["certificates"], entry["links"] = certificates, links
    signed = _resigned(context, doc)
    roots = [context.ca.ca_certificate("cn-root-sm2")]
    try:
        TrustStore().add_list(signed, roots=roots)
    except TrustListError as exc:
        assert exc.code == "TRUST_LIST_MALFORMED", exc.detail
    else:  # accepted only if the fields hold nothing but well-formed certificates of that CA (or nothing)
        assert certificates in ([], None) or isinstance(certificates, list)
        assert links in ([], None) or isinstance(links, list)


def test_a_certificate_of_another_subject_is_refused(context: Context, document: dict[str, Any]) -> None:
    from asn1crypto import pem

    doc = copy.deepcopy(document)
    entry = doc["regions"][0]["cas"][0]
    other = next(ca for region in doc["regions"] for ca in region["cas"] if ca["name"] != entry["name"])
    entry["certificates"] = [entry["certificate"], other["certificate"]]
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(_resigned(context, doc), roots=[context.ca.ca_certificate("cn-root-sm2")])
    assert refused.value.code == "TRUST_LIST_MALFORMED" and "another subject" in refused.value.detail
    assert pem.detect(other["certificate"].encode())
