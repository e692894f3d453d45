"""A rotation's new key version is provisional until its user switched to it.

Custody makes the version first (so a certificate can be asked for its public key), and an enabled version
is what the bare key name resolves to (newest enabled). A rotation that fails after that — the issuing CA
withdrawn between the check and the issue, the database gone — would leave an uncertified version that the
next `custody.get(name)` hands out. `provisional_version` disables it again when the block fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from keys.custody import CustodyError, KeyCustody, KeyVersion

log = logging.getLogger("trustseal.keys")


@contextmanager
def provisional_version(custody: KeyCustody, name: str) -> Iterator[KeyVersion]:
    """`custody.rotate(name)`, and the new version disabled if the block (certify it, switch to it) raises;
    the block's error propagates unchanged."""
    version = custody.rotate(name)
    try:
        yield version
    except BaseException:
        try:
            custody.disable(name, version.version)
        except CustodyError:  # the original error matters more; the sweep (api/keys.py) retries the disable
            log.exception("could not disable %s after its rotation failed", version.ref)
        raise
