"""`dicomtls serve` as a real process under signals: SIGHUP with a new certificate while 20 transfers
are half done (all finish intact, new connections get the new certificate, a broken plan is
refused and the running config stays), SIGTERM while transfers run (they finish, nothing new is
accepted, exit 0), and the drain deadline cutting an association that will not end."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import ssl
import threading
import time

import pytest

from dicomtls.engine.terminator.control import query_status
from tests.terminator.helpers import (
    LOOPBACK,
    ServeProcess,
    assoc_rq,
    backend,
    free_port,
    peer_fingerprint,
    serve_process,
    tls_connect,
    wait_for,
    write_plan,
)

CHUNK = os.urandom(1 << 20)


class Transfer(threading.Thread):
    """One association's worth of bytes: A-ASSOCIATE-RQ, `mib` MiB in two halves with a pause
    between them (until `gate` opens), then a FIN; the hashing PACS answers with the SHA-256
    of all it received, which must equal ours."""

    def __init__(self, port: int, gate: threading.Event, mib: int = 4) -> None:
        super().__init__(daemon=True)
        self.port, self.gate, self.mib = port, gate, mib
        self.halfway = threading.Event()
        self.ok: bool | None = None
        self.error = ""
        self.fingerprint = ""

    def run(self) -> None:
        try:
            s = tls_connect(self.port, timeout=60)
            self.fingerprint = peer_fingerprint(s)
            h = hashlib.sha256()
            for i in range(self.mib):
                data = assoc_rq() if i == 0 else b""
                data += CHUNK
                s.sendall(data)
                h.update(data)
                if i == self.mib // 2 - 1:
                    self.halfway.set()
                    assert self.gate.wait(60), "gate never opened"
            # End of data as a TCP FIN (the pump forwards it as a FIN), then read the PACS's answer.
            # Not unwrap(): CPython's second SSL_shutdown would read, and fail on, that answer.
            socket.socket.shutdown(s, socket.SHUT_WR)
            answer = b""
            while True:
                try:
                    b = s.recv(1024)
                except ssl.SSLZeroReturnError:
                    break
                if not b:
                    break
                answer += b
            s.close()
            self.ok = answer.decode() == h.hexdigest()
            if not self.ok:
                self.error = f"hash mismatch: {answer[:80]!r}"
        except Exception as exc:
            self.ok, self.error = False, f"{type(exc).__name__}: {exc}"
        finally:
            self.halfway.set()


def _status(state_dir) -> dict:
    return query_status(state_dir / "control.sock")


def _start(n: int, port: int, gate: threading.Event) -> list[Transfer]:
    ts = [Transfer(port, gate) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        assert t.halfway.wait(30)
    return ts


def test_reload_with_a_new_certificate_during_20_transfers(tmp_path, tls_files):
    with backend("hash") as pacs:
        port = free_port()
        services = [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}]
        listeners = [{"name": "store", "port": port, "service": "PACS"}]
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key, services, listeners)
        with serve_process(plan, tmp_path / "home") as sp:
            gate = threading.Event()
            transfers = _start(20, port, gate)
            assert all(t.error == "" for t in transfers), [t.error for t in transfers]
            wait_for(lambda: len(_status(tmp_path / "state")["associations"]) == 20, 10, "20 live associations")
            old_fp = transfers[0].fingerprint
            assert old_fp == tls_files.server_fingerprint

            write_plan(tmp_path, tls_files.other_cert, tls_files.other_key, services, listeners)
            n = len(sp.records)
            sp.proc.send_signal(signal.SIGHUP)
            rec = sp.event("reloaded", after=n)
            assert rec["cert_changed"] is True and rec["live_associations"] == 20
            with tls_connect(port) as fresh:
                new_fp = peer_fingerprint(fresh)
            assert new_fp != old_fp and new_fp == rec["cert_fingerprint"]

            # A broken plan: refused, logged, and the running configuration keeps serving.
            (tmp_path / "plan.toml").write_text((tmp_path / "plan.toml").read_text().replace(
                str(tls_files.other_cert), str(tmp_path / "missing.pem")))
            n = len(sp.records)
            sp.proc.send_signal(signal.SIGHUP)
            failed = sp.event("reload_failed", after=n)
            assert "missing.pem" in failed["error"] and failed["fix"]
            with tls_connect(port) as again:
                assert peer_fingerprint(again) == new_fp

            gate.set()
            for t in transfers:
                t.join(60)
            assert [t.ok for t in transfers] == [True] * 20, [t.error for t in transfers if not t.ok]
            assert all(t.fingerprint == old_fp for t in transfers)  # they kept their TLS sessions
            def finished() -> list[dict]:
                return [r for r in sp.records
                        if r["event"] == "association" and r.get("bytes_from_client", 0) > 4 << 20]

            wait_for(lambda: len(finished()) == 20, 10, "20 association records")
            assert {r["end"] for r in finished()} == {"closed"}
        assert sp.proc.returncode == 0


def test_sigterm_drains_running_transfers_and_accepts_nothing_new(tmp_path, tls_files):
    with backend("hash") as pacs:
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                          [{"name": "store", "port": port, "service": "PACS"}], builtin={"drain_timeout": 20.0})
        with serve_process(plan, tmp_path / "home") as sp:
            gate = threading.Event()
            transfers = _start(5, port, gate)
            wait_for(lambda: len(_status(tmp_path / "state")["associations"]) == 5, 10, "5 live associations")
            t0 = time.monotonic()
            sp.proc.send_signal(signal.SIGTERM)
            assert sp.event("draining")["live_associations"] == 5
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((LOOPBACK, port), timeout=5)
            assert sp.proc.poll() is None  # still draining
            gate.set()
            for t in transfers:
                t.join(60)
            assert [t.ok for t in transfers] == [True] * 5, [t.error for t in transfers]
            assert sp.proc.wait(20) == 0
            assert time.monotonic() - t0 < 20
            stopped = sp.event("stopped")
            assert stopped["cut_associations"] == 0
        assert not (tmp_path / "state" / "serve.pid").exists()
        assert not (tmp_path / "state" / "control.sock").exists()


def test_the_drain_deadline_cuts_what_does_not_finish(tmp_path, tls_files):
    with backend("hash") as pacs:
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                          [{"name": "store", "port": port, "service": "PACS"}], builtin={"drain_timeout": 1.0})
        with serve_process(plan, tmp_path / "home") as sp:
            never = threading.Event()
            [stuck] = _start(1, port, never)
            wait_for(lambda: len(_status(tmp_path / "state")["associations"]) == 1, 10, "1 live association")
            t0 = time.monotonic()
            sp.proc.send_signal(signal.SIGTERM)
            assert sp.proc.wait(10) == 0
            assert 0.9 < time.monotonic() - t0 < 5
            cut = [r for r in sp.records if r["event"] == "association" and r.get("end") == "drain_timeout"]
            assert len(cut) == 1 and cut[0]["bytes_from_client"] >= 2 << 20
            assert sp.event("stopped")["cut_associations"] == 1
            never.set()
            stuck.join(10)
            assert stuck.ok is False  # it was cut, and noticed


def test_a_sighup_right_after_start_reloads_and_does_not_kill(tmp_path, tls_files):
    """Found by the reliability tests: "started" was logged before the SIGHUP handler existed, so a
    reload asked for at once (systemd ExecReload, apply right after serve came up) ended the service."""
    with backend() as pacs:
        for i in range(3):
            folder = tmp_path / f"run{i}"
            folder.mkdir()
            plan = write_plan(folder, tls_files.server_cert, tls_files.server_key,
                              [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                              [{"name": "store", "port": free_port(), "service": "PACS"}])
            sp = ServeProcess(plan, folder / "home")
            try:
                sp.event("started")
                sp.proc.send_signal(signal.SIGHUP)
                assert sp.event("reloaded")["generation"] == 2
                assert sp.proc.poll() is None
            finally:
                assert sp.stop() == 0
