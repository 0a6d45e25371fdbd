"""The simulator over real HTTP(S) on loopback: handler, server, and the handle tests hold."""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from dicomtls.engine.rehearsal.nitro_sim.api import Api
from dicomtls.engine.rehearsal.nitro_sim.catalog import ATTRS, DEFAULT_USER, PARTITIONS_DIR, REASONS, SSL_DIR
from dicomtls.engine.rehearsal.nitro_sim.certs import make_management_cert, pem_fingerprint, server_context
from dicomtls.engine.rehearsal.nitro_sim.faults import Fault, arg_missing, body_items, invalid_arg
from dicomtls.engine.rehearsal.nitro_sim.state import LogEntry, NitroState

HOOK_PREFIX = "/nitro-sim/connect/"  # POST here: a client connected to that lbvserver (counters move)

_Reply = tuple[int, dict[str, Any] | None, list[tuple[str, str]]]  # HTTP status, JSON body, extra headers


# --- HTTP ---------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the ADC
    server: _Server
    server_version = "Apache"  # what the ADC's management web server calls itself
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature (BaseHTTPRequestHandler)
        pass  # the request log is structured (state.log); nothing to stderr

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # ---
    def _token(self) -> str | None:
        for header in ("Cookie", "Set-Cookie"):  # GO/PYSDK send the token in a request Set-Cookie (§2.2)
            for value in self.headers.get_all(header) or []:
                for part in value.split(";"):
                    k, _, v = part.strip().partition("=")
                    if k in ("NITRO_AUTH_TOKEN", "sessionid") and v:
                        return unquote(v)
        return None

    def _serve(self, method: str) -> None:
        srv = self.server
        state = srv.state
        if srv.dead:
            self.close_connection = True
            self.connection.close()
            return
        raw_path, _, raw_query = self.path.partition("?")
        q: dict[str, str] = {}
        for part in raw_query.split("&"):
            if part:
                k, _, v = part.partition("=")
                q[k.lower()] = v if k.lower() in ("args", "filter") else unquote(v)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        parts = raw_path.split("/")
        # /nitro/v1/<config|stat>/<resource>[/<name>]; names are double URL-encoded by clients (§1)
        kind = parts[3] if len(parts) > 3 else ""
        resource = parts[4].lower() if len(parts) > 4 else ""
        name = unquote(unquote(parts[5])) if len(parts) > 5 and parts[5] else None
        # Login, logout and a partition switch change the session, not the configuration.
        is_write = method != "GET" and resource not in ("login", "logout") and not (
            resource == "nspartition" and q.get("action", "").lower() == "switch")
        if raw_path.startswith(HOOK_PREFIX) and method == "POST":
            self._hook(state, unquote(raw_path.removeprefix(HOOK_PREFIX)))
            return
        with state.lock:
            state.requests += 1
            entry = LogEntry(seq=state.requests, method=method, path=raw_path, query=raw_query, resource=resource,
                             name=name, auth="none", write=is_write and kind == "config")
            state.log.append(entry)
            f = state.faults
            if f.expire_sessions_at_request is not None and state.requests >= f.expire_sessions_at_request:
                state.sessions.clear()
                f.expire_sessions_at_request = None
            status, body, headers = self._dispatch(state, method, kind, resource, name, q, raw_body, entry)
            entry.status = status
            entry.errorcode = int(body.get("errorcode", 0)) if body else 0
            if entry.write:
                state.writes += 1
                if f.die_after_writes is not None and state.writes >= f.die_after_writes:
                    f.die_after_writes = None
                    srv.die()
                    self.close_connection = True
                    self.connection.close()  # killed while answering: the write is done, no reply
                    return
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status, REASONS.get(status, ""))
        for k, v in headers:
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _hook(self, state: NitroState, vserver: str) -> None:
        """Rehearsal only, outside /nitro/v1: a connection from outside reached VSERVER (its counters move)."""
        known = vserver in state.lbvservers
        if known:
            state.client_connected(vserver)
        self.send_response(204 if known else 404, "No Content" if known else "Not Found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _switch(self, state: NitroState, body: Any) -> _Reply:
        """`POST nspartition?action=Switch {"nspartition": {"partitionname": P}}` (NITRO 12.0 usecases
        "Switching Partitions"); "default" goes back. The code for an unknown partition is [UNVERIFIED]."""
        item = {k.lower(): v for k, v in body_items(body, "nspartition")[0].items()}
        name = str(item.get("partitionname") or "")
        if not name:
            raise arg_missing("partitionname")
        if name != "default" and name not in state.partitions:
            raise Fault(404, 258, "No such resource", f"partitionname, {name}")
        token = self._token()
        if token:
            if name == "default":
                state.session_partition.pop(token, None)
            else:
                state.session_partition[token] = name
        return 200, {"errorcode": 0, "message": "Done", "severity": "NONE"}, []

    def _dispatch(self, state: NitroState, method: str, kind: str, resource: str, name: str | None,
                  q: dict[str, str], raw_body: bytes, entry: LogEntry) -> _Reply:
        api = Api(state, state.session_partition.get(self._token() or ""))
        try:
            if not self.path.startswith("/nitro/v1/") or kind not in ("config", "stat") or not resource:
                raise Fault(404, 1232, "Invalid object name", self.path.split("?")[0])
            body: Any = None
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise Fault(400, 1233, "Invalid JSON input") from None
            if kind == "config" and resource == "login" and method == "POST":
                entry.auth = "login"
                return self._login(state, body)
            user = self._authenticate(state, entry)
            if kind == "config" and resource == "logout" and method == "POST":
                token = self._token()
                if token:
                    state.sessions.pop(token, None)
                return 200, {"errorcode": 0, "message": "Done", "severity": "NONE"}, []
            del user
            if kind == "config" and resource == "nspartition" and q.get("action", "").lower() == "switch":
                return self._switch(state, body)
            if kind == "stat":
                if method != "GET":
                    raise Fault(405, 1240, "Invalid nitro action or operation", method)
                return 200, {"errorcode": 0, "message": "Done", "severity": "NONE", **api.stat(resource, name)}, []
            if method == "GET":
                return 200, {"errorcode": 0, "message": "Done", "severity": "NONE", **api.get(resource, name, q)}, []
            onerror = (self.headers.get("X-NITRO-ONERROR") or q.get("onerror") or "exit").lower()
            status, out = api.write(method, resource, name, q, body, onerror)
            if out is None and resource in ("systemfile", "lbvserver"):
                return status, None, []  # "201 Created, no JSON response" (WACS, CPX-README)
            return status, out or {"errorcode": 0, "message": "Done", "severity": "NONE"}, []
        except Fault as f:
            return f.http, f.body(), []

    def _login(self, state: NitroState, body: Any) -> _Reply:
        items = body_items(body, "login")
        item = {k.lower(): v for k, v in items[0].items()}
        for k in item:
            if k not in ATTRS["login"]:
                raise invalid_arg(k)
        user, password = item.get("username"), item.get("password")
        if not user:
            raise arg_missing("username")
        if state.users.get(user) is None or not secrets.compare_digest(
                str(state.users[user]).encode(), str(password or "").encode()):
            raise Fault(401, 354, "Invalid username or password")
        token = "##" + secrets.token_hex(24).upper()
        timeout = float(item.get("timeout") or state.session_timeout)
        state.sessions[token] = time.monotonic() + timeout
        cookie = f"NITRO_AUTH_TOKEN={token.replace('#', '%23')}; path=/nitro/v1"
        return 201, {"errorcode": 0, "message": "Done", "severity": "NONE", "sessionid": token}, [("Set-Cookie", cookie)]

    def _authenticate(self, state: NitroState, entry: LogEntry) -> str:
        user, password = self.headers.get("X-NITRO-USER"), self.headers.get("X-NITRO-PASS")
        token = self._token()
        if token is None and user is not None:  # per-request auth (§2.3)
            entry.auth = "header"
            if state.users.get(user) is None or not secrets.compare_digest(
                    str(state.users[user]).encode(), str(password or "").encode()):
                raise Fault(401, 354, "Invalid username or password")
            return user
        if token is None:
            # [UNVERIFIED] what an ADC answers a request with no credentials at all.
            raise Fault(401, 354, "Invalid username or password")
        expiry = state.sessions.get(token)
        if expiry is None or expiry < time.monotonic():
            state.sessions.pop(token, None)
            entry.auth = "expired"
            raise Fault(401, 444, "Session expired or killed. Please login again")
        entry.auth = "session"
        return "session"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: NitroState, tls: ssl.SSLContext | None) -> None:
        self.state = state
        self.tls = tls
        self.dead = False
        super().__init__(addr, _Handler)

    def finish_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # TLS handshake here, in the connection's own thread, so a slow client never blocks accept().
        if self.tls is not None:
            assert isinstance(request, socket.socket)  # a TCP server's request is the connection
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        pass  # a client that went away is not worth a traceback on the console

    def die(self) -> None:
        """Stop like a killed process: refuse new connections, drop the open ones."""
        self.dead = True
        threading.Thread(target=self._stop, daemon=True).start()

    def _stop(self) -> None:
        self.shutdown()
        self.server_close()


