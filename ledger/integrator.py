"""The background integrator: every committed event into the log and under a signed checkpoint within 1 s.

Requests that answer their index (sealing, issuance) run a sequencer pass themselves; every other
event (a revocation, a seal changed, a batch job's documents, a key rotated) would otherwise wait for
the next such request or checkpoint read. The integrator is a thread, started with the app (api/app.py
lifespan), that every `every` seconds (0.25 by default, `TRUSTSEAL_LEDGER_INTEGRATE_SECONDS`):

1. asks whether any event waits (a read through the partial index on `ledger_index IS NULL`: an idle
   service takes no write lock, which on SQLite every writer shares);
2. if so, runs a sequencer pass (the leader lock makes it safe with any number of processes, each with
   its integrator: a pass that finds the queue drained by another leader gives nothing);
3. when the tree grew past the checkpoint this process last signed, signs and publishes a new one
   (`Ledger.checkpoint`, the one `GET /v1/ledger/checkpoint` serves).

So a committed event is covered by a signed checkpoint after at most one period plus a pass and a
signature. A failing tick (the database away, custody unreachable) is logged and retried at the next
one; it never ends the thread. `stop()` wakes the thread and joins it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ledger.checkpoint import Checkpoint
from ledger.periodic import Periodic

log = logging.getLogger("trustseal.ledger")

DEFAULT_EVERY = 0.25
# While ticks keep failing, the full traceback is logged for the first and then once per this many.
LOG_EVERY_FAILURES = 40


class Integrator(Periodic):
    thread_name = "ledger-integrator"

    def __init__(self, integrate: Callable[[], Checkpoint | None], every: float = DEFAULT_EVERY) -> None:
        super().__init__(every, "integration")
        self._integrate = integrate
        self.ticks = 0
        self.failures = 0  # consecutive failed ticks; 0 once one succeeds

    def tick(self) -> Checkpoint | None:
        """One round; never raises (the thread must outlive any failure)."""
        try:
            published = self._integrate()
        except Exception:
            self.failures += 1
            if self.failures % LOG_EVERY_FAILURES == 1:
                log.exception("ledger integration failed (%d in a row), retrying", self.failures)
            return None
        finally:
            self.ticks += 1
        if self.failures:
            log.warning("ledger integration recovered after %d failed rounds", self.failures)
            self.failures = 0
        return published
