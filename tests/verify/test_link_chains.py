"""`linked_roots` follows chains of link certificates (review finding 6): after two rollovers of a root a
relying party holding only the first root reaches the third key through the second (NewWithOld k2←k1, then
k3←k2), never through a revoked link, and never further than MAX_LINK_HOPS."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from asn1crypto import crl, pem, x509
from sqlalchemy import select

from api.context import Context
from ca.rollover import LINK_PROFILE, roll_over
from keys.custody import KeyAlgorithm
from store.models import Certificate
from verify.trust import linked_roots


def _doc(links: list[bytes]) -> dict[str, object]:
    return {"regions": [{"cas": [{"links": [pem.armor("CERTIFICATE", der).decode() for der in links]}]}]}


def test_two_rollovers_are_bridged_from_the_first_root_and_a_revoked_link_breaks_the_chain(context: Context) -> None:
    service = context.ca
    name = f"tmp-root-{secrets.token_hex(3)}-p256"
    service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} Root"},
        ca_profile="root-ca",
        actor="test",
    )
    first = service.ca_certificate(name)
    first_scope = service.snapshot().get(name).crl_scope
    second_roll = roll_over(service, name, actor="test")
    second = service.ca_certificate(name)
    roll_over(service, name, actor="test")
    third = service.ca_certificate(name)
    with service.db.session() as session:
        links = session.scalars(
            select(Certificate.der).where(Certificate.issuer_ca == name, Certificate.profile == LINK_PROFILE)
        ).all()
    assert len(links) == 4
    now = datetime.now(UTC)
    reached = {c.public_key.dump() for c in linked_roots(_doc(list(links)), [first], [], now)}
    assert reached == {second.public_key.dump(), third.public_key.dump()}
    # the third key's OCSP signer chains to a key reached from the first root alone
    signer = x509.Certificate.load(service.snapshot().get(name).ocsp_certificate_der)
    assert signer.authority_key_identifier == third.key_identifier and third.public_key.dump() in reached
    # holding only the third root, the chain runs backwards to the first key
    back = {c.public_key.dump() for c in linked_roots(_doc(list(links)), [third], [], now)}
    assert back == {first.public_key.dump(), second.public_key.dump()}
    # NewWithOld k2←k1 revoked on k1's CRL: from the first root alone nothing is reached any more
    service.revoke(second_roll.links[0], "keyCompromise")
    first_crl = crl.CertificateList.load(service.current_crl(name, first_scope))
    later = datetime.now(UTC)
    assert linked_roots(_doc(list(links)), [first], [first_crl], later) == []
