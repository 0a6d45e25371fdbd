"""Watch a vserver's counters on the ADC (`stat/lbvserver/NAME`, NITRO statistics reference) and say
when a connection from outside arrives: the NetScaler counterpart of the built-in terminator's
association log. The counters cannot name the caller's AE title, only that a connection came in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dicomtls.engine.backends.netscaler.models import LbVserverStat
from dicomtls.engine.errors import UserError

log = logging.getLogger("dicomtls.netscaler")


@dataclass
class Arrival:
    """Counters moved since the watch began: `hits` new hits, `open` client connections open now."""

    vserver: str
    hits: int
    open: int
    stat: LbVserverStat


class CounterWatch:
    """`read()` gives the vserver's counters (or None while it does not exist); `poll()` compares with the
    first reading and returns an Arrival once hits, requests or connections went up."""

    def __init__(self, vserver: str, read: Callable[[str], LbVserverStat | None]) -> None:
        self.vserver = vserver
        self._read = read
        self._base: LbVserverStat | None = None

    def poll(self) -> Arrival | None:
        now = self._read(self.vserver)
        if now is None:
            return None
        if self._base is None:
            self._base = now
            return None
        hits = max(now.tothits - self._base.tothits, now.totalrequests - self._base.totalrequests,
                   now.establishedconn - self._base.establishedconn)
        if hits > 0 or now.curclntconnections > self._base.curclntconnections:
            return Arrival(self.vserver, max(hits, 1), now.curclntconnections, now)
        return None


def watch_in_thread(watch: CounterWatch, on_arrival: Callable[[Arrival], None],
                    on_error: Callable[[UserError], None], interval: float = 2.0) -> Callable[[], None]:
    """Poll every `interval` seconds in a daemon thread until the first arrival or an error; returns a
    stop. One NITRO read per poll (the session stays open)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                got = watch.poll()
            except UserError as exc:
                log.info("counter watch stopped: %s", exc.problem)
                on_error(exc)
                return
            if got is not None:
                on_arrival(got)
                return
            stop.wait(interval)

    threading.Thread(target=run, name=f"counters:{watch.vserver}", daemon=True).start()
    return stop.set
