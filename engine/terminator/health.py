"""Backend (PACS) health: a periodic connect-then-RST probe per PACS server (each member of a
service), plus passive results from real dials.

The probe opens a TCP connection and closes it at once with SO_LINGER 0, so the PACS gets a RST,
not a FIN, and the prober keeps no TIME_WAIT. It is the closest an unprivileged process gets to
the NetScaler's half-open RESET monitor; unlike a true half-open probe the PACS application does
accept the connection (DCMTK/Orthanc log an empty association at INFO level:
docs/research/terminators.md §5.2). To keep it infrequent, a probe is skipped while real
associations to that server keep succeeding (passive results count as probes).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

_LINGER0 = struct.pack("ii", 1, 0)


Addr = tuple[int, int, int, Any]  # (family, type, proto, sockaddr), as getaddrinfo gives them

# A PACS named by host name is resolved once, then again only after a dial to it fails or the plan is
# reloaded (forget_addresses): not on every association (the resolver runs in an executor thread).
_resolved: dict[tuple[str, int], list[Addr]] = {}


def forget_addresses() -> None:
    _resolved.clear()


async def addresses(host: str, port: int, timeout: float) -> list[Addr]:
    """Where (host, port) is: an IP address as it is, a name from the cache or the resolver."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 0, (host, port))]
    cached = _resolved.get((host, port))
    if cached is None:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        cached = _resolved[(host, port)] = [(f, t, p, addr) for f, t, p, _, addr in infos]
    return cached


async def open_tcp(host: str, port: int, timeout: float) -> socket.socket:
    """Connect a non-blocking TCP socket (first address that answers); raises OSError/TimeoutError."""
    loop = asyncio.get_running_loop()
    try:
        return await _connect_first(await addresses(host, port, timeout), host, loop.time() + timeout)
    except (OSError, asyncio.TimeoutError):
        _resolved.pop((host, port), None)  # the name may have moved: resolve it again next time
        raise


async def _connect_first(infos: list[Addr], host: str, deadline: float) -> socket.socket:
    loop = asyncio.get_running_loop()
    last: BaseException = OSError(f"no address for {host}")
    for family, type_, proto, addr in infos:
        s = socket.socket(family, type_, proto)
        s.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(s, addr), max(0.01, deadline - loop.time()))
            return s
        except (OSError, asyncio.TimeoutError) as exc:
            s.close()
            last = exc
    raise last


def why(exc: BaseException) -> str:
    """A short reason for a failed connect ("Connection refused", "no answer within 5 s")."""
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """(up, detail). Connect, then close with RST."""
    try:
        s = await open_tcp(host, port, timeout)
    except asyncio.TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except OSError as exc:
        return False, why(exc)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
    finally:
        s.close()
    return True, "connect ok"


@dataclass
class Health:
    """One PACS server's health as the terminator sees it (a service has one per member)."""

    service: str
    host: str
    port: int
    state: str = "unknown"  # "up" | "down" | "unknown"
    detail: str = ""
    since: float = field(default_factory=time.time)
    last_ok: float = 0.0  # monotonic time of the last successful probe or dial
    probes: int = 0
    failures: int = 0

    @property
    def down(self) -> bool:
        return self.state == "down"

    def record(self, ok: bool, detail: str) -> bool:
        """Update from a probe or a real dial; True when the state changed."""
        if ok:
            self.last_ok = time.monotonic()
        else:
            self.failures += 1
        new = "up" if ok else "down"
        self.detail = detail
        if new == self.state:
            return False
        self.state, self.since = new, time.time()
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "host": self.host, "port": self.port, "state": self.state,
                "detail": self.detail, "since": self.since, "probes": self.probes, "failures": self.failures}
