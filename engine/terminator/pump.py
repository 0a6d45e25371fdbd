"""The byte pump: one thread per association moves bytes both ways between the client's TLS socket
and the plain backend socket.

Why a thread with non-blocking sockets and poll(), not asyncio or two blocking threads:
- Throughput: asyncio's SSL transport copies each record 2-3 times in Python-managed buffers
  (docs/research/terminators.md §2.3/§3.1: ~0.6-0.7x stunnel). Here OpenSSL decrypts straight
  into our buffer and the GIL is released during every SSL_read/SSL_write/send/recv, so several
  associations use both cores. benchmarks/throughput_quick.py measures it against stunnel.
- Correctness: OpenSSL forbids using one SSL object from two threads at once (a reader thread and a
  writer thread on one SSLSocket would race on TLS 1.3 key updates, alerts and shutdown), so one
  thread owns both directions of a connection.

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
import mmap
import select
import socket
import ssl
import struct
import threading
import time

from dicomtls.engine.terminator.config import KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL
from dicomtls.engine.terminator.pdu import PduTracker

BUF_SIZE = 256 * 1024
TLS_WRITE_CHUNK = 128 * 1024  # plaintext per SSL_write: several 16 KiB records per call

_IN, _OUT = select.POLLIN, select.POLLOUT
_ERR = select.POLLERR | select.POLLHUP | select.POLLNVAL
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT}
_LINGER0 = struct.pack("ii", 1, 0)
_TCP_CLOSE = 7  # include/net/tcp_states.h


class _Buf:
    """A fixed buffer: data lives in [start, end); reads append at end.

    An anonymous mmap, not a bytearray: CPython zero-fills a bytearray, so all of it is resident from
    the start (two 256 KiB buffers x 1,000 idle associations = 600 MB); the kernel commits an mmap's
    pages only when touched, so an echoing association costs a few KiB and a bulk one the full size
    (benchmarks/repro/pump_buffers_resident.py).
    """

    __slots__ = ("buf", "mv", "start", "end")

    def __init__(self, size: int) -> None:
        self.buf = mmap.mmap(-1, size)
        self.mv = memoryview(self.buf)
        self.start = self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def space(self) -> int:
        return len(self.buf) - self.end

    def consumed(self, n: int) -> None:
        self.start += n
        if self.start == self.end:
            self.start = self.end = 0

    def compact(self) -> None:
        if self.start:
            n = self.end - self.start
            self.buf.move(0, self.start, n)
            self.start, self.end = 0, n


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
    """Run with .run() in its own thread; returns how the association ended.

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
        self.up_pdus = PduTracker()  # client -> PACS (the A-ASSOCIATE-RQ went before the pump started)
        self.down_pdus = PduTracker()  # PACS -> client

    # --- control from other threads -------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Stop now (drain timeout, shutdown): wakes the pump by shutting both sockets down."""
        with self._lock:
            if self.done.is_set() or self._abort_reason:
                return
            self._abort_reason = reason
        for s in (self.tls, self.backend):
            try:
                # socket.socket.shutdown, not SSLSocket.shutdown (which would drop the SSL object under
                # the pump thread's feet): a plain syscall that wakes its poll().
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> str:
        try:
            self.end = self._loop()
        except Exception as exc:  # never let a pump thread die silently
            self.end = f"error: {type(exc).__name__}: {exc}"
            abort_socket(self.backend)
            abort_socket(self.tls)
        finally:
            self.done.set()
        return self.end

    def _loop(self) -> str:  # noqa: C901 - see the docstring
        """Both directions as one state machine in one frame (233 lines, complexity over ruff's 15): it runs
        once per wakeup on the hot path, and OpenSSL's want-read/want-write rules tie the two directions
        together (an SSL_write may need a read first). A split per direction (a method per direction over
        a __slots__ state object) was measured with benchmarks/throughput_quick.py, 5 alternating pairs on
        2 cores: median 748 vs 786 MB/s, 1.15 vs 1.04 terminator CPU s per GB for the split: no gain and a
        likely 5-10 % loss within a wide spread, so it stays one piece."""
        tls, be = self.tls, self.backend
        tls.setblocking(False)
        be.setblocking(False)
        for sock in (tls, be):
            _keepalive(sock)
        tfd, bfd = tls.fileno(), be.fileno()
        up, down = _Buf(self.buf_size), _Buf(self.buf_size)
        poller = select.poll()
        registered: dict[int, int] = {}
        parked: set[int] = set()

        client_eof = backend_eof = False
        be_shut = tls_shut = False
        tls_rd_wait = tls_wr_wait = 0  # 0 = try now; else the poll event OpenSSL is waiting for
        be_rd_wait = be_wr_wait = False
        tls_pending = 0  # length of an SSL_write to retry with the same bytes (OpenSSL's rule)
        last = time.monotonic()

        while True:
            if self._abort_reason:
                abort_socket(be)
                abort_socket(tls)
                return self._abort_reason
            moved = False

            # client -> up buffer: read records until OpenSSL wants more bytes from the socket
            while not client_eof and not tls_rd_wait and up.space():
                try:
                    n = tls.recv_into(up.mv[up.end:])
                except ssl.SSLWantReadError:
                    tls_rd_wait = _IN
                except ssl.SSLWantWriteError:
                    tls_rd_wait = _OUT
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
                    if self._abort_reason:
                        break
                    reset = isinstance(exc, ssl.SSLEOFError) and _was_reset(tls)
                    if reset and not tls_shut:
                        abort_socket(be)
                        abort_socket(tls)
                        return "client_reset"
                    # After our close_notify a client RST is just its way of closing: a socket closed
                    # with our close_notify still unread sends RST instead of FIN.
                    client_eof = True
                    self.closed_first = self.closed_first or "client"
                    self.client_close = "reset" if reset else "eof"
                except ssl.SSLError as exc:
                    if self._abort_reason:
                        break
                    abort_socket(be)
                    abort_socket(tls)
                    return f"client_error: {exc.reason or exc}"
                except OSError as exc:
                    if self._abort_reason:
                        break
                    if exc.errno in _RESET_ERRNOS:
                        if tls_shut:
                            client_eof, self.client_close = True, "reset"
                            break
                        abort_socket(be)
                        abort_socket(tls)
                        return "client_reset"
                    raise
                else:
                    if n == 0:
                        client_eof = True
                        self.closed_first = self.closed_first or "client"
                        self.client_close = "eof"
                    else:
                        self.up_pdus.feed(up.mv[up.end:up.end + n])
                        up.end += n
                        self.bytes_up += n
                        moved = True

            # up buffer -> backend
            while len(up) and not be_wr_wait:
                try:
                    n = be.send(up.mv[up.start:up.end])
                except BlockingIOError:
                    be_wr_wait = True
                except OSError as exc:
                    if self._abort_reason:
                        break
                    if exc.errno in _RESET_ERRNOS:
                        abort_socket(tls)
                        abort_socket(be)
                        return "backend_reset"
                    raise
                else:
                    up.consumed(n)
                    moved = True
            if up.start and up.space() < self.buf_size // 4:
                up.compact()
            if client_eof and not len(up) and not be_shut:
                be_shut = True
                try:
                    be.shutdown(socket.SHUT_WR)  # the PACS sees the client's close; it may still answer
                except OSError:
                    pass

            # backend -> down buffer
            while not backend_eof and not be_rd_wait and down.space():
                try:
                    n = be.recv_into(down.mv[down.end:])
                except BlockingIOError:
                    be_rd_wait = True
                except OSError as exc:
                    if self._abort_reason:
                        break
                    if exc.errno in _RESET_ERRNOS:
                        abort_socket(tls)
                        abort_socket(be)
                        return "backend_reset"
                    raise
                else:
                    if n == 0:
                        backend_eof = True
                        self.closed_first = self.closed_first or "backend"
                    else:
                        self.down_pdus.feed(down.mv[down.end:down.end + n])
                        down.end += n
                        self.bytes_down += n
                        moved = True

            # down buffer -> client
            while len(down) and not tls_wr_wait:
                length = tls_pending or min(len(down), TLS_WRITE_CHUNK)
                try:
                    n = tls.send(down.mv[down.start:down.start + length])
                except ssl.SSLWantWriteError:
                    tls_wr_wait, tls_pending = _OUT, length
                except ssl.SSLWantReadError:
                    tls_wr_wait, tls_pending = _IN, length
                except (ssl.SSLError, OSError) as exc:
                    if self._abort_reason:
                        break
                    # The client is gone; what the PACS still had for it cannot be delivered.
                    abort_socket(be)
                    abort_socket(tls)
                    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
                        return f"client_error: {exc.reason or exc}"
                    return "client_reset"
                else:
                    tls_pending = 0
                    down.consumed(n)
                    moved = True
            if not tls_pending and down.start and down.space() < self.buf_size // 4:
                down.compact()
            # The PACS closed and all it sent is delivered: close_notify. Only right after a read found
            # nothing more from the client, because CPython's unwrap() calls SSL_shutdown twice and the
            # second call reads, and discards, client records already waiting in the socket.
            if backend_eof and not len(down) and not tls_shut and (client_eof or tls_rd_wait == _IN):
                tls_shut = True
                self._send_close_notify()

            if self._abort_reason:
                continue  # the top of the loop resets both sides
            if client_eof and backend_eof and be_shut and tls_shut:
                self._close_both()
                return "closed"

            now = time.monotonic()
            if moved:
                last = now
            limit = self.half_close_idle if (client_eof or backend_eof) else self.idle_timeout
            remaining = last + limit - now
            if remaining <= 0:
                abort_socket(be)
                abort_socket(tls)
                return "idle_timeout"

            # What each socket waits for. A socket with nothing to wait for stays registered with no
            # events, so poll() still reports its errors: a client that resets while the PACS is not
            # reading (or the reverse) must end the association now, not at the idle timeout. Only an
            # orderly hang-up we cannot act on yet is parked (poll would report it forever and spin).
            want = {tfd: 0, bfd: 0}
            if not client_eof and up.space() and tls_rd_wait:
                want[tfd] |= tls_rd_wait
            if len(down) and tls_wr_wait:
                want[tfd] |= tls_wr_wait
            if not backend_eof and down.space() and be_rd_wait:
                want[bfd] |= _IN
            if len(up) and be_wr_wait:
                want[bfd] |= _OUT
            for fd, ev in want.items():
                if ev:
                    parked.discard(fd)
                if fd in parked:
                    if fd in registered:
                        poller.unregister(fd)
                        del registered[fd]
                elif registered.get(fd) != ev:
                    poller.register(fd, ev)
                    registered[fd] = ev
            if not registered:
                if moved:
                    continue
                # Nothing to wait for and nothing moved: both sides finished in a way the state
                # machine above has already handled; close in order.
                self._close_both()
                return "closed"
            # When bytes moved, only peek (timeout 0) so waits are refreshed without sleeping.
            # abort() wakes this poll by shutting the sockets down; the cap only bounds a missed wake-up.
            events = poller.poll(0 if moved else min(remaining, 30.0) * 1000)
            for fd, ev in events:
                if not want[fd] and ev & _ERR:
                    # POLLERR: a reset or a keepalive timeout. A bare POLLHUP is an orderly close of both
                    # directions (a FIN after ours), which the reader meets as EOF in due course.
                    if ev & select.POLLERR:
                        if self._abort_reason:
                            break
                        abort_socket(be)
                        abort_socket(tls)
                        return "client_reset" if fd == tfd else "backend_reset"
                    parked.add(fd)  # an orderly hang-up: seen when we next read that side
                    continue
                if fd == tfd:
                    if ev & (_IN | _ERR):
                        if tls_rd_wait == _IN:
                            tls_rd_wait = 0
                        if tls_wr_wait == _IN:
                            tls_wr_wait = 0
                    if ev & (_OUT | _ERR):
                        if tls_rd_wait == _OUT:
                            tls_rd_wait = 0
                        if tls_wr_wait == _OUT:
                            tls_wr_wait = 0
                else:
                    if ev & (_IN | _ERR):
                        be_rd_wait = False
                    if ev & (_OUT | _ERR):
                        be_wr_wait = False

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
