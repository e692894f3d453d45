"""Validation reports: one verdict per check with a stable code (after ETSI EN 319 102-1 sub-indications),
rolled up per signature and per document. The JSON shape is DESIGN.md's contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, INDETERMINATE, SKIPPED = "PASSED", "FAILED", "INDETERMINATE", "SKIPPED"

# Plain-language explanations for people at a service hall (zh / en), by code.
EXPLANATIONS: dict[str, tuple[str, str]] = {
    "OK": ("通过", "passed"),
    "FORMAT_FAILURE": ("文件格式无法解析", "the file could not be parsed"),
    "NO_SIGNATURE_FOUND": ("文件中没有签章", "the document carries no signature"),
    "HASH_FAILURE": ("签章后文件内容被改动", "the document was changed after it was sealed"),
    "SIG_CRYPTO_FAILURE": ("签名值验证失败", "the signature value does not verify"),
    "NO_CERTIFICATE_CHAIN_FOUND": ("证书不能追溯到受信任的根", "the certificate does not lead to a trusted root"),
    "CA_WITHDRAWN": ("签发机构在签章时已被撤销信任", "the issuing CA was withdrawn before the signing time"),
    "REVOKED": ("签章证书已被吊销", "the signing certificate was revoked"),
    "NO_REVOCATION_SOURCE": (
        "证书未提供吊销查询途径，吊销状态未检查",
        "the certificate names no revocation service: revocation was not checked",
    ),
    "REVOCATION_UNKNOWN": ("无法确认证书是否被吊销", "revocation status could not be established"),
    "EXPIRED": ("证书在签章时已过期", "the certificate had expired at the signing time"),
    "NOT_YET_VALID": ("证书在签章时尚未生效", "the certificate was not yet valid at the signing time"),
    "OUT_OF_BOUNDS_NO_POE": ("签章时间不在证书有效期内", "signing time outside the certificate's validity"),
    "SEAL_SIGNATURE_FAILURE": ("印章本身的制章签名无效", "the seal's own (maker's) signature is invalid"),
    "SEAL_CERT_MISMATCH": ("签章证书不属于该印章", "the signing certificate is not one the seal lists"),
    "SEAL_EXPIRED": ("签章时印章不在有效期内", "the seal was outside its validity period when used"),
    "SEAL_REVOKED": ("印章已被注销", "the seal has been revoked"),
    "SEAL_SUSPENDED": ("印章已被暂停使用", "the seal is suspended"),
    "SEAL_ABSENT": ("签名未附带印章数据", "the signature carries no seal data"),
    "CLAIMED_TIME": ("签章时间为签章方声明，未经时间戳证明", "signing time claimed by the signer, not timestamped"),
    "TIMESTAMP": ("签章时间由时间戳证明", "signing time proven by a timestamp"),
    "TIMESTAMP_FAILURE": ("时间戳无效", "the timestamp is invalid"),
    "MODIFIED_AFTER_SIGNING": ("签章后文件被做了不允许的修改", "disallowed changes were made after sealing"),
    "LATER_SIGNATURES_ONLY": ("签章后仅增加了其他签章或表单填写", "only later seals or form filling followed"),
    "DATA_HASH_FAILURE": ("文档摘要与签章记录不符", "the document digest does not match the seal signature"),
    "REFERENCE_FAILURE": ("文件中被保护的内容已改变", "a protected file inside the document changed"),
    "UNCOVERED_CONTENT": (
        "文件中显示的内容有部分未被签章保护",
        "the document shows content that the seal does not protect",
    ),
    "LICENCE_SUSPENDED": ("证照已被暂停", "the licence is suspended"),
    "LICENCE_REVOKED": ("证照已被注销", "the licence is revoked"),
    "LICENCE_UNKNOWN": ("证照状态无法查询", "the licence status could not be found"),
    "LICENCE_ISSUER_MISMATCH": ("证照发证机构不是签章单位", "the licence's issuer is not the sealing organisation"),
    "LICENCE_ID_INVALID": ("签章所覆盖的证照标识或元数据无效", "the signed licence identifier or metadata is invalid"),
    "UNSUPPORTED": ("不支持的签名类型", "unsupported signature type"),
    "REVOKED_NO_POE": (
        "证书已被吊销，且无时间戳证明签章早于吊销",
        "the certificate was revoked and nothing proves the signature existed before that",
    ),
    "REVOKED_CA_NO_POE": (
        "签发机构已被撤销信任，且无时间戳证明签章早于撤销",
        "the issuing CA was withdrawn and nothing proves the signature existed before that",
    ),
    "NO_POE": ("无法证明签章的时间", "nothing proves when the signature was made"),
    "SIGNED_DATA_NOT_FOUND": ("未提供被签名的数据，无法核对", "the signed data was not given, so it was not checked"),
    "SEAL_MAKER_UNTRUSTED": (
        "制章者不在信任列表中，印章来源无法确认",
        "the seal maker is not trusted by the trust list: the seal's origin cannot be confirmed",
    ),
    "SEAL_MAKER_REGION": (
        "制章者无权为该地区制作印章",
        "the seal maker may not make seals for the region the seal's code names",
    ),
    "SEAL_MAKER_INVALID": ("制章者证书无效", "the seal maker's certificate is not valid"),
    "SEAL_NOT_REGISTERED": (
        "印章与登记的印章不一致（疑似伪造）",
        "the seal differs from the seal registered under its code (a forgery?)",
    ),
    "SEAL_CERT_LIST_UNUSABLE": (
        "印章未列出可核对的签章证书",
        "the seal lists no usable signer certificate to compare with",
    ),
    "WORK_LIMIT": (
        "超出单次验证的计算量上限，未完成检查",
        "not checked: the work limit of one verification was reached",
    ),
    "TRY_LATER": ("信任列表已过期，请获取最新列表后重试", "the trust list has expired: fetch a fresh one and retry"),
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": (
        "签名使用了已不安全的算法（如 MD5、SHA-1），且无在此之前存在的证明",
        "the signature uses an algorithm no longer considered secure (MD5, SHA-1), with no proof it existed before",
    ),
}

# EN 319 102-1 sub-indication behind each of our codes (codes that are sub-indications map to themselves).
SUBINDICATIONS: dict[str, str] = {
    "NO_SIGNING_CERTIFICATE_FOUND": "NO_SIGNING_CERTIFICATE_FOUND",
    "CA_WITHDRAWN": "REVOKED_CA_NO_POE",
    "REVOCATION_UNKNOWN": "TRY_LATER",
    "NO_REVOCATION_SOURCE": "TRY_LATER",
    "SEAL_SIGNATURE_FAILURE": "SIG_CRYPTO_FAILURE",
    "SEAL_CERT_MISMATCH": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_CERT_LIST_UNUSABLE": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_EXPIRED": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_REVOKED": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_SUSPENDED": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_NOT_REGISTERED": "SIG_CONSTRAINTS_FAILURE",
    "SEAL_MAKER_UNTRUSTED": "NO_CERTIFICATE_CHAIN_FOUND",
    "SEAL_MAKER_REGION": "CHAIN_CONSTRAINTS_FAILURE",
    "SEAL_MAKER_INVALID": "CHAIN_CONSTRAINTS_FAILURE",
    "TIMESTAMP_FAILURE": "NO_POE",
    "MODIFIED_AFTER_SIGNING": "SIG_CONSTRAINTS_FAILURE",
    "DATA_HASH_FAILURE": "HASH_FAILURE",
    "REFERENCE_FAILURE": "HASH_FAILURE",
    "LICENCE_SUSPENDED": "SIG_CONSTRAINTS_FAILURE",
    "LICENCE_REVOKED": "SIG_CONSTRAINTS_FAILURE",
    "LICENCE_UNKNOWN": "SIG_CONSTRAINTS_FAILURE",
    "UNSUPPORTED": "FORMAT_FAILURE",
    "UNCOVERED_CONTENT": "SIG_CONSTRAINTS_FAILURE",
    "LICENCE_ID_INVALID": "SIG_CONSTRAINTS_FAILURE",
    "LICENCE_ISSUER_MISMATCH": "SIG_CONSTRAINTS_FAILURE",
    "NO_SIGNATURE_FOUND": "NO_SIGNATURE_FOUND",
}


def subindication(code: str) -> str:
    """The sub-indication of a FAILED or INDETERMINATE check with `code`: EN 319 102-1's own names pass
    through; ours map to the nearest one (SIG_CONSTRAINTS_FAILURE for seal and licence rules)."""
    return SUBINDICATIONS.get(code, code)


@dataclass
class Check:
    name: str
    status: str
    code: str = "OK"
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "code": self.code, "detail": self.detail}


def _first_subindication(checks: list[Check], result: str) -> str | None:
    """The sub-indication of the first check whose status is the rolled-up result (None when PASSED)."""
    if result == PASSED:
        return None
    return next((subindication(c.code) for c in checks if c.status == result), None)


def roll_up(statuses: list[str]) -> str:
    if FAILED in statuses:
        return FAILED
    if INDETERMINATE in statuses:
        return INDETERMINATE
    return PASSED


@dataclass
class SignatureReport:
    signer: dict[str, Any] = field(default_factory=dict)
    seal: dict[str, Any] | None = None
    signing_time: str | None = None
    signing_time_source: str | None = None  # timestamp | claimed
    region: str | None = None
    field_name: str | None = None
    modifications: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    also_fields: list[str] = field(default_factory=list)  # other fields whose /V is this same signature

    def add(self, name: str, status: str, code: str = "OK", detail: str = "") -> Check:
        check = Check(name, status, code, detail)
        self.checks.append(check)
        return check

    @property
    def result(self) -> str:
        return roll_up([c.status for c in self.checks])

    @property
    def subindication(self) -> str | None:
        return _first_subindication(self.checks, self.result)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "result": self.result,
            "subindication": self.subindication,
            "field": self.field_name,
            "signer": self.signer,
            "seal": self.seal,
            "region": self.region,
            "signing_time": self.signing_time,
            "signing_time_source": self.signing_time_source,
            "modifications": self.modifications,
            "checks": [c.as_json() for c in self.checks],
        }
        if self.also_fields:
            out["also_fields"] = self.also_fields
        return out


@dataclass
class Report:
    format: str
    signatures: list[SignatureReport] = field(default_factory=list)
    code: str | None = None  # document-level reason (NO_SIGNATURE_FOUND, FORMAT_FAILURE)
    detail: str = ""
    checks: list[Check] = field(default_factory=list)  # document-level checks (format)
    validation_time: str | None = None  # the "current time" of the validation
    as_of: bool = False  # validation_time was given by the caller (a past time), not the clock
    active_content: list[str] = field(default_factory=list)  # flagged, not judged: the verdict ignores it

    @property
    def result(self) -> str:
        if self.code == "NO_SIGNATURE_FOUND":
            return INDETERMINATE
        statuses = [c.status for c in self.checks] + [s.result for s in self.signatures]
        if not self.signatures and FAILED not in statuses:
            return INDETERMINATE
        return roll_up(statuses)

    @property
    def subindication(self) -> str | None:
        result = self.result
        if result == PASSED:
            return None
        if self.code is not None:
            return subindication(self.code)
        found = _first_subindication(self.checks, result)
        if found is None:
            found = next((s.subindication for s in self.signatures if s.result == result), None)
        return found or "NO_SIGNATURE_FOUND"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "result": self.result,
            "subindication": self.subindication,
            "format": self.format,
            "signatures": [s.as_json() for s in self.signatures],
        }
        if self.validation_time is not None:
            out["validation_time"] = self.validation_time
        if self.as_of:
            out["as_of"] = self.validation_time
        if self.code is not None:
            out["code"] = self.code
            out["detail"] = self.detail
        if self.checks:
            out["checks"] = [c.as_json() for c in self.checks]
        if self.active_content:
            out["active_content"] = self.active_content
        return out


def format_failure(fmt: str, detail: str) -> Report:
    report = Report(format=fmt, code="FORMAT_FAILURE", detail=detail)
    report.checks.append(Check("format", FAILED, "FORMAT_FAILURE", detail))
    return report


EXIT_CODES = {PASSED: 0, FAILED: 1, INDETERMINATE: 3}
