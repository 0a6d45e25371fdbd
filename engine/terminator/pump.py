"""The byte pump: one association's bytes, both ways, between the client's TLS socket and the plain
backend socket, as a state machine that the terminator's pump loop steps (pumploop.py: one epoll set
for every live association, driven from the asyncio thread).

Why non-blocking sockets stepped from epoll, not asyncio's streams or two blocking threads each:
- Throughput: asyncio's SSL transport copies each record 2-3 times in Python-managed buffers
  (docs/research/terminators.md §2.3/§3.1: ~0.6-0.7x stunnel). Here OpenSSL decrypts straight
  into our buffer. benchmarks/throughput_quick.py measures it against stunnel.
- Correctness: OpenSSL forbids using one SSL object from two threads at once (a reader thread and a
  writer thread on one SSLSocket would race on TLS 1.3 key updates, alerts and shutdown), so one
  thread, the loop's, moves both directions of a connection.
- Scale: a thread per association cost ~80 KiB and a scheduler slot each (1,000 idle associations:
  1,001 threads, 108 MB, a 56 ms p99 echo; benchmarks/RESULTS.md); the loop does not grow.

Guarantees: bytes are forwarded in order and completely; each direction has one fixed buffer
(memory does not grow with transfer size or a slow peer: a full buffer stops reading that side);
a client EOF (close_notify or TCP FIN) becomes a FIN to the PACS and the PACS's remaining replies
are still delivered; a PACS EOF becomes a close_notify after its data is flushed; a reset on either
side becomes a reset (SO_LINGER 0) on the other.

After the PACS has closed and our close_notify is out, the connection is closing (TLS 1.2, RFC 5246
§7.2.1: the peer answers with its own close_notify and discards pending writes); client bytes that
cross our close_notify on the wire may be dropped. In DICOM the PACS closes only after A-RELEASE-RP
or A-ABORT, when the client has nothing left to send.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dicomtls.engine.terminator.buffers import BUF_SIZE, NO_BUF, Buffer
from dicomtls.engine.terminator.config import KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL
from dicomtls.engine.terminator.pdu import PduTracker

if TYPE_CHECKING:
    from dicomtls.engine.terminator.pumploop import PumpLoop

TLS_WRITE_CHUNK = 128 * 1024  # plaintext per SSL_write: several 16 KiB records per call

# Passes over both directions per step while bytes keep moving. Each step costs an asyncio tick and an
# epoll_wait; on bulk data, 16 rounds spent less CPU per GB than 4 or 8 (1 GiB runs, 4 alternating
# rounds: median 1.09 vs 1.18 and 1.18 CPU s/GB, HAProxy 1.24), and a step still yields after at most
# 16 socket reads a direction (a few ms at 1 GB/s), so other associations are not held up for long.
ROUNDS = 16

_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_ERR = select.EPOLLERR | select.EPOLLHUP
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT}
_LINGER0 = struct.pack("ii", 1, 0)
_TCP_CLOSE = 7  # include/net/tcp_states.h


def _was_reset(sock: socket.socket) -> bool:
    """OpenSSL reports a reset like a FIN (SSLEOFError, errno lost); the TCP state tells them apart:
    CLOSE after a RST, CLOSE_WAIT after a FIN (Linux TCP_INFO, first byte tcpi_state)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == _TCP_CLOSE
    except (OSError, AttributeError):
        return False


