"""The pump loop (engine/terminator/pumploop.py) through a real terminator: live associations add no
thread, a handshake stalled on the loop ends with the terminator's stop, and a bug in one pump
resets that association only."""

from __future__ import annotations

import socket
import threading
import time

from tests.terminator.helpers import (
    LOOPBACK,
    assoc_rq,
    backend,
    free_port,
    recv_all,
    recv_exact,
    terminator,
    tls_connect,
    wait_for,
    wait_record,
    write_plan,
)


def _plan(tmp_path, tls_files, pacs_port: int, port: int, **builtin):
    return write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}],
                      [{"name": "store", "port": port, "service": "PACS"}],
                      builtin={"health_interval": 3600.0, **builtin})


def test_sixty_live_associations_add_no_thread(tmp_path, tls_files):
    """Each association had a thread of its own before (1,000 associations: 1,007 threads)."""
    with backend("echo") as pacs:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, pacs.port, port)) as (handle, records):
            first = tls_connect(port)
            first.sendall(assoc_rq())
            wait_for(lambda: len(handle.status()["associations"]) == 1, 10, "the first association")
            before = {t.ident for t in threading.enumerate()}
            socks = [tls_connect(port) for _ in range(60)]
            for s in socks:
                s.sendall(assoc_rq())
            wait_for(lambda: len(handle.status()["associations"]) == 61, 20, "61 live associations")
            new = [t.name for t in threading.enumerate() if t.ident not in before]
            for s in socks:  # every one of them still moves bytes
                s.sendall(b"ping")
            for s in socks:
                assert recv_exact(s, len(assoc_rq()) + 4)[-4:] == b"ping"
            for s in [first, *socks]:
                s.close()
    # The echo backend's own per-connection threads are named backend-*; the terminator's pumps were pump-<id>.
    mine = [n for n in new if not n.startswith("backend")]
    assert mine == [], f"{len(mine)} new threads for 60 more associations: {mine[:5]}"


def test_a_handshake_stalled_on_a_loop_ends_when_the_terminator_stops(tmp_path, tls_files):
    """The handshake job is cancelled, its socket let go by the loop, then closed: the stop does not wait
    for the handshake timeout, and the record says draining."""
    with backend("discard") as pacs:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, pacs.port, port, handshake_timeout=60.0)) as (handle, records):
            s = socket.create_connection((LOOPBACK, port), timeout=10)
            s.sendall(b"\x16\x03\x01")  # the start of a ClientHello record: the loop waits for the rest
            wait_for(lambda: handle.status()["counters"]["connections"] >= 1, 10, "the connection accepted")
            t = time.monotonic()
        stopped_in = time.monotonic() - t
        assert recv_all(s) == b""  # closed, not left open
        s.close()
    assert stopped_in < 10, f"the stop took {stopped_in:.1f} s"
    assert wait_record(records, end="draining")


def test_a_bug_in_one_pump_resets_that_association_only(tmp_path, tls_files, monkeypatch):
    """The loop that met the exception goes on stepping its other pumps."""
    from dicomtls.engine.terminator import pump as pump_mod

    real = pump_mod.Pump._read_client
    with backend("echo") as pacs:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, pacs.port, port)) as (handle, records):
            good, bad = tls_connect(port), tls_connect(port)
            for s in (good, bad):
                s.sendall(assoc_rq())
            wait_for(lambda: len(handle.status()["associations"]) == 2, 10, "two live associations")
            bad_port = bad.getsockname()[1]

            def broken(self):
                if self.tls.getpeername()[1] == bad_port:
                    raise RuntimeError("a bug")
                return real(self)
            monkeypatch.setattr(pump_mod.Pump, "_read_client", broken)
            bad.sendall(b"x")
            rec = wait_record(records, client=f"{LOOPBACK}:{bad_port}")
            assert rec["end"] == "error: RuntimeError: a bug"
            try:
                rest = recv_all(bad)
            except OSError:  # reset
                rest = b""
            assert not rest.endswith(b"x"), "the broken association still forwarded"
            good.sendall(b"still here")
            assert recv_exact(good, len(assoc_rq()) + 10)[-10:] == b"still here"
            assert [a["client"] for a in handle.status()["associations"]] == [f"{LOOPBACK}:{good.getsockname()[1]}"]
            for s in (good, bad):
                s.close()
