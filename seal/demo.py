"""The demo seals `trustseal init` makes; their names are part of the contract (DESIGN.md)."""

from __future__ import annotations

from seal.errors import SealNotFound
from seal.service import SealRequest, SealService

DEMO_ORGANISATIONS = {
    "370000": ("山东省市场监督管理局", "11370000MB00000015"),
    "530000": ("云南省市场监督管理局", "11530000MB00000012"),
}


def demo_seal_ids() -> list[str]:
    return [f"demo-{region}-{family}" for region in DEMO_ORGANISATIONS for family in ("sm2", "p256")]


def create_demo_seals(service: SealService, actor: str = "init") -> list[str]:
    """Create whichever demo seal is missing; idempotent."""
    created = []
    for region, (name, uscc) in DEMO_ORGANISATIONS.items():
        for family in ("sm2", "p256"):
            seal_id = f"demo-{region}-{family}"
            try:
                service.get(seal_id)
                continue
            except SealNotFound:
                pass
            if service.ca.ca_status(f"cn-{region}-{family}") == "withdrawn":
                continue  # a withdrawn CA makes no seals (init --if-needed on such a home goes on)
            service.create(
                SealRequest(
                    name=name,
                    organisation_name=name,
                    organisation_uscc=uscc,
                    ca=f"cn-{region}-{family}",
                    seal_type="official",
                    code=f"{region}0000000"[:13],
                    seal_id=seal_id,
                ),
                actor=actor,
            )
            created.append(seal_id)
    return created
