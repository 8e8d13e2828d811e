"""`serve --workers N`: start N worker processes, keep them running, stop them in time.

The parent does not serve; it watches its workers:

- a worker that dies after it was serving (an out-of-memory kill, a crash) is replaced
  by a new one, so the port keeps N processes behind it instead of silently fewer;
- a worker that dies before it was serving (a setting it refuses, a port it cannot
  bind, a database it cannot reach) stops the server with exit code 1: a new one would
  fail the same way, over and over;
- on SIGTERM or Ctrl-C every worker gets SIGTERM and `stop_grace` seconds to finish its
  requests in flight and close its connections; one still running then is killed
  (SIGKILL) and the exit code is 1, so a worker stuck in its shutdown cannot keep the
  server, and the port, from going away.

A worker tells it is serving by setting its `ready` event once its socket listens.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.synchronize import Event

log = logging.getLogger("mana_credits.serve")

# How often the parent looks at its workers while nothing happens (seconds): the bound
# on how late it notices that a stop's grace ran out. A worker's exit wakes it at once.
POLL = 0.5


@dataclass(slots=True)
class Worker:
    """One worker process and the event it sets once it is serving."""

    process: SpawnProcess
    ready: Event


class Supervisor:
    """Runs `count` workers made by `start(ready)` (a not yet started process that sets
    `ready` once it serves) until a stop signal; see the module for the rules."""

    def __init__(
        self,
        context: SpawnContext,
        start: Callable[[Event], SpawnProcess],
        count: int,
        stop_grace: float,
    ) -> None:
        self._context = context
        self._start = start
        self._count = count
        self._stop_grace = stop_grace
        self._workers: list[Worker] = []
        self._stopping_since: float | None = None
        self._failed = False

    def run(self) -> int:
        """Start the workers and watch them until they are all gone; the exit code for
        `serve`: 0 after a clean stop, 1 after a worker failed or had to be killed."""
        before = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._watch()
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)
        return 1 if self._failed else 0

    def _watch(self) -> None:
        for _ in range(self._count):
            self._workers.append(self._spawn())
        while self._workers:
            wait([w.process.sentinel for w in self._workers], timeout=POLL)
            for worker in [w for w in self._workers if not w.process.is_alive()]:
                self._workers.remove(worker)
                self._ended(worker)
            stopping = self._stopping_since
            late = stopping is not None and time.monotonic() - stopping > self._stop_grace
            if late and self._workers:
                self._kill_the_rest()

    def _spawn(self) -> Worker:
        ready = self._context.Event()
        process = self._start(ready)
        process.start()
        return Worker(process, ready)

    def _ended(self, worker: Worker) -> None:
        code = worker.process.exitcode
        fields = {"pid": worker.process.pid, "exit_code": code}
        if self._stopping_since is not None:
            if code not in (0, -signal.SIGTERM):
                self._failed = True
                log.error("a worker failed while stopping", extra={"fields": fields})
            return
        if worker.ready.is_set():
            log.error("a worker died while serving: starting another", extra={"fields": fields})
            replacement = self._spawn()
            self._workers.append(replacement)
            if self._stopping_since is not None:  # the stop signal came while it started
                replacement.process.terminate()
            return
        self._failed = True
        log.error(
            "a worker stopped before it was serving: stopping the server",
            extra={"fields": fields},
        )
        self.stop()

    def stop(self) -> None:
        """SIGTERM to every worker, once; the grace period starts now."""
        if self._stopping_since is not None:
            return
        self._stopping_since = time.monotonic()
        for worker in self._workers:
            if worker.process.pid is not None and worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: each worker shuts down gracefully

    def _on_signal(self, _signum: int, _frame: object) -> None:
        # One SIGTERM per worker: a second would cut its shutdown short.
        self.stop()

    def _kill_the_rest(self) -> None:
        self._failed = True
        for worker in self._workers:
            log.error(
                "a worker was still stopping after the grace period: killed",
                extra={"fields": {"pid": worker.process.pid, "grace_seconds": self._stop_grace}},
            )
            worker.process.kill()
        for worker in self._workers:
            worker.process.join()
        self._workers.clear()


def spawn_context() -> SpawnContext:
    """Workers start from a fresh interpreter: nothing of the parent's event loop,
    database pools or threads is inherited."""
    return multiprocessing.get_context("spawn")
