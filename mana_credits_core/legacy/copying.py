"""Copying one old table after another: counts, progress and metadata made objects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from ..ledger import LedgerEntry
from ..purchases import Package, Purchase
from . import rules
from .ports import SOURCE_TABLES
from .report import AnomalyKind, ImportReport

Progress = Callable[[str, int, int], None]
"""`progress(table, rows_done_now, rows_in_table)`, for a progress display."""

T = TypeVar("T")

M = TypeVar("M", LedgerEntry, Package, Purchase)


def objects(report: ImportReport, row: M) -> M:
    """`row` with its metadata an object or null (`rules.metadata`), reported if not."""
    kept, wrapped = rules.metadata(row.metadata)
    if not wrapped:
        return row
    report.add(AnomalyKind.METADATA_NOT_OBJECT, row.id, f"metadata {row.metadata!r}")
    return replace(row, metadata=kept)


async def each(
    batches: AsyncIterator[list[Package]], report: ImportReport
) -> AsyncIterator[list[Package]]:
    async for batch in batches:
        yield [objects(report, package) for package in batch]


class Steps:
    """Counting and progress for the copy of one table after another."""

    def __init__(self, report: ImportReport, counts: dict[str, int], progress: Progress | None):
        self.report = report
        self.counts = counts
        self._progress = progress
        for table in SOURCE_TABLES:
            report.table(table)

    def advance(self, table: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(table, done, total)

    async def copy(
        self,
        table: str,
        batches: AsyncIterator[list[T]],
        write: Callable[[Sequence[T]], Awaitable[int]],
    ) -> None:
        """Write every batch; count what was read, written and already there."""
        total = self.counts.get(table, 0)
        async for batch in batches:
            await self.write(table, batch, write, source=len(batch))
            self.advance(table, len(batch), total)

    async def write(
        self,
        table: str,
        rows: Sequence[T],
        write: Callable[[Sequence[T]], Awaitable[int]],
        *,
        source: int,
    ) -> None:
        count = self.report.table(table)
        count.source += source
        if not rows:
            return
        written = await write(rows)
        count.written += written
        count.skipped += len(rows) - written
