"""Clocks, id and code generators: the system's, and controllable ones for tests."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from mana_credits_core.gifts import CODE_ALPHABET, CODE_LENGTH


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (billing runs, expiry sweeps, tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = when


class TickingClock(ManualClock):
    """A manual clock that also steps one microsecond per reading, so order is total."""

    def now(self) -> datetime:
        self._now += timedelta(microseconds=1)
        return self._now


class UuidGenerator:
    def new_id(self) -> str:
        return str(uuid.uuid4())


class SecretCodes:
    """Gift codes from `secrets`: CODE_LENGTH characters of an unambiguous alphabet."""

    def new_code(self) -> str:
        return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
