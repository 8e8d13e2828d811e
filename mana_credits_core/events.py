"""What the use cases did, told to whoever listens (the server's metrics), after commit.

Events are emitted only once the unit of work that made them true has committed, and
once per thing that happened: a replayed request, a duplicate webhook or a lost race
emits nothing. A failing listener is logged and never fails or undoes the use case.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("mana_credits.events")


class EventKind(enum.StrEnum):
    PURCHASE_CREATED = "purchase_created"
    PURCHASE_COMPLETED = "purchase_completed"
    PURCHASE_FAILED = "purchase_failed"
    PURCHASE_CLAWED_BACK = "purchase_clawed_back"  # after a payment refund or dispute
    PURCHASE_REINSTATED = "purchase_reinstated"  # clawed-back credits given back
    GRANT = "grant"
    GIFT_CREATED = "gift_created"
    GIFT_REDEEMED = "gift_redeemed"
    GIFT_CANCELLED = "gift_cancelled"
    GIFT_EXPIRED = "gift_expired"
    SYNC_ACTIVATED = "sync_activated"
    SYNC_CHARGED = "sync_charged"  # one period paid, at activation or by the billing run
    SYNC_PAUSED = "sync_paused"
    SYNC_GIFTED = "sync_gifted"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. `credits` moved (0 when none did); `euro_cents` paid or
    asked for (purchases only)."""

    kind: EventKind
    credits: int = 0
    euro_cents: int = 0


Listener = Callable[[Event], None]


class Events:
    """A synchronous fan-out of events to listeners; one per set of services."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, kind: EventKind, *, credits: int = 0, euro_cents: int = 0) -> None:
        self.emit_all([Event(kind, credits, euro_cents)])

    def emit_all(self, events: Iterable[Event]) -> None:
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed on %s", event.kind)
