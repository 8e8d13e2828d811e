"""Undoable writes for the in-memory store's tables, so a unit of work rolls back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Undo = Callable[[], None]


def undoable_set(table: dict[Any, Any], key: Any, value: Any, undo: list[Undo]) -> None:
    """`table[key] = value`, recording in `undo` how to put back what was there."""
    if key in table:
        old = table[key]
        undo.append(lambda: table.__setitem__(key, old))
    else:
        undo.append(lambda: table.pop(key, None))
    table[key] = value
