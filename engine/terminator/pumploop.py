"""The pump loops: a few threads, each with one epoll set, each stepping many associations' pumps.

A thread per association (the design before) cost a thread start per handshake, ~80 KiB and a
scheduler slot per live association; here the threads are bounded by the cores (POOL_MAX at most),
whatever the number of associations. Each loop owns its pumps from add() to finish: only its thread
touches their sockets (OpenSSL's one-thread-per-SSL rule), and other threads reach a pump through
wake() (abort). Readiness is level-triggered (epoll(7)), so a pump that stopped mid-way for fairness
(Pump.hot) or left bytes in OpenSSL's buffer is never forgotten.
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

from dicomtls.engine.terminator.pump import Pump, abort_socket

POOL_MAX = 8
_seq = count()  # tie-breaker for timer entries with equal deadlines


class PumpLoop(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.efd, select.EPOLLIN)
        self.inbox: deque[Pump] = deque()  # pumps to start, or to step because another thread asked
        self.by_fd: dict[int, Pump] = {}
        self.hot: set[Pump] = set()
        self.timers: list[tuple[float, int, Pump]] = []
        self.added = 0  # written by the adding thread only
        self.finished = 0  # written by this thread only

    @property
    def load(self) -> int:
        return self.added - self.finished

    # --- from other threads ---------------------------------------------------------------------
    def add(self, pump: Pump) -> None:
        pump.loop = self
        self.added += 1
        self.wake(pump)

    def wake(self, pump: Pump) -> None:
        self.inbox.append(pump)
        os.eventfd_write(self.efd, 1)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        ep, by_fd, efd = self.ep, self.by_fd, self.efd
        while True:
            events = ep.poll(self._timeout())
            ready: dict[Pump, None] = dict.fromkeys(self.hot)
            self.hot.clear()
            for fd, ev in events:
                if fd == efd:
                    self._take_inbox(ready)
                    continue
                pump = by_fd.get(fd)
                if pump is None or pump.done.is_set():
                    continue  # a socket of a pump that ended earlier in this batch
                if self._guard(pump, pump.on_event, fd, ev):
                    ready.setdefault(pump)
            for pump in ready:
                if not pump.done.is_set() and self._guard(pump, pump.step):
                    self._after_step(pump)
            self._expire()

    def _take_inbox(self, ready: dict[Pump, None]) -> None:
        try:
            os.eventfd_read(self.efd)
        except BlockingIOError:
            pass
        while self.inbox:
            pump = self.inbox.popleft()
            if pump.tfd < 0 and not pump.done.is_set():
                if not self._guard(pump, pump.start):
                    continue
                self.by_fd[pump.tfd] = self.by_fd[pump.bfd] = pump
                self._arm(pump, pump.deadline())
            ready.setdefault(pump)

    def _guard(self, pump: Pump, call: Callable[..., str | None], *args: int) -> bool:
        """Run one of the pump's steps; False once it has ended (by its own word or by an exception,
        which never kills the loop: that association is reset and the others go on)."""
        try:
            end = call(*args)
        except Exception as exc:
            abort_socket(pump.backend)
            abort_socket(pump.tls)
            end = f"error: {type(exc).__name__}: {exc}"
        if end:
            self._finish(pump, end)
            return False
        return True

    def _after_step(self, pump: Pump) -> None:
        try:
            pump.sync(self.ep)
        except OSError as exc:
            abort_socket(pump.backend)
            abort_socket(pump.tls)
            self._finish(pump, f"error: epoll: {exc}")
            return
        if pump.hot:
            self.hot.add(pump)
        deadline = pump.deadline()
        if deadline < pump.timer_at:  # after a half-close the idle limit shrinks
            self._arm(pump, deadline)

    def _arm(self, pump: Pump, at: float) -> None:
        pump.timer_at = at
        heapq.heappush(self.timers, (at, next(_seq), pump))

    def _expire(self) -> None:
        """Idle timers, checked lazily: an entry is re-armed at the pump's current deadline if bytes
        moved since it was set."""
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            at, _, pump = heapq.heappop(self.timers)
            if pump.done.is_set() or at != pump.timer_at:
                continue  # ended, or superseded by an earlier entry
            deadline = pump.deadline()
            if deadline > now:
                self._arm(pump, deadline)
            elif self._guard(pump, pump.step):  # step() ends it as idle_timeout
                self._after_step(pump)

    def _timeout(self) -> float:
        if self.hot or self.inbox:
            return 0
        if not self.timers:
            return -1
        return max(0.0, self.timers[0][0] - time.monotonic())

    def _finish(self, pump: Pump, end: str) -> None:
        for fd in (pump.tfd, pump.bfd):
            if self.by_fd.get(fd) is pump:
                del self.by_fd[fd]
        self.hot.discard(pump)
        self.finished += 1
        try:
            pump.finish(end, self.ep)
        except Exception:  # noqa: BLE001 - a failing done-callback must not stop the loop
            pass


class PumpPool:
    """The loops of this process; add() gives a new association to the least loaded one."""

    def __init__(self, size: int) -> None:
        self.loops = [PumpLoop(f"pump-loop-{i}") for i in range(size)]
        for loop in self.loops:
            loop.start()

    def add(self, pump: Pump) -> None:
        min(self.loops, key=lambda lp: lp.load).add(pump)


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
