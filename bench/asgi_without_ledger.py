"""The anchor of bench/bench_ledger.py's issuance figure: the service as it was before the ledger existed.

`uvicorn bench.asgi_without_ledger:app`, for benchmarks only: the same app, code and database as
`api.asgi:app`, with the ledger's request-time work switched off in this process. Issuance still commits
its certificate and `certificate.issued` event row in one transaction (as it did before the ledger:
that row is what the ledger's queue is made of), but the response does not wait for a sequencer pass;
it answers the event's id where the index would be, as `X-Trustseal-Event` did before the ledger. The
background integrator is off too (the bench serves this with TRUSTSEAL_LEDGER_INTEGRATE_SECONDS=0), so
no pass and no checkpoint ever runs here. Nothing in the service has a flag for this.
"""

from __future__ import annotations

from api.app import create_app
from api.context import open_context
from ledger.sequencer import Sequenced

NO_LEAF = bytes(32)


def _event_id_only(event_id: int) -> Sequenced:
    return Sequenced(event_id=event_id, index=event_id, leaf_hash=NO_LEAF)


context = open_context()
setattr(context.ledger, "wait_for", _event_id_only)  # noqa: B010  # this process only
app = create_app(context)
