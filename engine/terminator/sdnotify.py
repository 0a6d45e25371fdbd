"""systemd readiness and watchdog, written by hand: one datagram per message to $NOTIFY_SOCKET
(sd_notify(3), https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html).

READY=1 once the listeners are bound; RELOADING=1 with MONOTONIC_USEC (the clock_gettime(
CLOCK_MONOTONIC) of the start of the reload, which systemd requires with RELOADING=1 since v253)
then READY=1 around a reload; STOPPING=1 when draining starts; WATCHDOG=1 every WATCHDOG_USEC/2
(sd_watchdog_enabled(3)). Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process the watchdog is meant for (sd_watchdog_enabled(3)).
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else 0.0
        self.sent: list[str] = []  # what was sent, for the log and tests

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        """Send one message (lines joined by newlines); False if not under systemd or it failed."""
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):  # an abstract-namespace socket
            addr = "\0" + addr[1:]
        msg = "\n".join(lines)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(addr)
                s.sendall(msg.encode())
        except OSError:
            return False
        self.sent.append(msg)
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")
