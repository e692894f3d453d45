"""Certificate profiles as data: loaded from YAML, validated once, immutable afterwards."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from gm import oids

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
EkuName = Literal[
    "server_auth",
    "client_auth",
    "email_protection",
    "time_stamping",
    "ocsp_signing",
    "document_signing",
    "seal_maker",  # gm.oids.EKU_SEAL_MAKER
    "trust_list_signer",  # gm.oids.EKU_TRUST_LIST_SIGNER
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
    common_name_in_san: bool = False  # a CN, if present, must repeat a SAN (TLS: legacy clients read the CN)


IpRange = Literal["global", "private", "loopback"]  # unspecified, multicast, link-local, reserved: never


class DnsNames(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    wildcard: bool = False  # `*.example.cn` (the whole leftmost label, never over a public suffix)


class IpAddresses(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ranges: tuple[IpRange, ...] = ("global",)


class Uris(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schemes: tuple[Literal["http", "https"], ...] = ("https",)


class EmailAddresses(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SanTypes(BaseModel):
    """Which subjectAltName types a profile takes (absent: none) and the rule for each (policies/names.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dns: DnsNames | None = None
    ip: IpAddresses | None = None
    email: EmailAddresses | None = None
    uri: Uris | None = None

    @property
    def any(self) -> bool:
        return any(rule is not None for rule in (self.dns, self.ip, self.email, self.uri))


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str = ""
    csr: bool = False  # a subscriber profile, issued from a CSR; otherwise only for keys in custody
    key_algorithms: tuple[Literal["sm2", "p256"], ...]
    validity_days: int = Field(gt=0, le=3660)
    key_usage: tuple[KeyUsageName, ...]
    extended_key_usage: tuple[EkuName, ...] = ()
    extended_key_usage_critical: bool = False
    ocsp_no_check: bool = False
    subject: SubjectRule
    san: Literal["forbidden", "optional", "required"] = "forbidden"
    san_types: SanTypes = SanTypes()
    personal: bool = False  # names a natural person: only officers, auditors and admins read it back
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
    raw["policy_oids"] = {name: str(oid).replace("{arc}", oids.ARC) for name, oid in raw["policy_oids"].items()}
    profiles = ProfileSet.model_validate(raw)
    for profile in profiles.profiles.values():
        if (profile.san == "forbidden") == profile.san_types.any:
            raise ValueError(f"profile {profile.name}: san {profile.san} with san_types {profile.san_types}")
        for policy in profile.policies:
            if policy not in profiles.policy_oids:
                raise ValueError(f"profile {profile.name} names unknown policy {policy}")
    return profiles


@lru_cache(maxsize=1)
def default_profiles() -> ProfileSet:
    return load_profiles()
