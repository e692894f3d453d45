"""Work limits of one verification. `POST /v1/verify` is public: a hostile document must not buy
unbounded CPU with one anonymous request (tried: 49 fields naming one signature in a 19 MB PDF cost
4.4 s of CPU). Whatever a limit leaves unexamined is INDETERMINATE `WORK_LIMIT`, never PASSED."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024
WORK_LIMIT = "WORK_LIMIT"


@dataclass(frozen=True)
class WorkLimits:
    """Defaults: 5 s of the calling thread's CPU time; signed bytes hashed at most 4x the file size,
    but always 32 MiB (many seals on a small file are normal) and never more than 256 MiB."""

    cpu_seconds: float = 5.0
    hash_factor: float = 4.0
    hash_floor: int = 32 * MIB
    hash_cap: int = 256 * MIB
    # thread CPU time: work done for this request, not time spent waiting for the network or the GIL
    clock: Callable[[], float] = time.thread_time

    def budget(self, size: int) -> Budget:
        return Budget(self, size)


class Budget:
    """What one verification of a `size`-byte document may still spend; started when made."""

    def __init__(self, limits: WorkLimits, size: int) -> None:
        self.limits = limits
        self.bytes_allowed = min(limits.hash_cap, max(limits.hash_floor, int(limits.hash_factor * size)))
        self.bytes_hashed = 0
        self._started = limits.clock()

    def spent(self) -> str | None:
        """Why no more work may be done (the CPU budget is used up), or None."""
        used = self.limits.clock() - self._started
        if used >= self.limits.cpu_seconds:
            return f"the CPU budget of {self.limits.cpu_seconds:g} s for one verification is used up"
        return None

    def take(self, hashed: int) -> str | None:
        """Reserve `hashed` bytes of hashing: None when allowed (and counted), else why not."""
        why = self.spent()
        if why is not None:
            return why
        if self.bytes_hashed + hashed > self.bytes_allowed:
            return (
                f"hashing {hashed} more bytes would exceed the {self.bytes_allowed} bytes one verification "
                f"may hash ({self.bytes_hashed} hashed so far)"
            )
        self.bytes_hashed += hashed
        return None


def signed_length(byte_range: object, size: int) -> int:
    """Bytes a /ByteRange makes the verifier hash, as far as the file has them (garbage counts as 0)."""
    try:
        values = [int(v) for v in byte_range]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return 0
    total = 0
    for start, length in zip(values[0::2], values[1::2], strict=False):
        if 0 <= start < size and length > 0:
            total += min(length, size - start)
    return total
