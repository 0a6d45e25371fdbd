"""Faults around `dicomtls serve` (a real subprocess): the PACS killed mid-transfer, refusing, or
reading 1 byte per second; clients vanishing mid-PDU or while the PACS is stalled; a reload with
broken plans; SIGHUP right after start; SIGTERM drains.
Each test names what the sender sees, what the terminator logs, and what it must not leak."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from benchmarks import dul
from benchmarks.dicom_sink import SinkHandle
from tests.reliability.support import (
    IDLE_THREADS,
    REPO,
    Serve,
    abort_close,
    echo_once,
    start_rig,
    tls_connect,
    wait_for,
    write_plan,
)
from tests.support.peers import LOOPBACK, free_port
from tests.support.processes import stop as stop_process
from tests.support.tlsfiles import fingerprint_of

pytestmark = pytest.mark.interop


def _associate(port: int) -> ssl.SSLSocket:
    s = tls_connect(port, 5.0)
    s.sendall(dul.associate_rq())
    ac = dul.read_pdu(s)
    assert ac[0] == dul.ASSOCIATE_AC, ac.hex()
    return s


class SinkProcess:
    """benchmarks.dicom_sink as a process on a fixed port, so it can be SIGKILLed and restarted."""

    def __init__(self, port: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.dicom_sink", "--port", str(port)],
                                     cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("LISTENING"), line
        self.port = int(line.split()[1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)


class Pusher:
    """Streams one endless P-DATA-TF from a thread; .sent counts bytes, .error how it ended."""

    def __init__(self, sock: ssl.SSLSocket, chunk: int = 256 * 1024) -> None:
        self.sock, self.sent, self.error = sock, 0, None
        self.done = threading.Event()
        self._payload = memoryview(bytes(chunk))
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        try:
            self.sock.sendall(dul.p_data_header(0xFFFFFFF0))
            while True:
                self.sock.sendall(self._payload)
                self.sent += len(self._payload)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.error = exc
        finally:
            self.done.set()


def test_pacs_killed_mid_transfer_aborts_the_client_and_the_terminator_carries_on(tmp_path, tls_files):
    """The PACS process is SIGKILLed while 100s of MB stream through: the sender's connection fails
    within 5 s (reset/abort, not a hang), the association is logged as ended by the backend, the
    terminator stays up, and once the PACS is back on its port an echo succeeds again."""
    sink = SinkProcess()
    rig = start_rig(tmp_path, tls_files, sink.port)
    try:
        s = _associate(rig.port)
        pusher = Pusher(s)
        wait_for(lambda: pusher.sent > 32 * 2**20, 20, "32 MiB flowing")
        sink.kill()
        t0 = time.monotonic()
        assert pusher.done.wait(5), f"the sender was not told after 5 s ({pusher.sent} bytes sent)"
        assert isinstance(pusher.error, (ConnectionError, ssl.SSLError, OSError)), pusher.error
        s.close()
        rec = rig.serve.event("association", end="backend_reset")
        # Most of it reached the terminator: what the sender's socket accepted includes what still sat in the
        # kernel's buffers (up to a few MiB with autotuning) when the PACS died.
        assert rec["bytes_from_client"] > 24 * 2**20
        assert rig.serve.alive()
        sink = SinkProcess(sink.port)  # the PACS restarts on the same port
        wait_for(lambda: _echo_ok(rig.port), 10, "an echo through the terminator after the PACS restart")
        assert time.monotonic() - t0 < 15
    finally:
        sink.stop()
        rig.serve.stop()


def _echo_ok(port: int) -> bool:
    try:
        return echo_once(port, 1.0) < 1.0
    except (OSError, ssl.SSLError, dul.PDUError):
        return False


def test_pacs_refusing_connections_gets_a_transient_reject_within_1s(tmp_path, tls_files):
    """Nothing listens on the PACS port: every association gets A-ASSOCIATE-RJ (2, 3, 1: transient,
    temporary congestion) within 1 s and a backend_unavailable log line; the terminator stays up."""
    dead_port = free_port()
    rig = start_rig(tmp_path, tls_files, dead_port)
    try:
        for _ in range(5):
            t0 = time.monotonic()
            with tls_connect(rig.port, 5.0) as s:
                s.sendall(dul.associate_rq())
                rj = dul.read_pdu(s)
            assert time.monotonic() - t0 < 1.0
            assert rj[0] == dul.ASSOCIATE_RJ and tuple(rj[7:10]) == (2, 3, 1), rj.hex()
        recs = wait_for(lambda: (lambda r: r if len(r) == 5 else None)(rig.serve.find("association")), 5,
                        "5 association records")
        assert {r["end"] for r in recs} == {"backend_unavailable"}, rig.serve.ends()
        assert all(str(dead_port) in r["detail"] for r in recs)
        assert rig.serve.alive()
    finally:
        rig.serve.stop()


class SlowPacs:
    """Answers the A-ASSOCIATE-RQ, then reads one byte per second with a small receive buffer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.read = 0
        self.peer_closed = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c: socket.socket) -> None:
        try:
            rq = dul.read_pdu(c)
        except (OSError, ConnectionError, dul.PDUError):
            c.close()  # a health probe
            return
        c.sendall(dul.associate_ac(rq))
        try:
            while not self._stop.is_set():
                b = c.recv(1)
                if not b:
                    break
                self.read += 1
                self._stop.wait(1.0)
        except OSError:
            pass
        self.peer_closed.set()
        c.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_pacs_reading_one_byte_per_second_keeps_terminator_memory_bounded(tmp_path, tls_files):
    """A PACS that reads 1 byte/s: the sender is pushed back (its byte count stops growing below
    64 MiB), the terminator's RSS grows by less than 8 MB however hard the sender pushes, and a
    new association is still admitted within 1 s."""
    pacs = SlowPacs()
    rig = start_rig(tmp_path, tls_files, pacs.port, builtin={"drain_timeout": 1})
    try:
        s = _associate(rig.port)
        rss0 = rig.serve.rss_mb()
        pusher = Pusher(s)
        samples: list[int] = []

        def stalled() -> bool:
            samples.append(pusher.sent)
            return len(samples) > 8 and samples[-1] == samples[-9] and samples[-1] > 0

        wait_for(stalled, 30, "the sender to be held back", interval=0.25)
        held = pusher.sent
        growth = rig.serve.rss_mb() - rss0
        assert 256 * 1024 < held < 64 * 2**20, f"{held} bytes were accepted from the sender before backpressure"
        assert growth < 8, f"terminator RSS grew {growth:.1f} MB while the PACS read {pacs.read} bytes"
        assert pacs.read < 60
        t0 = time.monotonic()
        abort_close(_associate(rig.port))  # the stalled association blocks nobody else
        assert time.monotonic() - t0 < 1.0
        abort_close(s)
    finally:
        pacs.close()
        rig.serve.stop()


