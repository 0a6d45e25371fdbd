"""The pump loops: a few threads, each with one epoll set, each stepping many jobs: the pumps of live
associations (pump.py) and TLS handshakes (handshake.py).

A thread per association (the design before) cost a thread start per handshake, ~80 KiB and a
scheduler slot per live association; here the threads are bounded by the cores (POOL_MAX at most),
whatever the number of associations. Handshakes run here too, not on the asyncio thread: OpenSSL
releases the GIL while it signs, so the loops sign in parallel while the asyncio thread admits.
Each loop owns a job's sockets from add() to finish(): only its thread touches them (OpenSSL's
one-thread-per-SSL rule), and other threads reach a job through wake() (abort). Readiness is
level-triggered (epoll(7)), so a job that stopped mid-way for fairness (Pump.hot) or left bytes in
OpenSSL's buffer is never forgotten.
"""

from __future__ import annotations

import heapq
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Protocol

POOL_MAX = 8
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


class PumpLoop(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.efd, select.EPOLLIN)
        self.inbox: deque[tuple[Job, bool]] = deque()  # (job, new): to start, or to step as asked
        self.by_fd: dict[int, Job] = {}
        self.hot: set[Job] = set()
        self.timers: list[tuple[float, int, Job]] = []
        self.added = 0  # written by the adding thread only
        self.finished = 0  # written by this thread only

    @property
    def load(self) -> int:
        return self.added - self.finished

    # --- from other threads ---------------------------------------------------------------------
    def add(self, job: Job) -> None:
        job.loop = self
        self.added += 1
        self.inbox.append((job, True))
        os.eventfd_write(self.efd, 1)

    def wake(self, job: Job) -> None:
        self.inbox.append((job, False))
        os.eventfd_write(self.efd, 1)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        ep, by_fd, efd = self.ep, self.by_fd, self.efd
        while True:
            events = ep.poll(self._timeout())
            ready: dict[Job, None] = dict.fromkeys(self.hot)
            self.hot.clear()
            for fd, ev in events:
                if fd == efd:
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
        try:
            os.eventfd_read(self.efd)
        except BlockingIOError:
            pass
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

    def _timeout(self) -> float:
        if self.hot or self.inbox:
            return 0
        if not self.timers:
            return -1
        return max(0.0, self.timers[0][0] - time.monotonic())

    def _finish(self, job: Job, end: str) -> None:
        for fd in (job.tfd, job.bfd):
            if self.by_fd.get(fd) is job:
                del self.by_fd[fd]
        self.hot.discard(job)
        self.finished += 1
        if len(self.timers) > 2 * len(self.by_fd) + 64:
            # Ended pumps' timer entries would otherwise stay until their idle deadline (minutes): at
            # hundreds of handshakes a second, thousands of dead pumps held.
            self.timers = [e for e in self.timers if not e[2].done.is_set()]
            heapq.heapify(self.timers)
        try:
            job.finish(end, self.ep)
        except Exception:  # noqa: BLE001 - a failing done-callback must not stop the loop
            pass


class PumpPool:
    """The loops of this process; add() gives a new job to the least loaded one."""

    def __init__(self, size: int) -> None:
        self.loops = [PumpLoop(f"pump-loop-{i}") for i in range(size)]
        for loop in self.loops:
            loop.start()

    def add(self, job: Job) -> None:
        min(self.loops, key=lambda lp: lp.load).add(job)


_pool: PumpPool | None = None
_pool_lock = threading.Lock()


def pool_size() -> int:
    """One loop per core this process may run on (taskset and cgroup cpusets honoured)."""
    return max(1, min(POOL_MAX, len(os.sched_getaffinity(0))))


def shared_pool() -> PumpPool:
    """The process's pool, started on first use (every terminator in a process shares it)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = PumpPool(pool_size())
        return _pool
