"""Hostile input against `dicomtls serve` (a real subprocess, bcp195-nd, handshake timeout 3 s) in front
of a raw-PDU echo SCP. For every attack: each offending connection is refused with its own JSON log
line naming why, the PACS is never dialled, and an echo prober (a whole TLS association with C-ECHO
every 0.1 s) keeps succeeding within 1 s throughout."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
import warnings

import pytest

from benchmarks import dul
from benchmarks.dicom_sink import SinkHandle
from tests.reliability import tlsraw
from tests.reliability.support import EchoProber, echo_once, raise_nofile, start_rig, tls_connect, tls_context, wait_for
from tests.support.peers import LOOPBACK

pytestmark = pytest.mark.interop
HANDSHAKE_TIMEOUT = 3
SLOWLORIS = 1000


@pytest.fixture(scope="module")
def rig(tmp_path_factory, tls_files):
    raise_nofile(4 * SLOWLORIS)  # the terminator (a child) inherits it: 1,000 clients are 1,000 descriptors
    sink = SinkHandle()
    r = start_rig(tmp_path_factory.mktemp("hostile"), tls_files, sink.port,
                  builtin={"handshake_timeout": HANDSHAKE_TIMEOUT})
    r.extra["sink"] = sink
    try:
        echo_once(r.port, 5.0)  # warm: the first association pays for imports
        yield r
    finally:
        assert r.serve.alive(), "the terminator died during the hostile-input tests"
        r.serve.stop()
        sink.stop()


def _records_with(rig, mark: int, end: str, n: int, timeout: float = 15.0) -> list[dict]:
    def enough():
        hits = [r for r in rig.serve.find("association", mark) if r.get("end") == end]
        return hits if len(hits) >= n else None

    return wait_for(enough, timeout, f"{n} association records with end={end}")


def _never_dialled(records: list[dict]) -> None:
    dialled = [r for r in records if "backend_connect_ms" in r]
    assert not dialled, f"the PACS was dialled for refused connections: {dialled[:2]}"


def test_slowloris_1000_silent_tcp_connections_are_timed_out_and_logged(rig):
    """1,000 TCP connections that never send a byte are held open; echoes keep working within 1 s,
    and each silent connection ends as handshake_timeout with a log line."""
    mark = len(rig.serve.records)
    socks: list[socket.socket] = []
    try:
        with EchoProber(rig.port) as prober:
            for _ in range(SLOWLORIS):
                socks.append(socket.create_connection((LOOPBACK, rig.port), timeout=5))
            hits = _records_with(rig, mark, "handshake_timeout", SLOWLORIS, timeout=40)
        prober.check("1,000 silent connections")
    finally:
        for s in socks:
            s.close()
    assert len(hits) == SLOWLORIS
    _never_dialled(hits)
    assert all("no TLS ClientHello" in r.get("detail", "") for r in hits), hits[0]
    assert rig.serve.alive()


def test_handshake_flood_each_handshake_only_connection_is_logged(rig):
    """8 threads doing full TLS handshakes and hanging up (no DICOM) for 3 s: each gets a log line
    (closed_before_associate), the PACS is never dialled for them, echoes stay under 1 s."""
    mark = len(rig.serve.records)
    done = [0] * 8
    stop = time.monotonic() + 3.0

    def flood(i: int) -> None:
        while time.monotonic() < stop:
            with tls_connect(rig.port, 5.0):
                pass
            done[i] += 1

    with EchoProber(rig.port) as prober:
        threads = [threading.Thread(target=flood, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    prober.check("a handshake flood")
    total = sum(done)
    assert total >= 50, f"only {total} handshakes in 3 s"
    hits = _records_with(rig, mark, "closed_before_associate", total)
    _never_dialled(hits)


def test_random_bytes_plain_tls_looking_and_after_the_handshake(rig):
    """20 connections each of: random bytes (not TLS), a whole TLS handshake record of random bytes,
    and random bytes as the first 'PDU' after a good handshake (answered with A-ABORT)."""
    mark = len(rig.serve.records)
    aborts = []
    with EchoProber(rig.port) as prober:
        for _ in range(20):
            with socket.create_connection((LOOPBACK, rig.port), timeout=5) as s:
                s.sendall(b"\x47" + os.urandom(65535))
                tlsraw.server_answer(s)
            with socket.create_connection((LOOPBACK, rig.port), timeout=5) as s:
                s.sendall(b"\x16\x03\x01" + struct.pack(">H", 4000) + os.urandom(4000))  # a whole record of junk
                assert tlsraw.describe(tlsraw.server_answer(s)) != "server_hello"
            with tls_connect(rig.port, 5.0) as s:
                s.sendall(b"\xab" + os.urandom(8191))
                try:
                    aborts.append(dul.read_pdu(s)[:1])
                except (ConnectionError, ssl.SSLError, OSError):
                    aborts.append(b"")
    prober.check("random bytes")
    not_tls = _records_with(rig, mark, "not_tls", 20)
    bad_tls = _records_with(rig, mark, "tls_handshake_failed", 20)
    not_dicom = _records_with(rig, mark, "not_dicom", 20)
    _never_dialled(not_tls + bad_tls + not_dicom)
    assert aborts == [bytes([dul.ABORT])] * 20, aborts


def test_truncated_tls_records_during_and_after_the_handshake(rig):
    """Half a ClientHello then FIN, half a ClientHello then silence, half an application-data record
    (the A-ASSOCIATE-RQ) then FIN, and then silence: each ends with a log line, the PACS never dialled."""
    mark = len(rig.serve.records)
    hello = tlsraw.client_hello()
    with EchoProber(rig.port) as prober:
        # during the handshake
        with socket.create_connection((LOOPBACK, rig.port), timeout=5) as s:
            s.sendall(hello[:len(hello) // 2])
            s.shutdown(socket.SHUT_WR)
            assert tlsraw.describe(tlsraw.server_answer(s)) != "server_hello"
        stalled = socket.create_connection((LOOPBACK, rig.port), timeout=5)
        stalled.sendall(hello[:len(hello) // 2])
        # after the handshake: a record cut in half
        c = tlsraw.BioClient(rig.port, tls_context())
        rec = c.record(dul.associate_rq())
        c.sock.sendall(rec[:len(rec) // 2])
        c.sock.shutdown(socket.SHUT_WR)
        tlsraw.server_answer(c.sock)
        c.sock.close()
        c2 = tlsraw.BioClient(rig.port, tls_context())
        rec = c2.record(dul.associate_rq())
        c2.sock.sendall(rec[:len(rec) // 2])
        t0 = time.monotonic()
        answer = tlsraw.server_answer(c2.sock, timeout=HANDSHAKE_TIMEOUT + 5)
        waited = time.monotonic() - t0
        c2.sock.close()
        tlsraw.server_answer(stalled, timeout=HANDSHAKE_TIMEOUT + 5)
        stalled.close()
    prober.check("truncated TLS records")
    assert HANDSHAKE_TIMEOUT - 0.5 < waited < HANDSHAKE_TIMEOUT + 3, f"the stalled record was cut after {waited:.1f} s"
    assert dul.ASSOCIATE_AC not in answer[:1]
    refused = []
    for end in ("tls_handshake_failed",  # half a ClientHello, then FIN
                "handshake_timeout",  # half a ClientHello, then silence
                "closed_before_associate",  # half a record after the handshake, then FIN
                "first_pdu_timeout"):  # half a record after the handshake, then silence
        refused += _records_with(rig, mark, end, 1)
    _never_dialled(refused)


OFFERS = {
    "SSL 3.0": lambda: tlsraw.client_hello(0x0300, record_version=0x0300),
    "TLS 1.0": lambda: tlsraw.client_hello(0x0301),
    "TLS 1.1": lambda: tlsraw.client_hello(0x0302),
    "TLS 1.2 export suites only": lambda: tlsraw.client_hello(0x0303, tlsraw.EXPORT_SUITES),
    "TLS 1.2 NULL suites only": lambda: tlsraw.client_hello(0x0303, tlsraw.NULL_SUITES),
    "TLS 1.2 CBC-SHA1 suites only": lambda: tlsraw.client_hello(0x0303, tlsraw.CBC_SHA1_SUITES),
}


@pytest.mark.parametrize("name", list(OFFERS))
def test_old_protocols_and_weak_suites_are_refused(rig, name):
    """Hand-built ClientHellos (OpenSSL 3 refuses to send most of these): no ServerHello, an alert
    or a close, a tls_handshake_failed log line; a normal echo still works within 1 s."""
    mark = len(rig.serve.records)
    with EchoProber(rig.port) as prober:
        for _ in range(3):
            with socket.create_connection((LOOPBACK, rig.port), timeout=5) as s:
                s.sendall(OFFERS[name]())
                answer = tlsraw.describe(tlsraw.server_answer(s))
            assert answer.startswith("alert:") or answer == "nothing", f"{name}: server answered {answer}"
    prober.check(name, min_echoes=1)
    hits = _records_with(rig, mark, "tls_handshake_failed", 3)
    _never_dialled(hits)


def test_a_real_tls_1_1_client_is_refused(rig):
    """Python's own TLS 1.1 client (security level 0, as an old modality might): handshake fails,
    one log line saying why."""
    mark = len(rig.serve.records)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((LOOPBACK, rig.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw)
    rec = _records_with(rig, mark, "tls_handshake_failed", 1)[0]
    assert "VERSION" in rec["detail"].upper() or "PROTOCOL" in rec["detail"].upper(), rec


def test_associate_rq_announcing_4_gb_gets_an_abort_and_never_reaches_the_pacs(rig):
    """An A-ASSOCIATE-RQ header claiming 0xFFFFFFFF bytes: A-ABORT back at once, connection closed,
    pdu_too_large logged, and the PACS never sees an association for it."""
    sink: SinkHandle = rig.extra["sink"]
    before = sink.stats.associations
    mark = len(rig.serve.records)
    with tls_connect(rig.port, 5.0) as s:
        t0 = time.monotonic()
        s.sendall(struct.pack(">BBI", 1, 0, 0xFFFFFFFF) + os.urandom(1000))
        reply = dul.read_pdu(s)
        took = time.monotonic() - t0
    assert reply[0] == dul.ABORT, reply.hex()
    assert took < 1.0
    rec = _records_with(rig, mark, "pdu_too_large", 1)[0]
    assert "4294967295" in rec["detail"]
    _never_dialled([rec])
    assert sink.stats.associations == before
    assert echo_once(rig.port) < 1.0
