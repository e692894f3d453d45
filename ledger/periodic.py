"""A daemon thread that runs one round every `every` seconds until stopped: the ledger's background
integrator (ledger/integrator.py) and the witnesses' cosignature collector (ledger/cosigning.py)."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("trustseal.ledger")


class Periodic:
    thread_name = "ledger-periodic"

    def __init__(self, every: float, what: str) -> None:
        if every <= 0:
            raise ValueError(f"the {what} period must be positive, not {every}")
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> object:
        """One round; a subclass's must never raise (the thread must outlive any failure)."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.thread_name} is already started")
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Wake the thread and wait for it: a round under way finishes (and ends its transaction) first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("%s did not stop within %.1f s", self.thread_name, timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()
