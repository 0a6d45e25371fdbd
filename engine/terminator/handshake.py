"""The server side of a TLS handshake as a job on the pump loop (pumploop.py): each step runs when
epoll reports the socket ready, and the deadline is the loop's timer, instead of an add_reader, a
remove_reader and a wait_for timer per step on asyncio (a handshake takes two or three steps).
Admission awaits it (run_handshake) and owns the socket again once it is done.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import threading
import time

from dicomtls.engine.terminator.pumploop import PumpLoop

_IN, _OUT = select.EPOLLIN, select.EPOLLOUT


class Handshake:
    """.end is "ok", "failed" (.error says why: an ssl.SSLError or an OSError), "timeout" (the deadline,
    in time.monotonic(), passed), or the reason given to abort()."""

    def __init__(self, tls: ssl.SSLSocket, deadline: float) -> None:
        self.tls = tls
        self.until = deadline
        self.error: Exception | None = None
        self.end = ""
        self.tfd, self.bfd = tls.fileno(), -1
        self.hot = False
        self.timer_at = 0.0
        self.loop: PumpLoop | None = None
        self.done = threading.Event()
        self.ended: asyncio.Future[str] | None = None  # resolved with .end (a Pump has an on_done callback instead)
        self._want = 0
        self._registered: int | None = None
        self._abort_reason = ""

    def abort(self, reason: str) -> None:
        if self.done.is_set() or self._abort_reason:
            return
        self._abort_reason = reason
        if self.loop is not None:
            self.loop.wake(self)

    # --- on the loop's thread -------------------------------------------------------------------
    def start(self) -> None:
        pass

    def deadline(self) -> float:
        return self.until

    def step(self) -> str | None:
        if self._abort_reason:
            return self._abort_reason
        try:
            self.tls.do_handshake()
            return "ok"
        except ssl.SSLWantReadError:
            self._want = _IN
        except ssl.SSLWantWriteError:
            self._want = _OUT
        except (ssl.SSLError, OSError) as exc:
            self.error = exc
            return "failed"
        return "timeout" if time.monotonic() >= self.until else None

    def on_event(self, fd: int, ev: int) -> str | None:
        return None  # step() retries the handshake, which reads what arrived (or meets the error)

    def sync(self, ep: select.epoll) -> None:
        if self._registered is None:
            ep.register(self.tfd, self._want)
        elif self._registered != self._want:
            ep.modify(self.tfd, self._want)
        self._registered = self._want

    def crashed(self, exc: Exception) -> str:
        self.error = exc
        return "failed"

    def finish(self, end: str, ep: select.epoll) -> None:
        if self._registered is not None:
            try:
                ep.unregister(self.tfd)
            except (OSError, ValueError):
                pass
            self._registered = None
        self.end = end
        self.done.set()
        fut = self.ended
        if fut is not None and not fut.done():
            fut.set_result(end)  # the loop runs on the future's own thread (pumploop.PumpLoop.attach)


async def run_handshake(tls: ssl.SSLSocket, deadline: float, pumps: PumpLoop) -> Handshake:
    """The handshake on the pump loop; returns the finished job (.end, .error). If the awaiting task is
    cancelled, the loop is told to let the socket go first, so that it never steps a closed socket."""
    job = Handshake(tls, deadline)
    job.ended = ended = asyncio.get_running_loop().create_future()
    pumps.add(job)
    try:
        await asyncio.shield(ended)
    except asyncio.CancelledError:
        job.abort("cancelled")
        await ended
        raise
    return job
