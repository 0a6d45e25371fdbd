"""A PACS on several servers (a service's `members`): the least busy healthy server gets the next
association, a dead one is skipped without failing the association, all dead is a transient
A-ASSOCIATE-RJ at once, a reload changes the servers without touching live associations, and
`dicomtls status` shows each server's health. Real peers: pynetdicom Verification SCPs as the PACS
servers, DCMTK's echoscu (and a raw A-ASSOCIATE-RQ over TLS for held associations) as Butterfly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import struct
import subprocess
import sys
import time

from dicomtls.engine.plan import load_plan
from dicomtls.engine.terminator import pdu
from dicomtls.engine.terminator.config import StateFiles
from tests.terminator.helpers import (
    LOOPBACK,
    REPO,
    assoc_rq,
    echo_scp,
    echoscu,
    expect_transient_reject,
    free_port,
    recv_exact,
    serve_process,
    terminator,
    tls_connect,
    wait_for,
    wait_record,
    write_plan,
)

RELEASE_RQ = struct.pack(">BBI", pdu.RELEASE_RQ, 0, 4) + b"\0" * 4


def _plan(folder, tls_files, members: list[int], port: int, name: str = "plan.toml", **builtin):
    return write_plan(folder, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "members": [{"host": LOOPBACK, "port": p} for p in members]}],
                      [{"name": "store", "port": port, "service": "PACS"}],
                      builtin={"health_interval": 3600.0, **builtin}, name=name)


def addr(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def _recv_pdu(s: ssl.SSLSocket) -> tuple[int, bytes]:
    head = recv_exact(s, 6)
    return head[0], recv_exact(s, struct.unpack(">I", head[2:6])[0])


@contextlib.contextmanager
def held_association(port: int):
    """An association through the terminator that stays open (accepted by the PACS) until the block ends,
    then is released properly: the A-RELEASE-RP proves the pump still carries it."""
    s = tls_connect(port)
    try:
        s.sendall(assoc_rq())
        assert _recv_pdu(s)[0] == pdu.ASSOCIATE_AC
        yield s
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s)[0] == pdu.RELEASE_RP
    finally:
        s.close()


def served(records: list[dict], n: int) -> list[str]:
    """The servers of the first n released associations, once there are n (records come as pumps end)."""
    done = wait_for(lambda: (r := [x for x in records if x.get("outcome") == "released"]) and len(r) >= n and r,
                    10, f"{n} released associations")
    return [x.get("backend") for x in done[:n]]


def last(records: list[dict]) -> dict:
    return [x for x in records if x.get("event") == "association"][-1]


def _live_on(handle) -> list[str]:
    return [a["backend"] for a in handle.status()["associations"]]


def _health(handle) -> dict[str, dict]:
    return {f"{h['host']}:{h['port']}": h for h in handle.status()["services"]}


def test_the_least_busy_server_gets_the_next_association(tmp_path, tls_files):
    with echo_scp() as a, echo_scp() as b:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, [a, b], port)) as (handle, records):
            assert set(_health(handle)) == {addr(a), addr(b)}  # one health entry per server
            with held_association(port):
                wait_for(lambda: _live_on(handle) == [addr(a)], 5, "the first association on A (plan order)")
                for i in range(2):  # A is busy: both go to B
                    r = echoscu(port)
                    assert r.returncode == 0, r.stderr
                    served(records, i + 1)  # each has ended before the next starts
                assert served(records, 2) == [addr(b), addr(b)]
                wait_for(lambda: _health(handle)[addr(b)]["live"] == 0, 5, "B idle")
                assert _health(handle)[addr(a)]["live"] == 1
            assert served(records, 3)[2] == addr(a)  # the held one, released through the pump
            wait_for(lambda: handle.status()["associations"] == [], 5, "the held association to end")
            r = echoscu(port)  # both idle again: the first in plan order
            assert r.returncode == 0, r.stderr
            assert served(records, 4)[3] == addr(a)


def test_a_dead_server_is_skipped_and_the_association_still_succeeds(tmp_path, tls_files):
    a_port = free_port()
    a = contextlib.ExitStack()
    a.enter_context(echo_scp(a_port))
    with echo_scp() as b:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, [a_port, b], port)) as (handle, records):
            wait_for(lambda: all(h["state"] == "up" for h in _health(handle).values()), 5, "both servers up")
            a.close()  # server A dies; the health probe (hourly here) has not seen it
            t = time.monotonic()
            r = echoscu(port)
            assert r.returncode == 0, r.stderr  # the dial to A failed, B took the association
            assert time.monotonic() - t < 2.0
            assert served(records, 1) == [addr(b)]
            rec = last(records)
            assert rec["backend_failed"] == [f"{addr(a_port)} (Connection refused)"]
            down = [e for e in records if e["event"] == "backend_health" and e["state"] == "down"]
            assert [(e["service"], e["host"], e["port"]) for e in down] == [("PACS", LOOPBACK, a_port)]
            assert _health(handle)[addr(a_port)]["state"] == "down" and _health(handle)[addr(b)]["state"] == "up"
            r = echoscu(port)  # A is marked down now: B at once, no failed dial first
            assert r.returncode == 0, r.stderr
            assert served(records, 2)[1] == addr(b)
            assert "backend_failed" not in last(records)
            assert handle.status()["counters"]["backend_failures"] == 1


def test_every_server_down_is_a_transient_reject_at_once_naming_each(tmp_path, tls_files):
    a_port, b_port, port = free_port(), free_port(), free_port()
    with terminator(_plan(tmp_path, tls_files, [a_port, b_port], port)) as (handle, records):
        # The first probes have found both down (so the dial order is the plan's).
        wait_for(lambda: {h["state"] for h in _health(handle).values()} == {"down"}, 5, "both down")
        for _ in range(2):  # the first finds out by dialling both, the second dials them quickly as down
            expect_transient_reject(port)
        rec = wait_record(records, end="backend_unavailable")
        assert rec["detail"] == (f"every server of PACS PACS is down: {addr(a_port)} (Connection refused); "
                                 f"{addr(b_port)} (Connection refused)")
        assert {h["state"] for h in _health(handle).values()} == {"down"}
        with echo_scp(b_port):  # B comes back: the very next association finds it
            r = echoscu(port)
            assert r.returncode == 0, r.stderr
            assert served(records, 1) == [addr(b_port)]
            assert last(records)["backend_failed"] == [f"{addr(a_port)} (Connection refused)"]
            assert _health(handle)[addr(b_port)]["state"] == "up"


def test_a_reload_changes_the_servers_and_leaves_live_associations_alone(tmp_path, tls_files):
    with echo_scp() as a, echo_scp() as b, echo_scp() as c:
        port = free_port()
        with terminator(_plan(tmp_path, tls_files, [a, b], port)) as (handle, records):
            wait_for(lambda: all(h["state"] == "up" for h in _health(handle).values()), 5, "both servers up")
            b_before = _health(handle)[addr(b)]
            with held_association(port):
                wait_for(lambda: _live_on(handle) == [addr(a)], 5, "an association on A")
                new = load_plan(_plan(tmp_path, tls_files, [b, c], port, name="plan2.toml"))
                assert handle.reload(new)
                health = _health(handle)
                assert set(health) == {addr(b), addr(c)}  # A is no longer a server of this PACS
                assert health[addr(b)]["since"] == b_before["since"] and health[addr(b)]["state"] == "up"
                assert health[addr(c)]["state"] in ("unknown", "up")  # new: probed on the next round
                assert _live_on(handle) == [addr(a)]  # the live association stays on A
                for i in range(2):
                    r = echoscu(port)
                    assert r.returncode == 0, r.stderr
                    served(records, i + 1)  # each has ended before the next starts
                assert served(records, 2) == [addr(b), addr(b)]  # both idle: B, first in plan order
                wait_for(lambda: _health(handle)[addr(b)]["live"] == 0, 5, "B idle")
                with held_association(port):
                    wait_for(lambda: sorted(_live_on(handle)) == sorted([addr(a), addr(b)]), 5, "one on B")
                    r = echoscu(port)  # B is busy, A is not a member any more: C
                    assert r.returncode == 0, r.stderr
                    assert served(records, 3)[2] == addr(c)
            # Leaving the blocks released both held associations through the pump (A-RELEASE-RP came back).
            assert sorted(served(records, 5)[3:]) == sorted([addr(a), addr(b)])


def cli(home, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=60)


def test_serve_reloads_new_members_on_sighup_and_status_shows_each(tmp_path, tls_files):
    home = tmp_path / "home"
    with echo_scp() as a, echo_scp() as b, echo_scp() as c:
        port = free_port()
        plan = _plan(tmp_path, tls_files, [a, b], port, health_interval=0.2)
        with serve_process(plan, home) as sp:
            def services() -> dict[str, dict]:
                st = cli(home, "status", str(plan), "--json")
                assert st.returncode == 0, st.stderr
                return {i["name"]: i for i in json.loads(st.stdout)["items"] if i["kind"] == "service"}

            names = wait_for(lambda: (s := services()) and all(i["state"] == "UP" for i in s.values()) and s, 10,
                             "both servers UP in `dicomtls status`")
            assert set(names) == {f"PACS {addr(a)}", f"PACS {addr(b)}"}
            text = cli(home, "status", str(plan))
            assert f"PACS {addr(b)}" in text.stdout and f"address={addr(b)}" in text.stdout
            installed = StateFiles(tmp_path / "state").read_runtime()
            assert [m.address for m in installed.service("PACS").members] == [addr(a), addr(b)]

            _plan(tmp_path, tls_files, [c, a], port, health_interval=0.2)  # the same file, new servers
            n = len(sp.records)
            sp.proc.send_signal(signal.SIGHUP)
            sp.event("reloaded", after=n)
            assert set(services()) == {f"PACS {addr(c)}", f"PACS {addr(a)}"}
            r = echoscu(port)
            assert r.returncode == 0, r.stderr
            rec = sp.event("association", after=n, outcome="released")
            assert rec["backend"] == addr(c)  # the new first server
            wait_for(lambda: [m.address for m in StateFiles(tmp_path / "state").read_runtime().service("PACS").members]
                     == [addr(c), addr(a)], 5, "runtime.json with the new servers")


def test_a_runtime_json_from_before_members_reads_and_the_diff_shows_old_and_new(tmp_path, tls_files):
    from dicomtls.engine.backends.base import Action
    from dicomtls.engine.backends.builtin import BuiltinBackend
    from dicomtls.engine.terminator.install import prepare

    port = free_port()
    single = load_plan(write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                                  [{"name": "PACS", "host": "10.0.0.5", "port": 104}],
                                  [{"name": "store", "port": port, "service": "PACS"}]))
    state = StateFiles(tmp_path / "state")
    old = prepare(single).runtime.to_dict()
    for svc in old["services"]:
        del svc["members"]  # as written before services had members
    state.dir.mkdir(mode=0o700)
    state.runtime.write_text(json.dumps(old))
    installed = state.read_runtime()
    assert installed is not None and [m.address for m in installed.service("PACS").members] == ["10.0.0.5:104"]

    def service_change(plan):
        return next(c for c in BuiltinBackend(plan).diff(plan).changes if c.kind == "service")

    assert service_change(single).action is Action.UNCHANGED
    two = load_plan(write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                               [{"name": "PACS", "members": [{"host": "10.0.0.5"}, {"host": "10.0.0.6", "port": 4104}]}],
                               [{"name": "store", "port": port, "service": "PACS"}], name="two.toml"))
    ch = service_change(two)
    assert ch.action is Action.UPDATE
    assert ch.fields == {"members": ("10.0.0.5:104", "10.0.0.5:104, 10.0.0.6:4104")}
    assert ch.summary == "PACS PACS at 10.0.0.5:104, 10.0.0.6:4104"