def test_client_vanishing_while_the_pacs_is_stalled_ends_the_association(tmp_path, tls_files):
    """The PACS reads 1 byte/s and the client, held back, resets its connection: within 10 s the
    terminator logs the association as client_reset and closes both of its sockets (not at the idle
    timeout, 15 min by default)."""
    pacs = SlowPacs()
    rig = start_rig(tmp_path, tls_files, pacs.port, builtin={"drain_timeout": 1})
    try:
        s = _associate(rig.port)
        pusher = Pusher(s)
        samples: list[int] = []
        wait_for(lambda: samples.append(pusher.sent) or (len(samples) > 8 and samples[-1] == samples[-9]), 30,
                 "the sender to be held back", interval=0.25)
        socks = rig.serve.sockets()
        abort_close(s)
        rec = rig.serve.event("association", timeout=10)
        assert rec["end"] == "client_reset", rec
        wait_for(lambda: rig.serve.sockets() <= socks - 2, 5, "both sockets of the association closed")
    finally:
        pacs.close()
        rig.serve.stop()


def test_clients_vanishing_mid_pdu_close_the_pacs_side_and_leak_no_descriptors(tmp_path, tls_files):
    """40 clients associate, send half a P-DATA-TF, and vanish (20 with RST, 20 with a bare FIN): the
    PACS sees every backend connection closed, the terminator's descriptors return to their
    baseline, and each association is logged."""
    sink = SinkHandle()
    rig = start_rig(tmp_path, tls_files, sink.port)
    try:
        echo_once(rig.port, 5.0)
        wait_for(lambda: sink.open() == 0, 10, "the warm-up connection to close at the PACS")
        base_fds, base_threads = rig.serve.fds(), rig.serve.threads()
        mark = len(rig.serve.records)
        fin_clients = set()
        for i in range(40):
            s = _associate(rig.port)
            s.sendall(dul.p_data_header(100_000) + bytes(5000))
            if i % 2:
                abort_close(s)
            else:
                fin_clients.add("%s:%d" % s.getsockname()[:2])
                socket.socket.shutdown(s, socket.SHUT_RDWR)  # FIN without close_notify
                s.close()
        recs = wait_for(lambda: (lambda r: r if len(r) >= 40 else None)(rig.serve.find("association", mark)), 15,
                        "40 association records")
        wait_for(lambda: sink.open() == 0, 15, "every PACS-side connection closed")
        wait_for(lambda: rig.serve.fds() <= base_fds, 15,
                 f"descriptors back to {base_fds} (now {rig.serve.fds()})")
        wait_for(lambda: rig.serve.threads() <= max(base_threads, IDLE_THREADS), 15, "pump threads gone")
        ends = sorted({r["end"] for r in recs})
        assert set(ends) <= {"client_reset", "closed", "idle_timeout"} and "client_reset" in ends, ends
        fins = [r for r in recs if r["client"] in fin_clients]
        assert len(fins) == 20
        # after a FIN everything sent before it reaches the PACS (a RST may discard unread bytes)
        assert all(r["bytes_from_client"] == len(dul.associate_rq()) + 6 + 5000 for r in fins), fins[0]
        assert echo_once(rig.port) < 1.0
    finally:
        rig.serve.stop()
        sink.stop()


