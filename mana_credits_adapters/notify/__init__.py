"""Notifiers: the notification service over HTTP, or the log when none is configured."""

from __future__ import annotations

import logging

import aiohttp

log = logging.getLogger("mana_credits.notify")


class LogNotifier:
    """Used when `MANA_NOTIFY_URL` is not set: the event is logged, nothing is sent."""

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        log.info("sync paused for %s (%s, %d credits needed)", user_id, interval, required)

    async def close(self) -> None:
        return None


class HttpNotifier:
    """Sends e-mails through the notification service (`POST /api/v1/notifications/send`)."""

    def __init__(self, base_url: str, service_key: str, timeout: float = 5.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/notifications/send"
        self._key = service_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        body = {
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