@dataclass
class SimHandle:
    """A running simulator: `.url`, `.fingerprint` (None over http), `.state`, `.stop()`, `.kill()`, `.restart()`."""

    host: str
    port: int
    tls: bool
    state: NitroState
    username: str
    password: str = field(repr=False)
    fingerprint: str | None
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _ctx: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def log(self) -> list[LogEntry]:
        return self.state.log

    def client_connected(self, vserver: str) -> None:
        """A connection from outside reached the vserver (its `stat lbvserver` counters move)."""
        self.state.client_connected(vserver)

    @property
    def alive(self) -> bool:
        return self._server is not None and not self._server.dead

    def _start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(_Server):
            address_family = family

        self._server = Server((self.host, self.port), self.state, self._ctx)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"nitro-sim:{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.dead = True
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def kill(self) -> None:
        """Die as a killed process would: the port refuses connections, open connections are dropped."""
        if self._server is not None:
            self._server.dead = True
            self._server.shutdown()
            self._server.server_close()

    def restart(self) -> None:
        """Come back on the same port with the same running configuration (sessions are gone)."""
        if self._server is not None and not self._server.dead:
            return
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self.state.lock:
            self.state.sessions.clear()
        self._start()

    def wait_dead(self, timeout: float = 5.0) -> bool:
        """True once the listening port refuses connections (after a die_after_writes fault)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(port: int = 0, tls: bool = True, *, host: str = "127.0.0.1", username: str = DEFAULT_USER,
                    password: str = "nsroot", default_profile: bool = False, firmware: str = "14.1",
                    ha: str | None = None, partition: str | None = None,
                    cert_pem: bytes | None = None, key_pem: bytes | None = None,
                    state: NitroState | None = None) -> SimHandle:
    """Serve a simulated NITRO on loopback in a daemon thread; returns when it accepts connections.

    Modes: default_profile (the Default SSL Profile enabled), firmware (the release imitated: "12.0" has
    no tls13; "13.1" lists cipher groups only as suite bindings), ha ("primary" or "secondary" of a pair),
    partition (an admin partition of that name exists)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("the NITRO simulator listens on loopback only (127.0.0.1 or ::1)")
    state = state or NitroState(username, password, default_profile=default_profile, firmware=firmware, ha=ha,
                                partition=partition)
    with state.lock:
        for p in state.partitions:
            state.files.setdefault(f"{PARTITIONS_DIR}/{p}/ssl", {})
    ctx = None
    fp = None
    if tls:
        if cert_pem is None or key_pem is None:
            cert_pem, key_pem = make_management_cert()
        ctx = server_context(cert_pem, key_pem)
        fp = pem_fingerprint(cert_pem)
        # The ADC's own certificate is on disk and installed as ns-server-certificate, as on a real box.
        with state.lock:
            state.files[SSL_DIR].setdefault("ns-server.cert", cert_pem)
    handle = SimHandle(host=host, port=port, tls=tls, state=state, username=username, password=password,
                       fingerprint=fp, _ctx=ctx)
    handle._start()
    return handle
