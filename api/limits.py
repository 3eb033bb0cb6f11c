"""Slow and hostile clients: read timeouts, a connection limit, quiet logs.

Without these a client that opens a connection and sends its headers one
byte at a time holds a socket (a file descriptor) for ever: uvicorn's
keep-alive timer only covers the wait *between* requests, and any byte
received cancels it. A thousand such clients exhaust the process's file
limit; the node can then accept no one, not even its peers, and the event
loop logs every failed ``accept``.

* **Header timeout** (``http.header_timeout``): a connection must deliver a
  request's complete headers within this many seconds of being opened (or of
  the previous response); otherwise it is answered ``408`` (when it sent
  part of a request) and closed. A deadline for the whole header block, not
  per byte, so trickling bytes does not extend it.
* **Body timeout** (``http.body_timeout``): the whole body must arrive within
  this many seconds of the headers; otherwise ``408`` and the connection
  closes (``BodyTimeout``, an ASGI middleware). A client that disconnects
  before its body is read is counted, not logged with a traceback.
* **Connection limit** (``http.max_connections``, capped below the process's
  open-file limit): a connection over it is answered ``503`` with
  ``Retry-After`` and closed at once, so the node keeps the descriptors it
  needs for its store, its peers and its log.
* **Quiet logs** (``RateLimitedLog``): any one message is written at most a
  few times per interval; the next one after a quiet spell says how many
  were dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import h11
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from kpledger.api.problems import PROBLEM_BASE, problem

__all__ = [
    "BodyTimeout",
    "RateLimitedLog",
    "connection_budget",
    "guarded_protocol",
    "install_log_limits",
]

log = logging.getLogger("kpl.http")

#: descriptors kept for everything but clients: the store, peers, the log, TLS files
RESERVED_FILES = 128
#: header block size h11 accepts before refusing the request (431 semantics: 400)
MAX_HEADER_BYTES = 16 * 1024


def _raw_problem(status: int, reason: str, code: str, detail: str, extra: str = "") -> bytes:
    body = json.dumps(
        {"type": PROBLEM_BASE + code, "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        "x-content-type-options: nosniff\r\n"
        "connection: close\r\n"
        f"{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def connection_budget(configured: int, listeners: int = 1) -> int:
    """The connection limit per listener: ``configured``, capped below the file limit.

    The soft ``RLIMIT_NOFILE`` is first raised to the hard limit where allowed.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return configured
    room = max(8, (soft - RESERVED_FILES) // max(1, listeners))
    if configured > room:
        log.warning(
            "http.max_connections %d is over what the open-file limit (%d) leaves: "
            "using %d per listener",
            configured,
            soft,
            room,
        )
        return room
    return configured


class _Counters:
    """Refusals and timeouts, logged as totals at most every few seconds."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last = 0.0

    def note(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        now = time.monotonic()
        if now - self.last >= 5.0:
            self.last = now
            summary = ", ".join(f"{n} {w}" for w, n in sorted(self.counts.items()))
            self.counts.clear()
            log.warning("slow or excess clients: %s", summary)


COUNTERS = _Counters()


def guarded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline and a connection limit."""
    refusal = _raw_problem(
        503,
        "Service Unavailable",
        "too-many-connections",
        f"this node serves at most {max_connections} connections at once; retry shortly",
        "retry-after: 1\r\n",
    )
    timeout = _raw_problem(
        408,
        "Request Timeout",
        "request-timeout",
        f"the request's headers did not arrive within {header_timeout:g} s",
    )

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _partial = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self.connections.discard(self)
                COUNTERS.note("connections refused over the limit")
                transport.write(refusal)
                transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._partial = False
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # an answer is on its way; the next request gets a new deadline
            COUNTERS.note("connections closed for slow headers")
            if self._partial:
                self.transport.write(timeout)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._deadline is not None and self.conn.their_state is h11.IDLE:
                self._partial = True
            super().data_received(data)
            if self._deadline is not None and self.conn.their_state is not h11.IDLE:
                self._disarm()  # the request's headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol


class _BodyTimedOut(Exception):
    pass


class BodyTimeout:
    """A request body must arrive whole within ``seconds`` of its headers (else 408)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        done = False
        started = False

        async def timed() -> Message:
            nonlocal done
            if done:
                return await receive()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                raise _BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed, watch)
        except ClientDisconnect:
            # the client left before its body was read (a peer's request timeout, a
            # closed connection): there is no one to answer, and a traceback per such
            # client would fill the log; counted like the other slow clients
            COUNTERS.note("clients gone before their body arrived")
        except _BodyTimedOut:
            COUNTERS.note("requests closed for slow bodies")
            if started:
                raise
            response = problem(
                408,
                "request-timeout",
                f"the request body did not arrive within {self.seconds:g} s",
            )
            response.headers["Connection"] = "close"
            await response(scope, receive, send)


class RateLimitedLog(logging.Filter):
    """Let any one message through at most ``burst`` times per ``interval`` seconds.

    Messages are told apart by logger and format string (not by their
    arguments), so a flood of one kind of failure is a few lines, and the
    first line after the flood says how many were dropped.
    """

    def __init__(
        self,
        burst: int = 5,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[Any]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.interval:
            dropped = entry[2] if entry is not None else 0
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > 1000:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            if dropped:
                record.msg = f"{record.msg} [{dropped} more like this in the last " + (
                    f"{self.interval:g} s were not logged]"
                )
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False


def install_log_limits() -> None:
    """Every log line of the process goes through one stderr handler with ``RateLimitedLog``.

    uvicorn is then run with ``log_config=None``, so its loggers propagate here too.
    """
    root = logging.getLogger()
    if not any(isinstance(f, RateLimitedLog) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RateLimitedLog())
        root.addHandler(handler)