def test_reload_with_broken_plans_keeps_the_old_configuration_serving(tmp_path, tls_files):
    """SIGHUP with a plan that is not TOML, one naming a missing certificate, and one whose key does
    not match its certificate: each is refused with a reload_failed line, the terminator keeps
    serving the same certificate; a good plan then reloads."""
    sink = SinkHandle()
    rig = start_rig(tmp_path, tls_files, sink.port)
    good = rig.plan.read_text()
    try:
        fp = rig.serve.records[0]["cert_fingerprint"]
        broken = {
            "not TOML": "backend = \"builtin\n[certificate",
            "missing certificate": good.replace(str(tls_files.server_cert), str(tmp_path / "nope.pem")),
            "key of another certificate": good.replace(str(tls_files.server_key), str(tls_files.other_key)),
        }
        for name, text in broken.items():
            rig.plan.write_text(text)
            rec = rig.serve.reload()
            assert rec["event"] == "reload_failed", f"{name}: {rec}"
            assert rec.get("error") and rec.get("fix"), rec
            assert _fingerprint_now(rig.port) == fp, name
            assert echo_once(rig.port) < 1.0, name
            assert rig.serve.alive(), name
        assert fp == fingerprint_of(tls_files.server_cert)
        write_plan(rig.plan, tls_files.other_cert, tls_files.other_key, rig.port, sink.port)
        rec = rig.serve.reload()
        assert rec["event"] == "reloaded" and rec["cert_changed"] is True, rec
        assert _fingerprint_now(rig.port) == fingerprint_of(tls_files.other_cert)
        assert echo_once(rig.port) < 1.0
    finally:
        rig.serve.stop()
        sink.stop()


def _fingerprint_now(port: int) -> str:
    import hashlib

    with tls_connect(port) as s:
        der = s.getpeercert(binary_form=True)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_sigterm_drains_live_associations_and_refuses_new_ones(tmp_path, tls_files):
    """SIGTERM with one live association: the listener closes at once (new connections refused),
    the live association still completes a C-ECHO and its release, and serve exits 0 right after."""
    sink = SinkHandle()
    rig = start_rig(tmp_path, tls_files, sink.port, builtin={"drain_timeout": 20})
    try:
        s = _associate(rig.port)
        rig.serve.signal(signal.SIGTERM)
        rig.serve.event("draining", live_associations=1)

        def refused() -> bool:
            try:
                socket.create_connection((LOOPBACK, rig.port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True

        wait_for(refused, 5, "the listener to close")
        s.sendall(dul.c_echo_rq(7))
        assert dul.echo_status(dul.read_pdu(s)) == (7, 0)
        s.sendall(dul.release_rq())
        assert dul.read_pdu(s)[0] == dul.RELEASE_RP
        s.close()
        t0 = time.monotonic()
        assert rig.serve.proc.wait(10) == 0
        assert time.monotonic() - t0 < 5, "serve waited for the drain timeout although nothing was live"
        stopped = rig.serve.event("stopped")
        assert stopped["cut_associations"] == 0
        assert rig.serve.event("association", end="closed")["bytes_to_client"] > 0
    finally:
        rig.serve.stop()
        sink.stop()


def test_sigterm_cuts_what_outlives_the_drain_timeout(tmp_path, tls_files):
    """An association that stays silent past drain_timeout (2 s) is cut (the client sees the
    connection end) and serve exits 0 within a few seconds of the timeout."""
    sink = SinkHandle()
    rig = start_rig(tmp_path, tls_files, sink.port, builtin={"drain_timeout": 2})
    try:
        s = _associate(rig.port)
        t0 = time.monotonic()
        rig.serve.signal(signal.SIGTERM)
        assert rig.serve.proc.wait(15) == 0
        took = time.monotonic() - t0
        assert 1.5 < took < 8, took
        assert rig.serve.event("stopped")["cut_associations"] == 1
        s.settimeout(5)
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            if not s.recv(100):
                raise ConnectionError("closed")
        s.close()
    finally:
        rig.serve.stop()
        sink.stop()


def test_sighup_right_after_start_reloads_and_never_kills(tmp_path, tls_files):
    """5 times: start serve, send SIGHUP the moment it has logged "started": it reloads and stays up
    (a systemd ExecReload or `dicomtls apply` can come that early)."""
    sink = SinkHandle()
    try:
        for i in range(5):
            folder = tmp_path / f"run{i}"
            folder.mkdir()
            port = free_port()
            plan = write_plan(folder / "plan.toml", tls_files.server_cert, tls_files.server_key, port, sink.port)
            serve = Serve(plan, folder / "home", port)  # returns as soon as "started" is logged
            try:
                serve.signal(signal.SIGHUP)
                assert serve.event("reloaded", timeout=10)["generation"] == 2
                assert serve.alive()
                assert echo_once(port, 1.0) < 1.0
            finally:
                serve.stop()
    finally:
        sink.stop()
