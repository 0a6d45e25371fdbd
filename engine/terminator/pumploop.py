"""The pump loop: one epoll set holding every live association's sockets, stepped from the terminator's
asyncio thread, so that the pumps (pump.py) and the TLS handshakes (handshake.py) need no thread of
their own.

A thread per association (the design up to 09ef017) cost a thread start per handshake, ~80 KiB and a
scheduler slot per live association (1,000 associations: 1,001 threads, 108 MB, a 56 ms p99 echo).
A few epoll threads (one per CPU) were measured next (benchmarks/RESULTS.md): threads bounded, but
every connection then crossed threads four times, and the GIL handoffs between cores (129 futex calls
per connection under strace) cost more CPU than the parallel signing saved; driven from the asyncio
thread, the same loop used ~20 % less CPU per handshake and gave a lower p99. One process uses one
core for Python either way; more cores take more processes (see RESULTS.md).

Readiness is level-triggered (epoll(7)), so a job that stopped mid-way for fairness (Pump.hot) or
left bytes in OpenSSL's buffer is never forgotten. The loop's epoll descriptor is itself watched by
asyncio (add_reader), and an eventfd in the set lets other threads wake it (wake()).
"""

from __future__ import annotations

import asyncio
import heapq
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Protocol

_seq = count()  # tie-breaker for timer entries with equal deadlines


class Job(Protocol):
    """What a loop steps: a Pump (pump.py) or a TLS handshake (handshake.py). Its sockets are the loop's
    alone from add() until finish()."""

    tfd: int
    bfd: int  # -1 when the job has one socket
    hot: bool
    timer_at: float
    loop: PumpLoop | None
    done: threading.Event

    def start(self) -> None: ...
    def deadline(self) -> float: ...
    def step(self) -> str | None: ...
    def on_event(self, fd: int, ev: int) -> str | None: ...
    def sync(self, ep: select.epoll) -> None: ...
    def crashed(self, exc: Exception) -> str: ...
    def finish(self, end: str, ep: select.epoll) -> None: ...


