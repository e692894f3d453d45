"""The approvals policy: which dangerous operations need how many officers (M-of-N), as data.

`required` counts the requester: 2 is the requester plus one other officer. An operation the policy
does not list (or lists with 1) runs on one caller's word. The names are a closed set, so a typo in the
file is an error at start rather than an operation silently left without approval; suspending a seal
is deliberately not among them (one officer may suspend alone in an emergency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gm.sm3 import sm3

OPERATIONS = (
    "ca.create",
    "ca.cross_certify",
    "ca.withdraw",
    "key.rotate",
    "seal.create",
    "seal.revoke",
    "token.create.officer",
    "token.create.admin",
)
DEFAULT_FILE = Path(__file__).with_name("approvals.yaml")
MAX_REQUIRED = 10
MAX_EXPIRY_HOURS = 24 * 30


class PolicyError(ValueError):
    """An approvals policy file that cannot be trusted to say what it means."""


@dataclass(frozen=True)
class ApprovalPolicy:
    operations: dict[str, int] = field(default_factory=dict)
    expires_after_hours: float = 24.0
    text: str = ""  # the file as loaded (recorded in the ledger with its SM3)
    source: str | None = None  # the path it came from; None: no policy file, nothing needs approval

    def required(self, operation: str) -> int:
        return self.operations.get(operation, 1)

    @property
    def sm3_hex(self) -> str:
        return sm3(self.text.encode("utf-8")).hex()

    def as_json(self) -> dict[str, Any]:
        return {"version": 1, "expires_after_hours": self.expires_after_hours, "operations": dict(self.operations)}


def parse_policy(text: str, source: str | None = None) -> ApprovalPolicy:
    where = source or "approvals policy"
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where}: not YAML: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - {"version", "expires_after_hours", "operations"}:
        raise PolicyError(f"{where}: a mapping of version, expires_after_hours and operations")
    if raw.get("version", 1) != 1:
        raise PolicyError(f"{where}: version {raw.get('version')!r} is not 1")
    hours = raw.get("expires_after_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_EXPIRY_HOURS:
        raise PolicyError(f"{where}: expires_after_hours is a number of hours in (0, {MAX_EXPIRY_HOURS}]")
    operations = raw.get("operations") or {}
    if not isinstance(operations, dict):
        raise PolicyError(f"{where}: operations maps an operation to how many officers it needs")
    out: dict[str, int] = {}
    for name, required in operations.items():
        if name not in OPERATIONS:
            raise PolicyError(f"{where}: unknown operation {name!r}; operations are {', '.join(OPERATIONS)}")
        if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= MAX_REQUIRED:
            raise PolicyError(f"{where}: {name}: required is a whole number from 1 to {MAX_REQUIRED}")
        out[name] = required
    return ApprovalPolicy(operations=out, expires_after_hours=float(hours), text=text, source=source)


def load_policy(path: Path) -> ApprovalPolicy:
    """`$TRUSTSEAL_HOME/approvals.yaml`; no file: an empty policy (nothing needs approval)."""
    if not path.exists():
        return ApprovalPolicy()
    return parse_policy(path.read_text(encoding="utf-8"), str(path))


def default_policy_text() -> str:
    return DEFAULT_FILE.read_text(encoding="utf-8")
