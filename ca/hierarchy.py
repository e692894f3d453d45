"""The demo hierarchy `trustseal init` creates; names are part of the contract (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ca.authority import CertificateAuthorityService
from keys.custody import KeyAlgorithm


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    name_zh: str


REGIONS = (Region("370000", "Shandong", "山东省"), Region("530000", "Yunnan", "云南省"))
# The national issuing CAs certify national services (TSA units, the ledger key): a region's trouble
# (say its CA withdrawn) must not take every region's timestamps with it.
NATIONAL = Region("100000", "National", "全国")
FAMILIES = (KeyAlgorithm.SM2, KeyAlgorithm.P256)
ORG = "trustseal demo"


def root_name(family: KeyAlgorithm) -> str:
    return f"cn-root-{family}"


def regional_name(region: Region, family: KeyAlgorithm) -> str:
    return f"cn-{region.code}-{family}"


def national_name(family: KeyAlgorithm | str) -> str:
    return f"cn-{NATIONAL.code}-{family}"


def demo_ca_names() -> list[str]:
    return (
        [root_name(f) for f in FAMILIES]
        + [national_name(f) for f in FAMILIES]
        + [regional_name(r, f) for f in FAMILIES for r in REGIONS]
    )


@dataclass(frozen=True)
class _Planned:
    name: str
    family: KeyAlgorithm
    common_name: str
    ca_profile: str
    parent: str | None = None
    region: Region | None = None


def _plan() -> list[_Planned]:
    """Every demo CA, parents before children: per family the root, the national issuing CA, the regions."""
    plan = []
    for family in FAMILIES:
        root, upper = root_name(family), family.upper()
        plan.append(_Planned(root, family, f"China Government Services Root CA {upper} (demo)", "root-ca"))
        plan.append(_Planned(national_name(family), family, f"China Government Services National Issuing CA "
                             f"{upper} (demo)", "issuing-ca", root, NATIONAL))  # fmt: skip
        plan.extend(
            _Planned(regional_name(r, family), family, f"{r.name} {r.code} CA {upper} (demo)", "regional-ca", root, r)
            for r in REGIONS
        )
    return plan


def create_demo_hierarchy(service: CertificateAuthorityService, actor: str = "init") -> list[str]:
    """Create whatever part of the demo hierarchy is missing; idempotent."""
    existing = {ca.name for ca in service.list_cas()}
    created = []
    for ca in _plan():
        if ca.name in existing:
            continue
        subject = {"country_name": "CN"}  # the order the names have always had
        if ca.region is not None and ca.region is not NATIONAL:
            subject["state_or_province_name"] = ca.region.name_zh
        subject |= {"organization_name": ORG, "common_name": ca.common_name}
        service.create_ca(
            ca.name,
            algorithm=ca.family,
            subject=subject,
            ca_profile=ca.ca_profile,
            parent=ca.parent,
            region_code=ca.region.code if ca.region else None,
            region_name=ca.region.name if ca.region else None,
            actor=actor,
        )
        created.append(ca.name)
    return created
