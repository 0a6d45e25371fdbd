"""The sink behind every terminator in the benchmark (and a DICOM echo SCP for the reliability tests):
a raw-PDU DICOM SCP that accepts any association, answers C-ECHO, throws away everything else, and
answers A-RELEASE-RQ. It reads into one fixed buffer and only counts bulk P-DATA, so it costs little
CPU and holds thousands of associations in one process.

Two servers share the PDU state machine (PduStream):
- asyncio (default): one thread, BufferedProtocol, thousands of associations (benchmarks 3 and 4);
- threaded (--threaded): a blocking thread per connection; optionally TLS itself (--tls CERT KEY),
  the direct baseline that shows the bulk client is not the bottleneck.

    python -m benchmarks.dicom_sink [--port 0] [--threaded] [--tls CERT KEY]

prints "LISTENING <port>" on stdout once bound and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import socket
import ssl
import struct
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import dul  # noqa: E402

BUF = 1 << 20
KEEP_LIMIT = 1 << 20  # PDUs up to this size are kept and parsed; bigger P-DATA is only counted


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Stats:
    connections: int = 0
    closed: int = 0
    associations: int = 0
    echoes: int = 0
    releases: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class PduStream:
    """Feed bytes in; get back the bytes to answer and whether to close afterwards."""

    __slots__ = ("header", "need", "keep", "ptype", "stats", "closing")

    def __init__(self, stats: Stats) -> None:
        self.header = bytearray()
        self.need = -1  # -1: reading a header; else body bytes still to come
        self.keep: bytearray | None = None
        self.ptype = 0
        self.stats = stats
        self.closing = False

    def feed(self, data: memoryview) -> bytes:
        out = b""
        pos, n = 0, len(data)
        while pos < n and not self.closing:
            if self.need < 0:
                k = min(6 - len(self.header), n - pos)
                self.header += data[pos:pos + k]
                pos += k
                if len(self.header) < 6:
                    break
                self.ptype = self.header[0]
                self.need = struct.unpack(">I", self.header[2:6])[0]
                self.keep = bytearray(self.header) if self.need <= KEEP_LIMIT else None
                self.header = bytearray()
            k = min(self.need, n - pos)
            if k and self.keep is not None:
                self.keep += data[pos:pos + k]
            pos += k
            self.need -= k
            if self.need == 0:
                self.need = -1
                out += self._pdu(self.ptype, bytes(self.keep) if self.keep is not None else b"")
        return out

    def _pdu(self, ptype: int, pdu: bytes) -> bytes:
        if ptype == dul.ASSOCIATE_RQ:
            self.stats.add(associations=1)
            try:
                return dul.associate_ac(pdu)
            except (IndexError, UnicodeDecodeError, struct.error):
                self.closing = True
                return dul.abort(2, 6)
        if ptype == dul.P_DATA:
            parsed = dul.parse_command(pdu) if pdu else None
            if parsed is not None:
                cid, el = parsed
                if struct.unpack("<H", el.get(0x0100, b"\0\0"))[0] == dul.C_ECHO_RQ:
                    self.stats.add(echoes=1)
                    return dul.c_echo_rsp(struct.unpack("<H", el[0x0110])[0], 0, cid)
            return b""
        if ptype == dul.RELEASE_RQ:
            self.stats.add(releases=1)
            self.closing = True
            return dul.release_rp()
        self.closing = True  # A-ABORT, or a PDU an SCP never receives
        return b""


# --- asyncio server ------------------------------------------------------------------------------------

class _Proto(asyncio.BufferedProtocol):
    shared = bytearray(BUF)  # one buffer for all: a loop runs one get_buffer/buffer_updated at a time
    view = memoryview(shared)

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.stream = PduStream(stats)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.add(connections=1)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.stats.bytes += nbytes
        reply = self.stream.feed(self.view[:nbytes])
        assert self.transport is not None
        if reply:
            self.transport.write(reply)
        if self.stream.closing:
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.stats.add(closed=1)


async def serve_async(host: str, port: int, stats: Stats, ready: "callable", stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Proto(stats), host, port, backlog=4096, reuse_address=True)
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await stop.wait()


# --- threaded server -------------------------------------------------------------------------------------

def _serve_conn(conn: socket.socket, stats: Stats, ctx: ssl.SSLContext | None) -> None:
    stats.add(connections=1)
    buf = bytearray(BUF)
    view = memoryview(buf)
    stream = PduStream(stats)
    try:
        if ctx is not None:
            conn = ctx.wrap_socket(conn, server_side=True)
        while not stream.closing:
            n = conn.recv_into(view)
            if not n:
                break
            stats.bytes += n  # approximate under threads; only for display
            reply = stream.feed(view[:n])
            if reply:
                conn.sendall(reply)
    except (OSError, ssl.SSLError):
        pass
    finally:
        stats.add(closed=1)
        try:
            conn.close()
        except OSError:
            pass


def serve_threaded(sock: socket.socket, stats: Stats, ctx: ssl.SSLContext | None) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve_conn, args=(conn, stats, ctx), daemon=True).start()


def tls_server_context(cert: str, key: str) -> ssl.SSLContext:
    from dicomtls.engine.ciphers import POLICIES

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(POLICIES["bcp195-nd"].openssl_cipher_string)
    ctx.load_cert_chain(cert, key)
    return ctx


# --- in-process handle (tests) ---------------------------------------------------------------------------

class SinkHandle:
    """An asyncio sink in a background thread: .port, .stats, .stop(); .open() = connections not yet closed."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.stats = Stats()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, args=(host, port), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the DICOM sink did not start")

    def _main(self, host: str, port: int) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(p: int) -> None:
                self.port = p
                self._ready.set()

            await serve_async(host, port, self.stats, ready, self._stop)

        asyncio.run(main())

    def open(self) -> int:
        return self.stats.connections - self.stats.closed

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--threaded", action="store_true", help="a blocking thread per connection")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="speak TLS 1.2 itself (threaded only)")
    args = ap.parse_args(argv)
    raise_nofile()
    stats = Stats()

    def ready(port: int) -> None:
        print(f"LISTENING {port}", flush=True)

    if args.threaded or args.tls:
        ctx = tls_server_context(*args.tls) if args.tls else None
        sock = socket.create_server((args.host, args.port), backlog=4096, reuse_port=False)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        ready(sock.getsockname()[1])
        try:
            serve_threaded(sock, stats, ctx)
        except (KeyboardInterrupt, SystemExit):
            pass
        return 0

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_async(args.host, args.port, stats, ready, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
