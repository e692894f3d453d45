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


def create_demo_hierarchy(service: CertificateAuthorityService, actor: str = "init") -> list[str]:
    """Create whatever part of the demo hierarchy is missing; idempotent."""
    existing = {ca.name for ca in service.list_cas()}
    created = []
    for family in FAMILIES:
        root = root_name(family)
        if root not in existing:
            service.create_ca(
                root,
                algorithm=family,
                subject={
                    "country_name": "CN",
                    "organization_name": ORG,
                    "common_name": f"China Government Services Root CA {family.upper()} (demo)",
                },
                ca_profile="root-ca",
                actor=actor,
            )
            created.append(root)
        national = national_name(family)
        if national not in existing:
            service.create_ca(
                national,
                algorithm=family,
                subject={
                    "country_name": "CN",
                    "organization_name": ORG,
                    "common_name": f"China Government Services National Issuing CA {family.upper()} (demo)",
                },
                ca_profile="issuing-ca",
                parent=root,
                region_code=NATIONAL.code,
                region_name=NATIONAL.name,
                actor=actor,
            )
            created.append(national)
        for region in REGIONS:
            name = regional_name(region, family)
            if name in existing:
                continue
            service.create_ca(
                name,
                algorithm=family,
                subject={
                    "country_name": "CN",
                    "state_or_province_name": region.name_zh,
                    "organization_name": ORG,
                    "common_name": f"{region.name} {region.code} CA {family.upper()} (demo)",
                },
                ca_profile="regional-ca",
                parent=root,
                region_code=region.code,
                region_name=region.name,
                actor=actor,
            )
            created.append(name)
    return created
