"""`dicomtls serve` under systemd's notify protocol: a datagram socket in the test plays NOTIFY_SOCKET
(sd_notify(3)). READY=1 comes only once the listener accepts TLS connections; RELOADING=1 (with
MONOTONIC_USEC) and READY=1 bracket a SIGHUP reload; STOPPING=1 starts the drain; WATCHDOG=1 is
sent every WATCHDOG_USEC/2. Without NOTIFY_SOCKET nothing changes (every other serve test)."""

from __future__ import annotations

import signal
import socket
import threading
import time

from dicomtls.engine.terminator.sdnotify import Notifier
from tests.terminator.helpers import LOOPBACK, ServeProcess, free_port, tls_connect, wait_for, write_plan


class FakeSystemd:
    """Receives sd_notify datagrams; for each READY=1, records whether the listener accepted a TLS
    handshake at that moment."""

    def __init__(self, path, port: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.port = port
        self.messages: list[tuple[float, dict[str, str], bool | None]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            serving = None
            if fields.get("READY") == "1":
                try:
                    tls_connect(self.port, timeout=2).close()  # a full TLS handshake, right now
                    serving = True
                except OSError:
                    serving = False
            self.messages.append((time.monotonic(), fields, serving))

    def keys(self, name: str) -> list[dict[str, str]]:
        return [f for _, f, _ in self.messages if name in f]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def test_ready_reloading_stopping_and_watchdog(tmp_path, tls_files):
    port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": free_port()}],
                      [{"name": "store", "port": port, "service": "PACS"}], builtin={"health_interval": 3600.0})
    systemd = FakeSystemd(tmp_path / "notify", port)
    sp = ServeProcess(plan, tmp_path / "home", env={"NOTIFY_SOCKET": str(tmp_path / "notify"),
                                                      "WATCHDOG_USEC": "200000"})
    try:
        wait_for(lambda: systemd.keys("READY"), 20, "READY=1")
        first = next(m for m in systemd.messages if "READY" in m[1])
        assert first[2] is True, "READY=1 was sent before the listener accepted TLS connections"
        assert not systemd.keys("RELOADING") and not systemd.keys("STOPPING")
        wait_for(lambda: len(systemd.keys("WATCHDOG")) >= 3, 5, "three watchdog pings (every 0.1 s)")

        n = len(sp.records)
        sp.proc.send_signal(signal.SIGHUP)
        sp.event("reloaded", after=n)
        wait_for(lambda: len(systemd.keys("READY")) >= 2, 10, "READY=1 after the reload")
        order = [k for _, f, _ in systemd.messages for k in f if k in ("READY", "RELOADING")]
        assert order == ["READY", "RELOADING", "READY"], order
        reloading = systemd.keys("RELOADING")[0]
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert 0 < now_usec - int(reloading["MONOTONIC_USEC"]) < 30_000_000  # CLOCK_MONOTONIC, microseconds
        assert "generation 2" in systemd.keys("READY")[-1]["STATUS"]

        sp.proc.send_signal(signal.SIGTERM)
        assert sp.proc.wait(30) == 0
        assert systemd.keys("STOPPING") == [{"STOPPING": "1"}]
    finally:
        sp.stop()
        systemd.close()


def test_without_notify_socket_every_call_is_a_no_op():
    n = Notifier(environ={})
    assert not n.enabled and n.watchdog_interval == 0.0
    assert not n.ready() and not n.reloading() and not n.stopping() and not n.watchdog() and n.sent == []


def test_the_watchdog_is_only_for_the_named_pid(tmp_path):
    assert Notifier(environ={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"}).watchdog_interval == 0.5
    other = Notifier(environ={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval == 0.0


def test_abstract_namespace_socket():
    name = f"dicomtls-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2)
        assert Notifier(environ={"NOTIFY_SOCKET": "@" + name}).ready("up")
        assert s.recv(100) == b"READY=1\nSTATUS=up"
