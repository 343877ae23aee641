"""A minimal HTTP/1.1 client on asyncio for benchmarks that load a service with concurrent clients.

A load generator that shares the machine with the service it measures takes CPU from it: this
one writes prepared request bytes and reads each answer up to its Content-Length, no more, so
that its share stays small (0.3 to 0.4 ms of CPU per request on the 2-core machine the
benchmarks were written on, where the service spends 0.7 to 2 ms on a login). It costs the
same for every contender, so a ratio between two services loaded by it stays fair.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["KEEP_ALIVE", "RawHttp", "loop_factory"]

#: A connection idle longer is opened anew: uvicorn closes kept-alive connections idle for 5 s.
KEEP_ALIVE = 4.0


class RawHttp:
    """One kept-alive HTTP/1.1 connection doing the least a client can per request: the request
    bytes are written as they are, the answer's head read up to its Content-Length."""

    def __init__(self, base: str) -> None:
        location = urlsplit(base)
        self.address = (location.hostname or "127.0.0.1", location.port or 80)
        self.host = location.netloc.encode("ascii")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def post(self, path: bytes, body: bytes) -> bytes:
        """POST a JSON *body*; the answer's body, which must come with a 200."""
        request = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            path,
            self.host,
            len(body),
            body,
        )
        if self.reader is None or self.writer is None or time.monotonic() - self.used > KEEP_ALIVE:
            self.close()
            self.reader, self.writer = await asyncio.open_connection(*self.address)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            field, _, value = line.partition(b":")
            if field.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise AssertionError("an answer without Content-Length")
        answer = await self.reader.readexactly(length)
        self.used = time.monotonic()
        if head[9:12] != b"200":
            raise AssertionError(f"{path.decode()} answered {head[9:12].decode()}: {answer[:200]!r}")
        return answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (it comes with uvicorn[standard], as the service
    runs on it), else asyncio's own (``None``)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
