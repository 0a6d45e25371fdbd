"""Who gets through to the PACS: calling-AE and client allowlists, a PACS that is down (transient
reject at once, recovery at the next association), and idle connections that must not starve a
real one. DCMTK's echoscu is the client, a pynetdicom SCP the PACS."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from tests.terminator.helpers import (
    LOOPBACK,
    echo_scp,
    echoscu,
    expect_transient_reject,
    free_port,
    terminator,
    tls_connect,
    wait_for,
    wait_record,
    write_plan,
)


def _plan(folder, tls_files, pacs_port, listeners, **builtin):
    return write_plan(folder, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}], listeners, builtin=builtin)


def test_calling_ae_allowlist_gives_a_proper_reject(tmp_path, tls_files):
    with echo_scp() as pacs_port:
        port = free_port()
        plan = _plan(tmp_path, tls_files, pacs_port, [{"name": "mwl", "port": port, "role": "worklist",
                                                       "service": "PACS", "allowed_calling_aes": ["BUTTERFLY"]}])
        with terminator(plan) as (handle, records):
            r = echoscu(port, calling="INTRUDER")
            assert r.returncode != 0
            assert "Rejected Permanent" in r.stderr and "Source: Service User" in r.stderr
            assert "Calling AE Title Not Recognized" in r.stderr
            rec = wait_record(records, end="calling_ae_refused")
            assert rec["calling_ae"] == "INTRUDER" and "backend_connect_ms" not in rec  # never dialled
            ok = echoscu(port, calling="BUTTERFLY")
            assert ok.returncode == 0, ok.stderr
            assert wait_record(records, outcome="released", calling_ae="BUTTERFLY")["listener"] == "mwl"


def test_client_outside_allowed_cidrs_is_closed_before_the_handshake(tmp_path, tls_files):
    with echo_scp() as pacs_port:
        closed, open_ = free_port(), free_port()
        plan = _plan(tmp_path, tls_files, pacs_port, [
            {"name": "far", "port": closed, "service": "PACS", "allowed_clients": ["192.0.2.0/24"]},
            {"name": "near", "port": open_, "service": "PACS", "allowed_clients": ["127.0.0.0/8", "::1"]}])
        with terminator(plan) as (handle, records):
            with pytest.raises((ConnectionResetError, OSError)):
                tls_connect(closed).close()
            rec = wait_record(records, end="client_not_allowed")
            assert rec["listener"] == "far" and "tls_version" not in rec and "192.0.2.0/24" in rec["detail"]
            assert echoscu(open_).returncode == 0
            assert echoscu(closed).returncode != 0


def test_pacs_down_is_a_transient_reject_at_once_and_recovery_is_immediate(tmp_path, tls_files):
    pacs_port, port = free_port(), free_port()
    plan = _plan(tmp_path, tls_files, pacs_port, [{"name": "store", "port": port, "service": "PACS"}],
                 health_interval=3600.0)
    pacs = contextlib.ExitStack()
    pacs.enter_context(echo_scp(pacs_port))
    with terminator(plan) as (handle, records):
        assert echoscu(port).returncode == 0
        pacs.close()  # the PACS goes down
        for _ in range(2):  # the first finds out by dialling, the second through the health state
            expect_transient_reject(port)
        rec = wait_record(records, end="backend_unavailable")
        assert "Connection refused" in rec["detail"]
        assert [e for e in records if e["event"] == "backend_health" and e["state"] == "down"]
        with echo_scp(pacs_port):  # the PACS is back: the very next association goes through
            r = echoscu(port)
            assert r.returncode == 0, r.stderr
            assert [e for e in records if e["event"] == "backend_health" and e["state"] == "up"][-1]["ts"] > \
                [e for e in records if e["event"] == "backend_health" and e["state"] == "down"][-1]["ts"]


def test_health_probe_notices_a_dead_pacs_without_traffic(tmp_path, tls_files):
    pacs_port = free_port()
    plan = _plan(tmp_path, tls_files, pacs_port, [{"name": "store", "port": free_port(), "service": "PACS"}],
                 health_interval=0.2)
    pacs = contextlib.ExitStack()
    pacs.enter_context(echo_scp(pacs_port))
    with terminator(plan) as (handle, records):
        wait_for(lambda: handle.status()["services"][0]["state"] == "up", 5, "up")
        pacs.close()
        wait_for(lambda: handle.status()["services"][0]["state"] == "down", 5, "down")
        with echo_scp(pacs_port):
            wait_for(lambda: handle.status()["services"][0]["state"] == "up", 5, "up again")
            states = [e["state"] for e in records if e["event"] == "backend_health"]
            assert states == ["up", "down", "up"]
        assert handle.status()["counters"]["associations"] == 0  # all of it without a single association


def test_idle_connections_do_not_starve_an_association(tmp_path, tls_files):
    """200 TCP connections that never start TLS, and 20 TLS connections that never send a PDU: an
    echo still succeeds within 1 s, and none of them reached the PACS."""
    with echo_scp() as pacs_port:
        port = free_port()
        plan = _plan(tmp_path, tls_files, pacs_port, [{"name": "store", "port": port, "service": "PACS"}],
                     handshake_timeout=10.0)
        with terminator(plan) as (handle, records):
            idle = [socket.create_connection((LOOPBACK, port), timeout=5) for _ in range(200)]
            tls_idle = [tls_connect(port) for _ in range(20)]
            try:
                t = time.monotonic()
                r = echoscu(port)
                took = time.monotonic() - t
                assert r.returncode == 0, r.stderr
                assert took < 1.0, took
                st = handle.status()
                assert st["counters"]["associations"] == 1  # only the echo reached the PACS
            finally:
                for s in idle + tls_idle:
                    s.close()
