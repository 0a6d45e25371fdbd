"""The byte pump between a real TLS connection and a real TCP "PACS" socket on loopback: order and
completeness in both directions at once, half-close both ways (the PACS's last words still reach a
client that closed first), resets propagated, idle timeout, abort, and bounded buffering."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

import pytest

from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.terminator.buffers import BUF_SIZE
from dicomtls.engine.terminator.config import KEEPALIVE_IDLE
from dicomtls.engine.terminator.pump import Pump
from dicomtls.engine.terminator.pumploop import PumpLoop
from dicomtls.engine.terminator.tlsserver import FFDHE2048_PEM, server_context
from dicomtls.engine.tlsctx import client_context
from tests.terminator.helpers import LOOPBACK, recv_exact, wait_for

BLOCK = os.urandom(1 << 20)


@pytest.fixture(scope="module")
def server_ctx(tls_files, tmp_path_factory):
    dh = tmp_path_factory.mktemp("dh") / "dh.pem"
    dh.write_bytes(FFDHE2048_PEM)
    return server_context(POLICIES["bcp195-nd"], tls_files.server_cert, tls_files.server_key, dh_file=dh)


@dataclass
class Rig:
    client: ssl.SSLSocket  # Butterfly's side
    pacs: socket.socket  # the PACS's side of the backend connection
    pump: Pump

    def wait_end(self, timeout: float = 20.0) -> str:
        assert self.pump.done.wait(timeout), "pump did not finish"
        return self.pump.end


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as ls:
        ls.bind((LOOPBACK, 0))
        ls.listen(1)
        a = socket.create_connection(ls.getsockname())
        b, _ = ls.accept()
    return a, b


@pytest.fixture(scope="module")
def pumps():
    """A pump loop driven by an asyncio loop in a thread of its own, as the terminator drives its own."""
    import asyncio

    aloop = asyncio.new_event_loop()
    loop = PumpLoop()
    attached = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(aloop)
        loop.attach(aloop)
        attached.set()
        aloop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert attached.wait(10)
    yield loop
    aloop.call_soon_threadsafe(aloop.stop)
    t.join(10)
    loop.close()
    aloop.close()


@pytest.fixture
def rig(server_ctx, pumps):
    made: list[Rig] = []

    def make(idle: float = 30.0, half_close_idle: float = 60.0) -> Rig:
        c_raw, s_raw = _pair()
        server_tls = server_ctx.wrap_socket(s_raw, server_side=True, do_handshake_on_connect=False,
                                            suppress_ragged_eofs=False)
        t = threading.Thread(target=server_tls.do_handshake)
        t.start()
        client = client_context("bcp195-nd", insecure=True).wrap_socket(c_raw)
        t.join(10)
        be_pump, pacs = _pair()
        pump = Pump(server_tls, be_pump, idle, half_close_idle)
        pumps.add(pump)  # from another thread: the loop's eventfd wakes it
        r = Rig(client, pacs, pump)
        made.append(r)
        return r

    yield make
    for r in made:
        r.pump.abort("test over")
        for s in (r.client, r.pacs):
            s.close()


def _send(sock: socket.socket, total: int, digest: list) -> None:
    h, sent = hashlib.sha256(), 0
    while sent < total:
        chunk = BLOCK[: min(len(BLOCK), total - sent)]
        sock.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
    digest.append(h.hexdigest())


def _recv(sock: socket.socket, digest: list, count: list, close_at_eof: bool = False) -> None:
    h, n = hashlib.sha256(), 0
    while True:
        try:
            b = sock.recv(1 << 18)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            b = b""
        if not b:
            break
        h.update(b)
        n += len(b)
    digest.append(h.hexdigest())
    count.append(n)
    if close_at_eof:  # a PACS closes once the client has gone
        sock.close()


def test_full_duplex_bulk_is_complete_and_in_order(rig):
    """Both directions at once (48 MiB up, 40 MiB down); the PACS closes when it has everything, as a
    PACS does after A-RELEASE-RP, and the client then gets all of the PACS's bytes and close_notify."""
    r = rig()
    up_total, down_total = 48 << 20, 40 << 20
    up_sent, up_got, down_sent, down_got, n_down = [], [], [], [], []
    pacs_reader = threading.Thread(target=lambda: up_got.append(_recv_n(r.pacs, up_total)))
    threads = [threading.Thread(target=_send, args=(r.client, up_total, up_sent)), pacs_reader,
               threading.Thread(target=_send, args=(r.pacs, down_total, down_sent)),
               threading.Thread(target=_recv, args=(r.client, down_got, n_down))]
    # The test client reads and writes one SSLSocket from two threads (the pump never does that).
    for t in threads:
        t.start()
    for t in threads[:3]:
        t.join(60)
    r.pacs.shutdown(socket.SHUT_WR)
    threads[3].join(60)
    assert up_got == up_sent
    assert n_down == [down_total] and down_got == down_sent
    socket.socket.shutdown(r.client, socket.SHUT_WR)  # the client closes after the PACS's close_notify
    r.pacs.settimeout(10)
    assert r.pacs.recv(1) == b""
    assert r.wait_end() == "closed"
    assert (r.pump.bytes_up, r.pump.bytes_down) == (up_total, down_total)
    assert r.pump.closed_first == "backend"


