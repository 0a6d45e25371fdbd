"""Shared pieces of the reliability suite: `dicomtls serve` as a real subprocess (signals, RSS, file
descriptors, its JSON log), plans, TLS clients speaking raw DICOM PDUs (benchmarks/dul.py), an echo
prober that proves the listener stays responsive, and polling with deadlines (never fixed sleeps)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import dul
from dicomtls.engine.tlsctx import client_context
from tests.support.peers import LOOPBACK, free_port
from tests.support.serve import ServeProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
# An idle terminator: the asyncio thread plus at most the default executor's workers (getaddrinfo).
IDLE_THREADS = 1 + min(32, (os.cpu_count() or 1) + 4)


def raise_nofile(need: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (children inherit it) to at least `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise AssertionError(f"the hard file-descriptor limit {hard} is below the {need} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


# --- plans -----------------------------------------------------------------------------------------

def write_plan(path: Path, cert: Path, key: Path, port: int, backend_port: int, *, ae_title: str = "ANY-SCP",
               builtin: dict[str, Any] | None = None, extra: str = "") -> Path:
    settings = {"state_dir": str(path.parent / "state"), **(builtin or {})}
    path.write_text(
        'backend = "builtin"\n'
        f'[certificate]\ncert = "{cert}"\nkey = "{key}"\n'
        '[cipher_policy]\nprofile = "bcp195-nd"\n'
        f'[[service]]\nname = "pacs"\nhost = "{LOOPBACK}"\nport = {backend_port}\nae_title = "{ae_title}"\n'
        f'[[virtual_server]]\nname = "store"\nip = "{LOOPBACK}"\nport = {port}\nrole = "store"\nservice = "pacs"\n'
        + extra
        + "[builtin]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return path


# --- the terminator as a process ---------------------------------------------------------------------

class Serve(ServeProcess):
    """`dicomtls serve PLAN` as a subprocess (started when this returns), with the process's metrics."""

    def __init__(self, plan: Path, home: Path, port: int) -> None:
        super().__init__(plan, home)
        self.port = port
        self.event("started", timeout=20)

    def ends(self, after: int = 0) -> list[str]:
        """The `end` of every association record since index `after`."""
        return [r.get("end", "") for r in self.find("association", after)]

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{key} not in /proc/{self.pid}/status")

    def rss_mb(self) -> float:
        return self.status_kb("VmRSS") / 1024

    def threads(self) -> int:
        return self.status_kb("Threads")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def sockets(self) -> int:
        n = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
        return n

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def reload(self, timeout: float = 15.0) -> dict:
        """SIGHUP; returns the reloaded or reload_failed record it caused."""
        mark = len(self.records)
        self.signal(signal.SIGHUP)
        return wait_for(lambda: next((r for r in self.records[mark:]
                                      if r.get("event") in ("reloaded", "reload_failed")), None),
                        timeout, "reloaded/reload_failed after SIGHUP")


@dataclass
class Rig:
    """A terminator with its plan and ports (tests build these with start_rig)."""

    serve: Serve
    plan: Path
    port: int
    backend_port: int
    folder: Path
    extra: dict = field(default_factory=dict)


def start_rig(folder: Path, tls_files: Any, backend_port: int, **plan_kw: Any) -> Rig:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    plan = write_plan(folder / "plan.toml", tls_files.server_cert, tls_files.server_key, port, backend_port, **plan_kw)
    return Rig(Serve(plan, folder / "home", port), plan, port, backend_port, folder)


# --- clients -----------------------------------------------------------------------------------------

_CTX: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    global _CTX
    if _CTX is None:
        _CTX = client_context("bcp195-nd", insecure=True)
    return _CTX


def tls_connect(port: int, timeout: float = 5.0) -> ssl.SSLSocket:
    raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return tls_context().wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def echo_once(port: int, timeout: float = 1.0) -> float:
    """A whole association (TCP, TLS, A-ASSOCIATE, C-ECHO, A-RELEASE); returns its seconds."""
    t0 = time.monotonic()
    with tls_connect(port, timeout) as s:
        status = dul.echo(s)
    assert status == 0, f"C-ECHO status 0x{status:04x}"
    return time.monotonic() - t0


def abort_close(sock: socket.socket) -> None:
    """Vanish: close with RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    except OSError:
        pass
    sock.close()


class EchoProber:
    """Echo through the terminator every `interval` s in a thread; each must finish within `limit` s.
    Use as a context manager around an attack; .failures lists what went wrong."""

    def __init__(self, port: int, interval: float = 0.1, limit: float = 1.0) -> None:
        self.port, self.interval, self.limit = port, interval, limit
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                took = echo_once(self.port, self.limit)
                self.latencies.append(took)
                if took > self.limit:
                    self.failures.append(f"echo took {took:.2f} s")
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failures.append(f"{type(exc).__name__}: {exc} after {time.monotonic() - t0:.2f} s")
            self._stop.wait(self.interval)

    def __enter__(self) -> "EchoProber":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # A quick attack still gets a few echoes measured: the prober runs until it has three.
        end = time.monotonic() + 10
        while len(self.latencies) + len(self.failures) < 3 and time.monotonic() < end and self._t.is_alive():
            time.sleep(self.interval)  # poll interval
        self._stop.set()
        self._t.join(10)

    def check(self, what: str, min_echoes: int = 3) -> None:
        assert not self.failures, f"during {what}: {len(self.failures)} echo failures, e.g. {self.failures[:3]}"
        assert len(self.latencies) >= min_echoes, f"during {what}: only {len(self.latencies)} echoes ran"
        assert max(self.latencies) < self.limit, f"during {what}: slowest echo {max(self.latencies):.2f} s"