class PumpLoop:
    def __init__(self) -> None:
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.efd, select.EPOLLIN)
        self.inbox: deque[tuple[Job, bool]] = deque()  # (job, new): to start, or to step as asked
        self.by_fd: dict[int, Job] = {}
        self.hot: set[Job] = set()
        self.timers: list[tuple[float, int, Job]] = []
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._soon: asyncio.Handle | None = None  # a _tick asked for on the loop's own thread
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # --- the asyncio driver -------------------------------------------------------------------------
    def attach(self, aloop: asyncio.AbstractEventLoop) -> None:
        """Drive this loop from aloop; call on aloop's thread."""
        self._aloop, self._thread = aloop, threading.get_ident()
        aloop.add_reader(self.ep.fileno(), self._tick)

    def close(self) -> None:
        """Stop watching (the terminator has drained); jobs still held are dropped with it."""
        if self._aloop is not None:
            self._aloop.remove_reader(self.ep.fileno())
        for handle in (self._soon, self._timer):
            if handle is not None:
                handle.cancel()
        self.ep.close()
        os.close(self.efd)

    def _tick(self) -> None:
        if self._soon is not None:  # this round serves that request too
            self._soon.cancel()
            self._soon = None
        self.run_once()
        self._schedule()

    def _schedule(self) -> None:
        aloop = self._aloop
        if aloop is None:
            return
        if self.hot or self.inbox:
            if self._soon is None:
                self._soon = aloop.call_soon(self._tick)
            return
        at = self.timers[0][0] if self.timers else 0.0
        if at != self._timer_at:  # the earliest idle deadline moved: move the timer
            if self._timer is not None:
                self._timer.cancel()
            self._timer = aloop.call_later(max(0.0, at - time.monotonic()), self._on_timer) if at else None
            self._timer_at = at

    def _on_timer(self) -> None:
        # Forget the timer first: asyncio may run it a hair early, and the deadline must be set again.
        self._timer, self._timer_at = None, 0.0
        self._tick()

    # --- from any thread ----------------------------------------------------------------------------
    def add(self, job: Job) -> None:
        job.loop = self
        self._post((job, True))

    def wake(self, job: Job) -> None:
        self._post((job, False))

    def _post(self, item: tuple[Job, bool]) -> None:
        self.inbox.append(item)
        if threading.get_ident() == self._thread and self._aloop is not None:
            if self._soon is None:
                self._soon = self._aloop.call_soon(self._tick)
        else:
            os.eventfd_write(self.efd, 1)

    # --- one round ----------------------------------------------------------------------------------
    def run_once(self) -> None:
        """Whatever is ready now: events, the inbox, hot jobs, expired idle timers. Never blocks."""
        by_fd = self.by_fd
        ready: dict[Job, None] = dict.fromkeys(self.hot)
        self.hot.clear()
        events = self.ep.poll(0)
        if self.inbox:
            self._take_inbox(ready)
        for fd, ev in events:
            if fd == self.efd:
                try:
                    os.eventfd_read(self.efd)
                except BlockingIOError:
                    pass
                self._take_inbox(ready)
                continue
            job = by_fd.get(fd)
            if job is None or job.done.is_set():
                continue  # a socket of a job that ended earlier in this batch
            if self._guard(job, job.on_event, fd, ev):
                ready.setdefault(job)
        for job in ready:
            if not job.done.is_set() and self._guard(job, job.step):
                self._after_step(job)
        self._expire()

    def _take_inbox(self, ready: dict[Job, None]) -> None:
        while self.inbox:
            job, new = self.inbox.popleft()
            if new:
                if not self._guard(job, job.start):
                    continue
                self.by_fd[job.tfd] = job
                if job.bfd >= 0:
                    self.by_fd[job.bfd] = job
                self._arm(job, job.deadline())
            ready.setdefault(job)

    def _guard(self, job: Job, call: Callable[..., str | None], *args: int) -> bool:
        """Run one of the job's steps; False once it has ended (by its own word or by an exception,
        which never kills the loop: that association is reset and the others go on)."""
        try:
            end = call(*args)
        except Exception as exc:
            end = job.crashed(exc)
        if end:
            self._finish(job, end)
            return False
        return True

    def _after_step(self, job: Job) -> None:
        try:
            job.sync(self.ep)
        except OSError as exc:
            self._finish(job, job.crashed(exc))
            return
        if job.hot:
            self.hot.add(job)
        deadline = job.deadline()
        if deadline < job.timer_at:  # after a half-close the idle limit shrinks
            self._arm(job, deadline)

    def _arm(self, job: Job, at: float) -> None:
        job.timer_at = at
        heapq.heappush(self.timers, (at, next(_seq), job))

    def _expire(self) -> None:
        """Idle timers, checked lazily: an entry is re-armed at the job's current deadline if bytes
        moved since it was set."""
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            at, _, job = heapq.heappop(self.timers)
            if job.done.is_set() or at != job.timer_at:
                continue  # ended, or superseded by an earlier entry
            deadline = job.deadline()
            if deadline > now:
                self._arm(job, deadline)
            elif self._guard(job, job.step):  # step() ends it as idle_timeout
                self._after_step(job)

    def _finish(self, job: Job, end: str) -> None:
        for fd in (job.tfd, job.bfd):
            if self.by_fd.get(fd) is job:
                del self.by_fd[fd]
        self.hot.discard(job)
        if len(self.timers) > 2 * len(self.by_fd) + 64:
            # Ended pumps' timer entries would otherwise stay until their idle deadline (minutes): at
            # hundreds of handshakes a second, thousands of dead pumps held.
            self.timers = [e for e in self.timers if not e[2].done.is_set()]
            heapq.heapify(self.timers)
        try:
            job.finish(end, self.ep)
        except Exception:  # a failing done-callback must not stop the loop
            pass