def _recv_n(sock: socket.socket, n: int) -> str:
    h, got, buf = hashlib.sha256(), 0, bytearray(1 << 18)
    while got < n:
        k = sock.recv_into(buf, min(len(buf), n - got))
        assert k, f"EOF after {got} of {n} bytes"
        h.update(memoryview(buf)[:k])
        got += k
    return h.hexdigest()


def test_client_closes_first_and_still_gets_the_pacs_reply(rig):
    """Client: A-RELEASE-RQ-like bytes, then close_notify at once. The PACS sees EOF only after the
    bytes, and its late 1 MiB answer still reaches the client."""
    r = rig()
    r.client.sendall(b"last words")
    r.client.setblocking(False)
    with pytest.raises(ssl.SSLWantReadError):
        r.client.unwrap()  # sends close_notify; the read side stays open
    r.client.setblocking(True)
    assert recv_exact(r.pacs, 10) == b"last words"
    r.pacs.settimeout(10)
    assert r.pacs.recv(1) == b""  # the client's close arrived as a FIN
    reply = os.urandom(1 << 20)
    r.pacs.sendall(reply)
    r.pacs.close()
    got = bytearray()
    while True:
        try:
            b = r.client.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not b:
            break
        got += b
    assert bytes(got) == reply
    assert r.wait_end() == "closed"
    assert r.pump.closed_first == "client" and r.pump.client_close == "eof"


def test_client_fin_without_close_notify_is_forwarded_and_the_reply_still_arrives(rig):
    r = rig()
    r.client.sendall(b"x" * 1000)
    socket.socket.shutdown(r.client, socket.SHUT_WR)  # TCP FIN under TLS: a "ragged" EOF
    assert recv_exact(r.pacs, 1000) == b"x" * 1000
    assert r.pacs.recv(1) == b""
    r.pacs.sendall(b"the answer")  # OpenSSL must not have killed the session with an alert
    r.pacs.close()
    assert recv_exact(r.client, 10) == b"the answer"
    assert r.wait_end() == "closed"
    assert r.pump.client_close == "eof"


