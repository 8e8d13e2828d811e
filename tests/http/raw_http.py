"""HTTP over raw sockets, for tests of how the server treats slow, greedy and vanishing
clients: every wait is bounded."""

from __future__ import annotations

import asyncio

BOUND = 20.0  # seconds any wait may take by default, far above the servers' read bounds


async def answer(reader: asyncio.StreamReader, bound: float = BOUND) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), bound)


async def unanswered(reader: asyncio.StreamReader, bound: float = BOUND) -> bool:
    """The server closed the connection without a byte of answer (a reset included: it
    closed with our request unread)."""
    try:
        return await answer(reader, bound) == b""
    except ConnectionResetError:
        return True


async def one_response(reader: asyncio.StreamReader, bound: float = BOUND) -> bytes:
    """One response with a Content-Length body, the connection left open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), bound)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await asyncio.wait_for(reader.readexactly(length), bound)


async def trickle(writer: asyncio.StreamWriter, data: bytes, pause: float) -> int:
    """Send `data` a byte at a time, `pause` seconds apart, until it is all sent or the
    server closes the connection; returns the bytes sent."""
    for sent, byte in enumerate(data):
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return sent
        await asyncio.sleep(pause)
    return len(data)
