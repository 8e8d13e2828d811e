"""Group commit: debits that arrive together are applied in one PostgreSQL transaction.

A debit on its own costs a transaction, and a transaction costs a WAL flush: with
`synchronous_commit` on, the commit, not the SQL, is what limits debits per second, and
for one busy user the row lock held until that flush serialises everything. Here each
debit joins the queue of a writer chosen by its user; a writer takes whatever is queued
(up to `max_batch`, after waiting up to `max_wait` for company) and applies the lot in
one transaction, whatever the batch size (`debit_batch.py`):

1. lock the batch's balance rows in user order (two writers never deadlock), then read
   their users' open credit lots and the idempotency keys already in the ledger;
2. decide each debit in arrival order with the core's `LotBook`: replay, no balance,
   refused, applied (lots past their expiry expired first, the rest burned in order);
3. write every balance change (with what priced debits accrued), ledger entry, lot, lot
   allocation, usage counter and priced usage counter in one statement; commit.

Every caller still gets its own outcome. One user always maps to the same writer, so a
user's debits are decided in arrival order. If the database refuses the batch as a
whole (a key claimed meanwhile by another process, a deadlock), each of its debits is
retried on its own as a batch of one, so one bad debit never fails the others. The
unique key constraint and the `balance >= 0` check remain the guarantees; the batch
only saves commits.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.ledger import Debit, DebitOutcome

from .debit_batch import BatchRejected, WriterConnection
from .store import SqlStore


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How debits are grouped. Each writer holds one connection while it has work.

    `max_batch`: most debits in one transaction. `max_wait` (seconds): how long a writer
    waits for company before a batch; 0 takes whatever queued while the previous batch
    committed. `writers`: writers per process, users hashed among them (a user's debits
    stay in arrival order; balances are locked in user order, so writers never
    deadlock). More writers overlap their commits but split the queue into smaller
    batches, each with its own fixed cost: on a machine whose cores are busy that costs
    more than the overlap saves (docs/performance.md, "Commit path and reads"), hence 1.
    """

    max_batch: int = 256
    max_wait: float = 0.0
    writers: int = 1
    # How long an idle writer keeps its connection before returning it to the pool:
    # a steady trickle of debits must not pay for a pool checkout each.
    linger: float = 1.0


@dataclass(slots=True)
class _Pending:
    debit: Debit
    answer: asyncio.Future[DebitOutcome]


class GroupCommitDebits:
    """A `DebitApplier` for PostgreSQL that commits concurrent debits together."""

    def __init__(self, store: SqlStore, settings: BatchSettings | None = None) -> None:
        self._store = store
        self.settings = settings or BatchSettings()
        self._writers = [_Writer(self) for _ in range(max(1, self.settings.writers))]
        store.holds_connections(self)
        self.transactions = 0  # committed by the writers, batched or alone
        self.debits = 0  # debits decided in them (applied, replayed or refused)

    async def apply(self, debit: Debit) -> DebitOutcome:
        writer = self._writers[zlib.crc32(debit.user_id.encode()) % len(self._writers)]
        answer: asyncio.Future[DebitOutcome] = asyncio.get_running_loop().create_future()
        writer.submit(_Pending(debit, answer))
        # A caller cancelled while waiting (client gone) cancels only its wait: the
        # debit, once queued, is applied or refused with its batch all the same.
        return await answer

    async def open_connection(self) -> WriterConnection:
        return await WriterConnection.open(self._store.engine)

    async def commit(self, connection: WriterConnection, batch: list[_Pending]) -> None:
        """Apply `batch` and answer every caller in it, whatever happens."""
        if len(batch) > 1:
            try:
                outcomes = await connection.apply_batch([p.debit for p in batch])
            except BatchRejected:
                pass  # one by one below
            except Exception as exc:  # StoreUnavailable mostly
                # If the connection died during COMMIT, whether it landed is unknown:
                # callers retry with their idempotency keys, as with a single debit.
                _fail(batch, exc)
                return
            else:
                self._count(len(batch))
                for pending, outcome in zip(batch, outcomes, strict=True):
                    _answer(pending, outcome)
                return
        for pending in batch:
            try:
                outcome = await connection.apply_one(pending.debit)
            except Exception as exc:
                _fail([pending], exc)
            else:
                self._count(1)
                _answer(pending, outcome)

    async def close(self) -> None:
        for writer in self._writers:
            await writer.stop()

    def _count(self, debits: int) -> None:
        self.transactions += 1
        self.debits += debits


class _Writer:
    """One queue and at most one task draining it; the task ends when the queue is empty,
    returning its connection to the pool."""

    def __init__(self, owner: GroupCommitDebits) -> None:
        self._owner = owner
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.Future[None] | None = None
        self._closing = False

    def submit(self, pending: _Pending) -> None:
        self._queue.append(pending)
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def stop(self) -> None:
        """Apply what is queued, then return the connection; later debits start anew."""
        self._closing = True
        try:
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)
            if self._task is not None:
                await asyncio.shield(self._task)
        finally:
            self._closing = False

    async def _more(self) -> bool:
        """Wait up to `linger` for work; False when none came."""
        # Step aside once: callers just answered are ready to run, and each will submit
        # its next debit before this writer runs again; they then form one batch.
        await asyncio.sleep(0)
        if self._queue or self._closing:
            return bool(self._queue)
        self._idle = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._owner.settings.linger):
                await self._idle
        except TimeoutError:
            return bool(self._queue)
        finally:
            self._idle = None
        await asyncio.sleep(0)  # and let the first caller's companions join it
        return bool(self._queue)  # empty when woken by `stop`

    async def _drain(self) -> None:
        settings = self._owner.settings
        batch: list[_Pending] = []
        connection: WriterConnection | None = None
        try:
            while await self._more():
                if settings.max_wait > 0 and len(self._queue) < settings.max_batch:
                    # Give concurrent callers a moment to join this batch.
                    await asyncio.sleep(settings.max_wait)
                batch = self._queue[: settings.max_batch]
                del self._queue[: settings.max_batch]
                if connection is None:
                    try:
                        connection = await self._owner.open_connection()
                    except StoreUnavailable as exc:
                        _fail(batch, exc)
                        continue
                await self._owner.commit(connection, batch)
                batch = []
                if connection.broken:
                    await connection.close()
                    connection = None
        finally:
            self._task = None
            # Only when cancelled (shutdown) are callers left waiting: answer them.
            _fail([*batch, *self._queue], StoreUnavailable())
            self._queue = []
            if connection is not None:
                await connection.close()


def _answer(pending: _Pending, outcome: DebitOutcome) -> None:
    if not pending.answer.done():
        pending.answer.set_result(outcome)


def _fail(batch: Sequence[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.answer.done():
            pending.answer.set_exception(exc)
