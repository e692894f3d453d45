"""Certificate profiles as data: loaded from YAML, validated once, immutable afterwards."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FILE = Path(__file__).parent / "profiles.yaml"

KeyUsageName = Literal[
    "digital_signature",
    "non_repudiation",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
]
# trust_list_signer: our EKU under gm.oids' configurable arc (ca/ maps the name to the OID)
EkuName = Literal[
    "server_auth",
    "client_auth",
    "email_protection",
    "time_stamping",
    "ocsp_signing",
    "document_signing",
    "trust_list_signer",
]
SubjectAttr = Literal[
    "common_name",
    "organization_name",
    "organizational_unit_name",
    "organization_identifier",
    "country_name",
    "state_or_province_name",
    "locality_name",
    "serial_number",
]


class SubjectRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: tuple[SubjectAttr, ...] = ()
    optional: tuple[SubjectAttr, ...] = ()
    organization_identifier: Literal["uscc", "any"] = "any"


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str = ""
    key_algorithms: tuple[Literal["sm2", "p256"], ...]
    validity_days: int = Field(gt=0, le=3660)
    key_usage: tuple[KeyUsageName, ...]
    extended_key_usage: tuple[EkuName, ...] = ()
    extended_key_usage_critical: bool = False
    ocsp_no_check: bool = False
    subject: SubjectRule
    san: Literal["forbidden", "optional", "required"] = "forbidden"
    policies: tuple[str, ...] = ()
    root_may_issue: bool = False  # roots certify CAs only, except for profiles that say so


class CAProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    validity_days: int = Field(gt=0, le=10000)
    key_usage: tuple[KeyUsageName, ...]
    path_length: int | None = None


class ProfileSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    policy_oids: dict[str, str]
    profiles: dict[str, Profile]
    ca_profiles: dict[str, CAProfile]

    def policy_oid(self, name: str) -> str:
        return self.policy_oids[name]


def load_profiles(path: Path = DEFAULT_FILE) -> ProfileSet:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section in ("profiles", "ca_profiles"):
        for name, body in raw.get(section, {}).items():
            body["name"] = name
    profiles = ProfileSet.model_validate(raw)
    for profile in profiles.profiles.values():
        for policy in profile.policies:
            if policy not in profiles.policy_oids:
                raise ValueError(f"profile {profile.name} names unknown policy {policy}")
    return profiles


@lru_cache(maxsize=1)
def default_profiles() -> ProfileSet:
    return load_profiles()