def _keepalive(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
    except (OSError, AttributeError):
        pass  # not Linux, or not TCP: the idle timeout still ends the association


def abort_socket(sock: socket.socket) -> None:
    """Close with RST (no FIN, no close_notify)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Pump:
    """One association's two directions as a state machine. A PumpLoop thread (pumploop.py) owns it:
    .start() once, then .on_event() for each readiness event of its sockets and .step() to move what can
    move; whatever returns an end reason ends it, and the loop calls .finish().

    End reasons: "closed" (both sides closed in order), "client_reset", "backend_reset",
    "client_error: ..." (a TLS protocol error), "idle_timeout", or the reason given to abort().
    .closed_first says who closed first ("client"/"backend").
    """

    def __init__(self, tls: ssl.SSLSocket, backend: socket.socket, idle_timeout: float,
                 half_close_idle: float = 60.0, buf_size: int = BUF_SIZE) -> None:
        self.tls = tls
        self.backend = backend
        self.idle_timeout = idle_timeout
        self.half_close_idle = min(half_close_idle, idle_timeout)
        self.buf_size = buf_size
        self.bytes_up = 0  # client -> PACS
        self.bytes_down = 0  # PACS -> client
        self.closed_first = ""
        self.client_close = ""  # "eof" (close_notify or a bare FIN: the same under OP_IGNORE_UNEXPECTED_EOF) or "reset"
        self.end = ""
        self._abort_reason = ""
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.on_done: Callable[[str], None] | None = None  # called on the loop's thread once it ended
        self.loop: PumpLoop | None = None
        self.up_pdus = PduTracker()  # client -> PACS (the A-ASSOCIATE-RQ went before the pump started)
        self.down_pdus = PduTracker()  # PACS -> client
        # The state below is the loop's alone (its thread's).
        self.client_eof = self.backend_eof = False
        self.be_shut = self.tls_shut = False
        self.tls_rd_wait = self.tls_wr_wait = 0  # 0 = try now; else the poll event OpenSSL is waiting for
        self.be_rd_wait = self.be_wr_wait = False
        self.tls_pending = 0  # length of an SSL_write to retry with the same bytes (OpenSSL's rule)
        self.last = time.monotonic()
        self.hot = False  # still moving after step()'s rounds: step again before sleeping
        self.timer_at = 0.0  # the loop's idle timer entry for this pump
        self.tfd = self.bfd = -1
        self.up = self.down = NO_BUF
        self.want: dict[int, int] = {}
        self.registered: dict[int, int] = {}
        self.parked: set[int] = set()
        self._moved = False

    # --- control from other threads -------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Stop now (drain timeout, shutdown): the owning loop resets both sides at its next step."""
        with self._lock:
            if self.done.is_set() or self._abort_reason:
                return
            self._abort_reason = reason
        loop = self.loop
        if loop is not None:
            loop.wake(self)

    # --- on the loop's thread ---------------------------------------------------------------------
    def start(self) -> None:
        tls, be = self.tls, self.backend
        tls.setblocking(False)
        be.setblocking(False)
        for sock in (tls, be):
            _keepalive(sock)
        self.tfd, self.bfd = tls.fileno(), be.fileno()
        self.want = {self.tfd: 0, self.bfd: 0}
        self.last = time.monotonic()

    def deadline(self) -> float:
        limit = self.half_close_idle if (self.client_eof or self.backend_eof) else self.idle_timeout
        return self.last + limit

    def step(self) -> str | None:
        """Move what can move now, for a few rounds at most, so that one busy association does not hold
        up the others on its loop (.hot then asks for another step). The end reason once it is over;
        otherwise .want says what each socket now waits for.

        The buffers are held only while they hold bytes: taken from the free list here, given back when
        the step leaves them empty. An idle association (most of them, most of the time: DICOM is
        request/response) then holds none, and 1,000 of them do not keep 2,000 buffers' touched pages
        resident (~8 KiB each); a busy one takes back a warm buffer (a list pop, no system call)."""
        if self.up is NO_BUF:
            self.up = Buffer.take(self.buf_size)
        if self.down is NO_BUF:
            self.down = Buffer.take(self.buf_size)
        end = self._step()
        if end is None:
            if not len(self.up):
                self.up.release()
                self.up = NO_BUF
            if not len(self.down) and not self.tls_pending:  # an SSL_write to retry keeps its bytes
                self.down.release()
                self.down = NO_BUF
        return end

    def _step(self) -> str | None:
        for _ in range(ROUNDS):
            if self._abort_reason:
                return self._reset_both(self._abort_reason)
            self._moved = False
            end = self._read_client() or self._write_backend() or self._read_backend() or self._write_client()
            if end:
                return end
            if self._abort_reason:
                continue
            if self.client_eof and self.backend_eof and self.be_shut and self.tls_shut:
                self._close_both()
                return "closed"
            if not self._moved:
                break
            self.last = time.monotonic()
        if self._abort_reason:
            return self._reset_both(self._abort_reason)
        self.hot = self._moved
        if self.deadline() <= time.monotonic():
            return self._reset_both("idle_timeout")
        self._wants()
        if not self.hot and all(fd in self.parked for fd in self.want):
            # Nothing to wait for and nothing moved: both sides finished in a way the state machine
            # above has already handled; close in order.
            self._close_both()
            return "closed"
        return None

    def on_event(self, fd: int, ev: int) -> str | None:
        """A readiness event for one of our sockets: clears the waits it satisfies."""
        if not self.want.get(fd) and ev & _ERR:
            # EPOLLERR: a reset or a keepalive timeout. A bare EPOLLHUP is an orderly close of both
            # directions (a FIN after ours), which the reader meets as EOF in due course.
            if ev & select.EPOLLERR:
                if self._abort_reason:
                    return None
                return self._reset_both("client_reset" if fd == self.tfd else "backend_reset")
            self.parked.add(fd)  # an orderly hang-up: seen when we next read that side
            return None
        if fd == self.tfd:
            if ev & (_IN | _ERR):
                if self.tls_rd_wait == _IN:
                    self.tls_rd_wait = 0
                if self.tls_wr_wait == _IN:
                    self.tls_wr_wait = 0
            if ev & (_OUT | _ERR):
                if self.tls_rd_wait == _OUT:
                    self.tls_rd_wait = 0
                if self.tls_wr_wait == _OUT:
                    self.tls_wr_wait = 0
        else:
            if ev & (_IN | _ERR):
                self.be_rd_wait = False
            if ev & (_OUT | _ERR):
                self.be_wr_wait = False
        return None

    def sync(self, ep: select.epoll) -> None:
        """Bring the epoll registrations in line with .want. A socket with nothing to wait for stays
        registered with no events, so epoll still reports its errors: a client that resets while the PACS
        is not reading (or the reverse) must end the association now, not at the idle timeout. Only an
        orderly hang-up we cannot act on yet is parked (unregistered: epoll would report it forever)."""
        for fd, ev in self.want.items():
            if ev:
                self.parked.discard(fd)
            old = self.registered.get(fd)
            if fd in self.parked:
                if old is not None:
                    _unregister(ep, fd)
                    del self.registered[fd]
            elif old is None:
                ep.register(fd, ev)
                self.registered[fd] = ev
            elif old != ev:
                ep.modify(fd, ev)
                self.registered[fd] = ev

    def crashed(self, exc: Exception) -> str:
        """A bug met in this pump: reset both sides; the loop and the other associations go on."""
        return self._reset_both(f"error: {type(exc).__name__}: {exc}")

    def finish(self, end: str, ep: select.epoll) -> None:
        for fd in self.registered:
            _unregister(ep, fd)
        self.registered.clear()
        for buf in (self.up, self.down):
            buf.release()
        self.up = self.down = NO_BUF
        self.end = end
        self.done.set()
        if self.on_done is not None:
            self.on_done(end)

    # --- the four moves ---------------------------------------------------------------------------
    def _read_client(self) -> str | None:
        """client -> up buffer: read records until OpenSSL wants more bytes from the socket."""
        tls, up = self.tls, self.up
        while not self.client_eof and not self.tls_rd_wait and up.space():
            try:
                n = tls.recv_into(up.mv[up.end:])
            except ssl.SSLWantReadError:
                self.tls_rd_wait = _IN
            except ssl.SSLWantWriteError:
                self.tls_rd_wait = _OUT
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
                if self._abort_reason:
                    return None
                reset = isinstance(exc, ssl.SSLEOFError) and _was_reset(tls)
                if reset and not self.tls_shut:
                    return self._reset_both("client_reset")
                # After our close_notify a client RST is just its way of closing: a socket closed
                # with our close_notify still unread sends RST instead of FIN.
                self.client_eof = True
                self.closed_first = self.closed_first or "client"
                self.client_close = "reset" if reset else "eof"
            except ssl.SSLError as exc:
                if self._abort_reason:
                    return None
                return self._reset_both(f"client_error: {exc.reason or exc}")
            except OSError as exc:
                if self._abort_reason:
                    return None
                if exc.errno in _RESET_ERRNOS:
                    if self.tls_shut:
                        self.client_eof, self.client_close = True, "reset"
                        return None
                    return self._reset_both("client_reset")
                raise
            else:
                if n == 0:
                    self.client_eof = True
                    self.closed_first = self.closed_first or "client"
                    self.client_close = "eof"
                else:
                    self.up_pdus.feed(up.mv[up.end:up.end + n])
                    up.end += n
                    self.bytes_up += n
                    self._moved = True
        return None

    def _write_backend(self) -> str | None:
        """up buffer -> backend; the client's EOF becomes a FIN once all it sent is out."""
        be, up = self.backend, self.up
        while len(up) and not self.be_wr_wait:
            try:
                n = be.send(up.mv[up.start:up.end])
            except BlockingIOError:
                self.be_wr_wait = True
            except OSError as exc:
                if self._abort_reason:
                    return None
                if exc.errno in _RESET_ERRNOS:
                    return self._reset_both("backend_reset")
                raise
            else:
                up.consumed(n)
                self._moved = True
        if up.start and up.space() < self.buf_size // 4:
            up.compact()
        if self.client_eof and not len(up) and not self.be_shut:
            self.be_shut = True
            try:
                be.shutdown(socket.SHUT_WR)  # the PACS sees the client's close; it may still answer
            except OSError:
                pass
        return None

    def _read_backend(self) -> str | None:
        """backend -> down buffer."""
        be, down = self.backend, self.down
        while not self.backend_eof and not self.be_rd_wait and down.space():
            try:
                n = be.recv_into(down.mv[down.end:])
            except BlockingIOError:
                self.be_rd_wait = True
            except OSError as exc:
                if self._abort_reason:
                    return None
                if exc.errno in _RESET_ERRNOS:
                    return self._reset_both("backend_reset")
                raise
            else:
                if n == 0:
                    self.backend_eof = True
                    self.closed_first = self.closed_first or "backend"
                else:
                    self.down_pdus.feed(down.mv[down.end:down.end + n])
                    down.end += n
                    self.bytes_down += n
                    self._moved = True
        return None

    def _write_client(self) -> str | None:
        """down buffer -> client; the PACS's EOF becomes a close_notify once all it sent is delivered."""
        tls, down = self.tls, self.down
        while len(down) and not self.tls_wr_wait:
            length = self.tls_pending or min(len(down), TLS_WRITE_CHUNK)
            try:
                n = tls.send(down.mv[down.start:down.start + length])
            except ssl.SSLWantWriteError:
                self.tls_wr_wait, self.tls_pending = _OUT, length
            except ssl.SSLWantReadError:
                self.tls_wr_wait, self.tls_pending = _IN, length
            except (ssl.SSLError, OSError) as exc:
                if self._abort_reason:
                    return None
                # The client is gone; what the PACS still had for it cannot be delivered.
                if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
                    return self._reset_both(f"client_error: {exc.reason or exc}")
                return self._reset_both("client_reset")
            else:
                self.tls_pending = 0
                down.consumed(n)
                self._moved = True
        if not self.tls_pending and down.start and down.space() < self.buf_size // 4:
            down.compact()
        # The PACS closed and all it sent is delivered: close_notify. Only right after a read found
        # nothing more from the client, because CPython's unwrap() calls SSL_shutdown twice and the
        # second call reads, and discards, client records already waiting in the socket.
        if (self.backend_eof and not len(down) and not self.tls_shut
                and (self.client_eof or self.tls_rd_wait == _IN)):
            self.tls_shut = True
            self._send_close_notify()
        return None

    def _wants(self) -> None:
        """What each socket waits for now."""
        t = b = 0
        if not self.client_eof and self.up.space() and self.tls_rd_wait:
            t |= self.tls_rd_wait
        if len(self.down) and self.tls_wr_wait:
            t |= self.tls_wr_wait
        if not self.backend_eof and self.down.space() and self.be_rd_wait:
            b |= _IN
        if len(self.up) and self.be_wr_wait:
            b |= _OUT
        self.want[self.tfd], self.want[self.bfd] = t, b

    def _reset_both(self, end: str) -> str:
        abort_socket(self.backend)
        abort_socket(self.tls)
        return end

    def _send_close_notify(self) -> None:
        try:
            self.tls.unwrap()  # non-blocking: sends close_notify, then wants the peer's (WantRead)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (ssl.SSLError, OSError, ValueError):
            pass
        # No TCP FIN yet: with our side still open, a later FIN from the client leaves the socket in
        # CLOSE_WAIT and only a RST in CLOSE, which is how _was_reset tells them apart.

    def _close_both(self) -> None:
        for s in (self.tls, self.backend):
            try:
                s.close()
            except OSError:
                pass


def _unregister(ep: select.epoll, fd: int) -> None:
    try:
        ep.unregister(fd)
    except (OSError, ValueError):
        pass  # already closed, which removed it from the epoll set