def _linger0_close(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_client_reset_resets_the_pacs(rig):
    r = rig()
    r.client.sendall(b"hello")
    assert recv_exact(r.pacs, 5) == b"hello"
    _linger0_close(r.client)
    with pytest.raises(ConnectionResetError):
        while r.pacs.recv(100):
            pass
    assert r.wait_end() == "client_reset"


def test_pacs_reset_resets_the_client(rig):
    r = rig()
    r.pacs.sendall(b"hi")
    assert r.client.recv(2) == b"hi"
    _linger0_close(r.pacs)
    r.client.settimeout(10)
    # Python reports a RST under TLS as an EOF without close_notify; the TCP state says it was a RST.
    with contextlib.suppress(ssl.SSLEOFError, ConnectionResetError):
        while r.client.recv(100):
            pass
    assert _tcp_state(r.client) == TCP_CLOSE
    assert r.wait_end() == "backend_reset"


TCP_CLOSE = 7  # after a RST; a FIN leaves CLOSE_WAIT (8)


def _tcp_state(s: socket.socket) -> int:
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def test_idle_timeout_ends_a_silent_association(rig):
    r = rig(idle=0.5)
    r.client.sendall(b"ping")
    assert recv_exact(r.pacs, 4) == b"ping"
    t = time.monotonic()
    assert r.wait_end(5) == "idle_timeout"
    assert 0.4 < time.monotonic() - t < 2.5


def test_abort_from_another_thread_stops_at_once(rig):
    r = rig()
    r.client.sendall(b"data")
    assert recv_exact(r.pacs, 4) == b"data"
    t = time.monotonic()
    r.pump.abort("drain_timeout")
    assert r.wait_end(5) == "drain_timeout"
    assert time.monotonic() - t < 2


def test_a_pacs_that_stops_reading_stops_the_pump_reading(rig):
    """Backpressure: with the PACS not reading, the pump holds at most its buffer plus the kernel's
    socket buffers; nothing grows with the transfer size. Once the PACS reads, all arrives intact."""
    r = rig()
    total = 96 << 20
    sent, got, count = [], [], []
    sender = threading.Thread(target=_send, args=(r.client, total, sent))
    sender.start()
    wait_for(lambda: r.pump.bytes_up > 0, 10, "first bytes")
    # Stalled = no progress over 0.3 s while the client still has data to send.
    stalled_at = wait_for(lambda: _stalled(r.pump), 20, "the pump to stall on a PACS that does not read")
    kernel = (r.pacs.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
              + r.pump.backend.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    assert stalled_at <= BUF_SIZE + kernel + (1 << 20), (stalled_at, kernel)
    assert stalled_at < total // 2
    reader = threading.Thread(target=_recv, args=(r.pacs, got, count, True))
    reader.start()
    sender.join(60)
    r.client.unwrap()
    reader.join(60)
    assert count == [total] and got == sent


def _stalled(pump: Pump) -> int:
    a = pump.bytes_up
    time.sleep(0.3)  # the observation window of a stall, not a readiness wait
    return a if pump.bytes_up == a else 0


def test_many_small_round_trips_are_not_delayed(rig):
    """DICOM is request/response: 200 one-PDU round trips must not each wait for a delayed ACK."""
    r = rig()
    r.pacs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.monotonic()
    for i in range(200):
        msg = struct.pack(">I", i)
        r.client.sendall(msg)
        assert recv_exact(r.pacs, 4) == msg
        r.pacs.sendall(msg)
        assert recv_exact(r.client, 4) == msg
    assert time.monotonic() - t < 4.0


class _Pusher(threading.Thread):
    """Sends until told to stop, never left blocked in a send: closing a socket that another thread
    is blocked sending on does not really close it (the kernel keeps it for that send), so no RST."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock, self.stop = sock, threading.Event()
        sock.settimeout(0.1)

    def run(self) -> None:
        view = memoryview(BLOCK)
        while not self.stop.is_set():
            try:
                self.sock.sendall(view[:65536])
            except (TimeoutError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return

    def halt(self) -> None:
        self.stop.set()
        self.join(10)


def _stalled_down(pump: Pump) -> int:
    a = pump.bytes_down
    time.sleep(0.3)  # the observation window of a stall, not a readiness wait
    return a if pump.bytes_down == a else 0


def test_a_client_reset_is_seen_while_the_pacs_is_not_reading(rig):
    """Found by the reliability tests: with the client->PACS buffer full the pump stopped watching
    the client, so a vanished client held its PACS connection until the idle timeout."""
    r = rig(idle=600)
    pusher = _Pusher(r.client)
    pusher.start()
    wait_for(lambda: r.pump.bytes_up > 0, 10, "first bytes")
    wait_for(lambda: _stalled(r.pump), 20, "the pump to be held back by a PACS that does not read")
    pusher.halt()
    t = time.monotonic()
    _linger0_close(r.client)
    assert r.wait_end(10) == "client_reset"
    assert time.monotonic() - t < 2
    r.pacs.settimeout(10)
    with pytest.raises(ConnectionResetError):
        while r.pacs.recv(1 << 20):
            pass


def test_a_pacs_reset_is_seen_while_the_client_is_not_reading(rig):
    r = rig(idle=600)
    pusher = _Pusher(r.pacs)
    pusher.start()
    wait_for(lambda: r.pump.bytes_down > 0, 10, "first bytes")
    wait_for(lambda: _stalled_down(r.pump), 20, "the pump to be held back by a client that does not read")
    pusher.halt()
    t = time.monotonic()
    _linger0_close(r.pacs)
    assert r.wait_end(10) == "backend_reset"
    assert time.monotonic() - t < 2


def test_both_sockets_get_tcp_keepalive(rig):
    r = rig()
    r.client.sendall(b"x")
    assert recv_exact(r.pacs, 1) == b"x"
    for s in (r.pump.tls, r.pump.backend):
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE


def test_an_idle_association_holds_no_buffer(rig):
    """1,000 idle associations must not keep 2,000 buffers' touched pages resident (issue 15's 60 MB):
    a pump takes its buffers while bytes move and gives them back once both are empty."""
    from dicomtls.engine.terminator.buffers import NO_BUF

    rigs = [rig() for _ in range(8)]
    for i, r in enumerate(rigs):
        msg = struct.pack(">I", i) * 1000
        r.client.sendall(msg)
        assert recv_exact(r.pacs, len(msg)) == msg
        r.pacs.sendall(msg)
        assert recv_exact(r.client, len(msg)) == msg
    wait_for(lambda: all(r.pump.up is NO_BUF and r.pump.down is NO_BUF for r in rigs), 5, "the buffers given back")
    r = rigs[0]  # and an association that was idle moves bytes again at once
    r.client.sendall(b"again")
    assert recv_exact(r.pacs, 5) == b"again"
