"""Shared pieces for the terminator tests: plan files, real TCP backends that count and hash what they
get, TLS clients, a valid A-ASSOCIATE-RQ, and polling helpers (deadlines, never fixed sleeps)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dicomtls.engine.plan import load_plan
from dicomtls.engine.tlsctx import client_context
from tests.support.peers import LOOPBACK, free_port
from tests.support.serve import ServeProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"


# --- plans ----------------------------------------------------------------------------------------

def write_plan(folder: Path, cert: Path, key: Path, services: list[dict], listeners: list[dict],
               policy: str = "bcp195-nd", builtin: dict | None = None, name: str = "plan.toml") -> Path:
    """A plan TOML file; listeners default to ip 127.0.0.1, role store; the state dir is folder/state."""
    def val(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):  # a TOML inline table, e.g. a service's members
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)  # TOML basic strings and numbers share JSON's spelling here

    lines = ['backend = "builtin"', "[certificate]", f"cert = {val(str(cert))}", f"key = {val(str(key))}",
             "[cipher_policy]", f"profile = {val(policy)}"]
    for s in services:
        lines.append("[[service]]")
        lines += [f"{k} = {val(v)}" for k, v in {"ae_title": "PACS", **s}.items()]
    for vs in listeners:
        lines.append("[[virtual_server]]")
        lines += [f"{k} = {val(v)}" for k, v in {"ip": LOOPBACK, **vs}.items()]
    lines.append("[builtin]")
    lines += [f"{k} = {val(v)}" for k, v in {"state_dir": str(folder / "state"), **(builtin or {})}.items()]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


# --- DICOM bytes ----------------------------------------------------------------------------------

def assoc_rq(calling: str = "BUTTERFLY", called: str = "PACS") -> bytes:
    """A well-formed A-ASSOCIATE-RQ proposing Verification, encoded by pynetdicom."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
    from pynetdicom.presentation import build_context

    prim = A_ASSOCIATE()
    prim.application_context_name = APP_CONTEXT
    prim.calling_ae_title = calling
    prim.called_ae_title = called
    cx = build_context(VERIFICATION, [IMPLICIT_LE])
    cx.context_id = 1
    prim.presentation_context_definition_list = [cx]
    ml = MaximumLengthNotification()
    ml.maximum_length_received = 16384
    prim.user_information = [ml]
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(prim)
    return rq.encode()


def decode_pdu(data: bytes) -> tuple[int, bytes]:
    assert len(data) >= 6, data
    t, length = data[0], struct.unpack(">I", data[2:6])[0]
    return t, data[6:6 + length]


# --- backends -------------------------------------------------------------------------------------

class Backend:
    """A plain TCP server standing in for the PACS. mode "discard" reads and counts; "hash" answers
    the SHA-256 hex of everything it got once the client half-closes; "echo" sends back what it gets.
    `accepts` counts every accepted connection (health probes included); `data_conns` those that sent
    at least one byte, i.e. real dials by the terminator."""

    def __init__(self, mode: str = "discard", port: int = 0) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, port))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.data_conns = 0
        self.received: list[int] = []
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepts += 1
            threading.Thread(target=self._conn, args=(c,), name="backend-conn", daemon=True).start()

    def _conn(self, c: socket.socket) -> None:
        h, n, buf = hashlib.sha256(), 0, bytearray(1 << 18)
        try:
            while True:
                k = c.recv_into(buf)
                if not k:
                    break
                if n == 0:
                    with self._lock:
                        self.data_conns += 1
                n += k
                if self.mode == "hash":
                    h.update(memoryview(buf)[:k])
                elif self.mode == "echo":
                    c.sendall(memoryview(buf)[:k])
            if self.mode == "hash":
                c.sendall(h.hexdigest().encode())
        except OSError:
            pass
        finally:
            with self._lock:
                self.received.append(n)
            c.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@contextlib.contextmanager
def backend(mode: str = "discard", port: int = 0) -> Iterator[Backend]:
    b = Backend(mode, port)
    try:
        yield b
    finally:
        b.close()


