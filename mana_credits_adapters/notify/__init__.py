"""Notifiers: the notification service over HTTP, or the log when none is configured."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp

log = logging.getLogger("mana_credits.notify")


def _day(moment: datetime) -> str:
    """The UTC day of `moment` as ISO 8601 (`2027-03-31`)."""
    return moment.astimezone(UTC).date().isoformat()


class LogNotifier:
    """Used when `MANA_NOTIFY_URL` is not set: the event is logged, nothing is sent."""

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        log.info("sync paused for %s (%s, %d credits needed)", user_id, interval, required)

    async def credits_expiring(self, user_id: str, *, credits: int, expires_at: datetime) -> None:
        log.info("%d credits of %s expire on %s", credits, user_id, _day(expires_at))

    async def low_balance(self, user_id: str, *, balance: int, threshold: int) -> None:
        log.info("balance of %s low: %d credits (below %d)", user_id, balance, threshold)

    async def close(self) -> None:
        return None


class HttpNotifier:
    """Sends e-mails through the notification service (`POST /api/v1/notifications/send`).

    Every method raises `aiohttp.ClientError` (or `TimeoutError`, after `timeout`
    seconds) when the service cannot be reached or answers with an error status.
    """

    def __init__(self, base_url: str, service_key: str, timeout: float = 5.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/notifications/send"
        self._key = service_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        await self._send(
            {
                "channel": "email",
                "appId": "sync",
                "userId": user_id,
                "subject": "Cloud Sync is paused",
                "body": (
                    f"Your Cloud Sync ({interval}) is paused because your balance could not "
                    f"cover the next {required} credits. Your data is safe on your devices; "
                    "top up and reactivate sync in Settings to continue."
                ),
                "data": {"type": "sync-paused", "interval": interval, "required": required},
            }
        )

    async def credits_expiring(self, user_id: str, *, credits: int, expires_at: datetime) -> None:
        day = _day(expires_at)
        await self._send(
            {
                "channel": "email",
                "appId": "credits",
                "userId": user_id,
                "subject": f"{credits} credits expire on {day}",
                "body": (
                    f"{credits} of your credits expire on {day}. Use them before then; "
                    "credits you bought never expire."
                ),
                "data": {
                    "type": "credits-expiring",
                    "credits": credits,
                    "expiresAt": expires_at.astimezone(UTC).isoformat(),
                },
            }
        )

    async def low_balance(self, user_id: str, *, balance: int, threshold: int) -> None:
        await self._send(
            {
                "channel": "email",
                "appId": "credits",
                "userId": user_id,
                "subject": "Your credit balance is low",
                "body": (
                    f"You have {balance} credits left, fewer than {threshold}. "
                    "Top up in Settings to keep using paid features."
                ),
                "data": {"type": "low-balance", "balance": balance, "threshold": threshold},
            }
        )

    async def _send(self, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(
            self.url, json=body, headers={"X-Service-Key": self._key}
        ) as response:
            response.raise_for_status()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
