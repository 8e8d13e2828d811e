"""The core's events: every listener hears each event; a failing one harms nothing."""

from __future__ import annotations

import pytest

from mana_credits_core.events import Event, EventKind, Events


def test_listeners_hear_events_until_they_unsubscribe(caplog: pytest.LogCaptureFixture) -> None:
    events = Events()
    heard: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    events.subscribe(broken)
    stop = events.subscribe(heard.append)
    events.emit(EventKind.GIFT_CREATED, credits=5)
    assert heard == [Event(EventKind.GIFT_CREATED, 5, 0)]  # the broken one did not stop it
    assert "event listener failed on gift_created" in caplog.text
    stop()
    events.emit(EventKind.GRANT, credits=1)
    assert len(heard) == 1