@contextlib.contextmanager
def echo_scp(port: int = 0, ae_title: str = "PACS") -> Iterator[int]:
    """A pynetdicom Verification SCP on 127.0.0.1:port (0 = any free port); yields the port. Unlike
    tests.support.peers.pynetdicom_scp it can come back on the same port (backend-recovery tests)."""
    from pynetdicom import AE, evt

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION)
    # pynetdicom's default cap is 10 live associations, answered with A-ASSOCIATE-RJ 2/3/2; on a loaded
    # machine ended ones linger long enough to hit it (seen once under two concurrent suites).
    ae.maximum_associations = 100
    server = ae.start_server((LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_C_ECHO, lambda e: 0x0000)])
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


# --- clients --------------------------------------------------------------------------------------

def tls_connect(port: int, cafile: Path | None = None, policy: str = "bcp195-nd",
                timeout: float = 10.0) -> ssl.SSLSocket:
    ctx = client_context(policy, cafile, insecure=cafile is None)
    raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def peer_fingerprint(s: ssl.SSLSocket) -> str:
    der = s.getpeercert(binary_form=True)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def recv_all(s: socket.socket) -> bytes:
    out = bytearray()
    while True:
        try:
            b = s.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not b:
            break
        out += b
    return bytes(out)


def recv_exact(s: socket.socket, n: int, timeout: float = 10.0) -> bytes:
    """Exactly n bytes; fails the test if the peer closes first."""
    s.settimeout(timeout)
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        assert b, f"closed after {len(out)} of {n} bytes"
        out += b
    return out


def echoscu(port: int, *args: str, calling: str = "BUTTERFLY", called: str = "PACS",
            timeout: float = 30) -> subprocess.CompletedProcess:
    """DCMTK echoscu over anonymous TLS (+tla) without verifying our test certificate (-ic)."""
    cmd = ["echoscu", "-aet", calling, "-aec", called, *(args or ("+tla", "-ic")), LOOPBACK, str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def expect_transient_reject(port: int) -> None:
    """echoscu through the terminator is refused at once with A-ASSOCIATE-RJ transient, congestion
    (what Butterfly gets while the PACS is down), within 1 s."""
    t = time.monotonic()
    r = echoscu(port)
    took = time.monotonic() - t
    assert r.returncode != 0
    assert "Rejected Transient" in r.stderr and "Temporary Congestion" in r.stderr, r.stderr
    assert took < 1.0, took


# --- the terminator ---------------------------------------------------------------------------------

@contextlib.contextmanager
def terminator(plan_path: Path) -> Iterator[tuple[Any, list[dict]]]:
    """The terminator in this process (run_in_thread); yields (handle, records) where records fill
    with every JSON log record."""
    from dicomtls.engine.terminator import run_in_thread

    handle = run_in_thread(load_plan(plan_path))
    records: list[dict] = []
    handle.subscribe(records.append)
    try:
        assert handle.wait_ready(10), "terminator did not start"
        yield handle, records
    finally:
        handle.stop(drain_timeout=1.0)


def ended(records: list[dict], **match: Any) -> list[dict]:
    return [r for r in records if r.get("event") == "association" and all(r.get(k) == v for k, v in match.items())]


def wait_record(records: list[dict], timeout: float = 10.0, **match: Any) -> dict:
    return wait_for(lambda: (ended(records, **match) or [None])[-1], timeout, f"association record {match}")


@contextlib.contextmanager
def serve_process(plan_path: Path, home: Path, env: dict | None = None) -> Iterator[ServeProcess]:
    sp = ServeProcess(plan_path, home, env)
    try:
        sp.event("started")
        yield sp
    finally:
        sp.stop()


__all__ = ["LOOPBACK", "free_port", "wait_for", "write_plan", "assoc_rq", "Backend", "backend", "tls_connect",
           "echoscu", "expect_transient_reject", "terminator", "ended", "wait_record", "serve_process",
           "ServeProcess", "recv_all", "peer_fingerprint", "decode_pdu", "echo_scp"]
