"""The terminator: listeners, the TLS handshake, the first-PDU gate, then a pump thread per association.

Control plane on asyncio (accept, handshake with a deadline, allowlists, the A-ASSOCIATE-RQ gate,
health probes, reload, drain, status); the bytes of a live association move in a pump thread
(pump.py). The PACS is dialled only after a complete, well-formed A-ASSOCIATE-RQ has arrived over
TLS, so port scanners, load-balancer probes and idle TLS clients never reach it. A PACS on several
servers (a service's members): the least busy one not marked down, the next one if the dial fails.

Every connection that sent anything ends in exactly one JSON "association" record (events.py);
connections that close without sending a byte (TCP probes) are only counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from engine.ciphers import POLICIES
from engine.errors import UserError
from engine.terminator import pdu
from engine.terminator.config import (BACKEND_DOWN_CONNECT_TIMEOUT, HALF_CLOSE_IDLE, MAX_ASSOCIATIONS, MAX_PENDING,
                                      PROBE_TIMEOUT, ListenerConfig, RuntimeConfig, StateFiles)
from engine.terminator.control import start_control
from engine.terminator.events import EventLog
from engine.terminator.health import Health, open_tcp, probe
from engine.terminator.health import why as reason
from engine.terminator.pump import Pump, abort_socket

LISTEN_BACKLOG = 512

# A PACS server: (host, port). Health is kept per (service, host, port), load per server.
Server = tuple[str, int]


class _Reject(Exception):
    """End the connection before the pump: `end` is the log's reason, `detail` the explanation."""

    def __init__(self, end: str, detail: str = "", reply: bytes | None = None) -> None:
        super().__init__(detail or end)
        self.end, self.detail, self.reply = end, detail, reply


@dataclass
class Generation:
    """One loaded configuration. Connections keep the generation they were accepted under."""

    number: int
    config: RuntimeConfig
    context: ssl.SSLContext
    loaded: float = field(default_factory=time.time)


@dataclass
class Listener:
    cfg: ListenerConfig
    sock: socket.socket
    task: asyncio.Task | None = None
    counters: dict[str, int] = field(default_factory=lambda: {"connections": 0, "associations": 0, "rejected": 0,
                                                              "probes": 0})

    @property
    def address(self) -> tuple[str, int]:
        return self.cfg.ip, self.cfg.port


@dataclass
class Live:
    id: int
    client: str
    listener: str
    service: str
    calling_ae: str
    called_ae: str
    tls_version: str
    cipher: str
    started: float
    pump: Pump
    backend: str = ""  # the PACS server (member) it was dialled to, host:port

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "client": self.client, "listener": self.listener, "service": self.service,
                "backend": self.backend,
                "calling_ae": self.calling_ae, "called_ae": self.called_ae, "tls_version": self.tls_version,
                "cipher": self.cipher, "started": self.started, "seconds": round(time.time() - self.started, 3),
                "bytes_from_client": self.pump.bytes_up, "bytes_to_client": self.pump.bytes_down}


def bind_listener(cfg: ListenerConfig, defer_accept: float) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(cfg.ip).version == 6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "TCP_DEFER_ACCEPT"):
            # Connections that never send a byte (RST-closing monitors) are not even handed to accept().
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, max(1, int(defer_accept)))
        s.bind((cfg.ip, cfg.port))
        s.listen(LISTEN_BACKLOG)
        s.setblocking(False)
    except OSError as exc:
        s.close()
        raise UserError(f"cannot listen on {cfg.ip}:{cfg.port} for {cfg.name}: {exc.strerror}",
                        "stop the program using that port (`ss -ltnp`), or give the virtual server another "
                        "port; ports below 1024 need root or CAP_NET_BIND_SERVICE") from None
    return s


def _in_networks(ip: str, networks: list[str]) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in ipaddress.ip_network(n) for n in networks)


class Terminator:
    def __init__(self, config: RuntimeConfig, context: ssl.SSLContext, events: EventLog, *,
                 control: bool = True) -> None:
        self.events = events
        self.gen = Generation(1, config, context)
        self.listeners: dict[str, Listener] = {}
        self.health: dict[tuple[str, str, int], Health] = {}  # (service, host, port): one per member
        self.busy: Counter[Server] = Counter()  # associations live or being dialled, per PACS server
        self.live: dict[int, Live] = {}
        self.admitting = 0  # associations past the gate, PACS being dialled
        self.pending: set[asyncio.Task] = set()
        self.handlers: set[asyncio.Task] = set()
        self.counters = {"connections": 0, "associations": 0, "rejected": 0, "probes": 0, "tls_failures": 0,
                         "gate_failures": 0, "backend_failures": 0, "reloads": 0, "reload_failures": 0}
        self.draining = False
        self.last_reload_error = ""
        self.started = time.time()
        self._ids = count(1)
        self._control_enabled = control
        self._control: asyncio.AbstractServer | None = None
        self._health_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reload_lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        cfg = self.gen.config
        bound: list[Listener] = []
        try:
            for lc in cfg.listeners:
                bound.append(Listener(lc, bind_listener(lc, cfg.handshake_timeout)))
        except UserError:
            for lst in bound:
                lst.sock.close()
            raise
        for lst in bound:
            self.listeners[lst.cfg.name] = lst
            lst.task = asyncio.create_task(self._accept_loop(lst))
        self._sync_health(cfg)
        self._health_task = asyncio.create_task(self._health_loop())
        if self._control_enabled:
            self._control = await start_control(self.status, StateFiles(cfg.state_dir).control, cfg.status_port)
        self.events.emit("started", pid=os.getpid(), generation=1, policy=cfg.policy,
                         cert_fingerprint=cfg.cert_fingerprint,
                         listeners=[f"{lc.name}={lc.ip}:{lc.port}->{lc.service}" for lc in cfg.listeners])

    async def reload(self, config: RuntimeConfig, context: ssl.SSLContext) -> bool:
        """Swap in a new configuration for new connections; live associations keep theirs.
        All-or-nothing: if a new listener cannot be bound, the old configuration stays."""
        async with self._reload_lock:
            if self.draining:
                return False
            old = self.gen.config
            wanted = {lc.name: lc for lc in config.listeners}
            new_socks: dict[str, socket.socket] = {}
            try:
                for name, lc in wanted.items():
                    cur = self.listeners.get(name)
                    if cur is None or (cur.cfg.ip, cur.cfg.port) != (lc.ip, lc.port):
                        reuse = next((lst for lst in self.listeners.values()
                                      if (lst.cfg.ip, lst.cfg.port) == (lc.ip, lc.port)), None)
                        if reuse is None:
                            new_socks[name] = bind_listener(lc, config.handshake_timeout)
            except UserError as exc:
                for s in new_socks.values():
                    s.close()
                self.reload_failed(exc.problem, exc.fix)
                return False
            # Commit: from here nothing can fail.
            old_listeners = self.listeners
            self.listeners = {}
            for name, lc in wanted.items():
                if name in new_socks:
                    lst = Listener(lc, new_socks[name])
                    lst.task = asyncio.create_task(self._accept_loop(lst))
                else:
                    lst = next(v for v in old_listeners.values() if (v.cfg.ip, v.cfg.port) == (lc.ip, lc.port))
                    lst.cfg = lc
                self.listeners[name] = lst
            kept = {id(v) for v in self.listeners.values()}
            for lst in old_listeners.values():
                if id(lst) not in kept:
                    self._close_listener(lst)
            self.gen = Generation(self.gen.number + 1, config, context)
            self._sync_health(config)
            if self._control is not None and config.status_port != old.status_port:
                await self._restart_control(old)
            self.counters["reloads"] += 1
            self.events.emit("reloaded", generation=self.gen.number, policy=config.policy,
                             cert_fingerprint=config.cert_fingerprint,
                             cert_changed=config.cert_fingerprint != old.cert_fingerprint,
                             listeners=[f"{lc.name}={lc.ip}:{lc.port}->{lc.service}" for lc in config.listeners],
                             live_associations=len(self.live))
            return True

    async def _restart_control(self, old: RuntimeConfig) -> None:
        """The status endpoint moved (unix socket <-> loopback port): serve it where the new config says."""
        assert self._control is not None
        self._control.close()
        if not old.status_port:
            try:
                StateFiles(old.state_dir).control.unlink()
            except OSError:
                pass
        cfg = self.gen.config
        try:
            self._control = await start_control(self.status, StateFiles(cfg.state_dir).control, cfg.status_port)
        except (OSError, UserError) as exc:
            self._control = None
            self.events.emit("control_failed", error=str(exc), status_port=cfg.status_port)

    def reload_failed(self, error: str, fix: str) -> None:
        self.counters["reload_failures"] += 1
        self.last_reload_error = error
        self.events.emit("reload_failed", error=error, fix=fix, generation=self.gen.number)

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let live associations finish for up to drain_timeout, then cut the rest."""
        if self.draining:
            return
        self.draining = True
        timeout = self.gen.config.drain_timeout if drain_timeout is None else drain_timeout
        for lst in list(self.listeners.values()):
            self._close_listener(lst)
        for t in list(self.pending):
            t.cancel()
        self.events.emit("draining", live_associations=len(self.live), timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.live and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cut = list(self.live.values())
        for a in cut:
            a.pump.abort("drain_timeout")
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=5.0)
        if self._health_task:
            self._health_task.cancel()
        if self._control:
            self._control.close()
            if not self.gen.config.status_port:
                try:
                    StateFiles(self.gen.config.state_dir).control.unlink()
                except OSError:
                    pass
        self.events.emit("stopped", cut_associations=len(cut), counters=dict(self.counters))

    def _close_listener(self, lst: Listener) -> None:
        if lst.task:
            lst.task.cancel()
        if self._loop:
            try:
                self._loop.remove_reader(lst.sock.fileno())
            except (ValueError, OSError):
                pass
        lst.sock.close()

    # --- accepting ----------------------------------------------------------------------------------
    async def _accept_loop(self, lst: Listener) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(lst.sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # EMFILE and friends: log, breathe, go on
                self.events.emit("accept_error", listener=lst.cfg.name, error=str(exc))
                await asyncio.sleep(0.1)
                continue
            if self.draining:
                abort_socket(conn)
                continue
            lst.counters["connections"] += 1
            self.counters["connections"] += 1
            if len(self.pending) >= MAX_PENDING:
                abort_socket(conn)
                self._count_reject(lst)
                self.events.emit("association", client=f"{addr[0]}:{addr[1]}", listener=lst.cfg.name,
                                 end="too_many_pending", detail=f"{MAX_PENDING} connections already in handshake")
                continue
            task = asyncio.create_task(self._handle(conn, addr, lst, self.gen))
            self.pending.add(task)
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)
            task.add_done_callback(self.pending.discard)

    def _count_reject(self, lst: Listener) -> None:
        lst.counters["rejected"] += 1
        self.counters["rejected"] += 1

    # --- one connection -----------------------------------------------------------------------------
    async def _handle(self, conn: socket.socket, addr: tuple, lst: Listener, gen: Generation) -> None:
        cfg, lc = gen.config, lst.cfg
        t0 = time.monotonic()
        rec: dict[str, Any] = {"client": f"{addr[0]}:{addr[1]}", "listener": lc.name, "role": lc.role,
                               "service": lc.service}
        conn.setblocking(False)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # PDUs are forwarded as they come
        except OSError:
            pass
        tls: ssl.SSLSocket | None = None
        task = asyncio.current_task()
        try:
            if lc.allowed_clients and not _in_networks(addr[0], lc.allowed_clients):
                abort_socket(conn)
                raise _Reject("client_not_allowed", f"{addr[0]} is outside allowed_clients {lc.allowed_clients}")
            deadline = t0 + cfg.handshake_timeout
            first = await self._peek(conn, deadline)
            if first is None:
                lst.counters["probes"] += 1
                self.counters["probes"] += 1
                conn.close()
                return  # a probe: connected and closed without a byte; counted, not logged
            if first != pdu.TLS_HANDSHAKE_RECORD:
                if 1 <= first <= 7:
                    raise _Reject("plaintext_dicom", "a plain (non-TLS) DICOM PDU arrived on the TLS port: the "
                                  "caller is not using TLS; enable TLS on the calling side")
                raise _Reject("not_tls", f"first byte 0x{first:02x} is not a TLS handshake record")
            tls = gen.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False,
                                          suppress_ragged_eofs=False)
            await self._handshake(tls, deadline)
            rec["tls_version"], rec["cipher"] = tls.version(), (tls.cipher() or ("",))[0]
            rq_bytes, rq = await self._first_pdu(tls, time.monotonic() + cfg.handshake_timeout)
            rec["calling_ae"], rec["called_ae"] = rq.calling_ae, rq.called_ae
            if lc.allowed_calling_aes and rq.calling_ae not in lc.allowed_calling_aes:
                raise _Reject("calling_ae_refused", f"calling AE {rq.calling_ae!r} is not in allowed_calling_aes",
                              pdu.associate_rj(*pdu.RJ_CALLING_AE_NOT_RECOGNIZED))
            # Associations being dialled hold a slot too, or concurrent arrivals would overshoot the cap.
            if len(self.live) + self.admitting >= MAX_ASSOCIATIONS:
                raise _Reject("too_many_associations", f"{MAX_ASSOCIATIONS} associations are live",
                              pdu.associate_rj(*pdu.RJ_LOCAL_LIMIT_EXCEEDED))
            if self.draining:
                raise _Reject("draining", "the terminator is shutting down",
                              pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION))
            self.admitting += 1
            try:
                backend, server = await self._dial(cfg, lc.service, rec)
                try:
                    await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(backend, rq_bytes),
                                           cfg.connect_timeout)
                except BaseException as exc:
                    abort_socket(backend)
                    self.busy[server] -= 1
                    if not isinstance(exc, (OSError, asyncio.TimeoutError)):
                        raise
                    raise _Reject("backend_failed", f"the PACS closed before taking the A-ASSOCIATE-RQ: {exc}",
                                  pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION)) from None
            finally:
                self.admitting -= 1  # from here to self.live[...] below there is no await
        except _Reject as rj:
            self._count_reject(lst)
            rec.update(end=rj.end, detail=rj.detail)
            if tls is not None:
                await self._close_tls(tls, rj.reply, time.monotonic() + 2.0)
            else:
                conn.close()
            self._emit_end(rec, t0)
            return
        except asyncio.CancelledError:  # draining: connections not yet associated are closed at once
            abort_socket(tls or conn)
            self._count_reject(lst)
            rec.update(end="draining", detail="the terminator shut down before the association started")
            self._emit_end(rec, t0)
            return
        except Exception as exc:  # a bug: close this one connection, keep serving the rest
            abort_socket(tls or conn)
            rec.update(end="error", detail=f"{type(exc).__name__}: {exc}")
            self._emit_end(rec, t0)
            return

        # The association is admitted: hand both sockets to a pump thread.
        self.pending.discard(task)
        lst.counters["associations"] += 1
        self.counters["associations"] += 1
        pump = Pump(tls, backend, cfg.idle_timeout, HALF_CLOSE_IDLE)
        if lc.role == "worklist":  # count the items the PACS returns (store listeners: no extra work)
            pump.down_pdus = pdu.ItemTracker()
        live = Live(next(self._ids), rec["client"], lc.name, lc.service, rec["calling_ae"], rec["called_ae"],
                    rec["tls_version"], rec["cipher"], time.time(), pump, rec["backend"])
        self.live[live.id] = live
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def run() -> None:
            end = pump.run()
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(end))

        threading.Thread(target=run, name=f"pump-{live.id}", daemon=True).start()
        try:
            end = await asyncio.shield(done)
        except asyncio.CancelledError:
            pump.abort("shutdown")
            end = await done
        finally:
            self.live.pop(live.id, None)
            self.busy[server] -= 1
        rec.update(outcome=pdu.outcome(pump.up_pdus, pump.down_pdus), end=end, closed_first=pump.closed_first,
                   client_close=pump.client_close, bytes_from_client=pump.bytes_up + len(rq_bytes),
                   bytes_to_client=pump.bytes_down, pdus_from_client=pump.up_pdus.pdus + 1,
                   pdus_to_client=pump.down_pdus.pdus)
        if isinstance(pump.down_pdus, pdu.ItemTracker):
            rec["items_to_client"] = pump.down_pdus.items
        self._emit_end(rec, t0)

    def _emit_end(self, rec: dict[str, Any], t0: float) -> None:
        rec["seconds"] = round(time.monotonic() - t0, 3)
        self.events.emit("association", **rec)

    async def _peek(self, conn: socket.socket, deadline: float) -> int | None:
        """First byte without consuming it; None if the peer closed (or reset) without sending any."""
        while True:
            try:
                b = conn.recv(1, socket.MSG_PEEK)
                return b[0] if b else None
            except BlockingIOError:
                await self._wait(conn, False, deadline, "handshake_timeout", "no TLS ClientHello arrived")
            except OSError:
                return None

    async def _handshake(self, tls: ssl.SSLSocket, deadline: float) -> None:
        while True:
            try:
                tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                await self._wait(tls, False, deadline, "handshake_timeout", "the TLS handshake did not finish")
            except ssl.SSLWantWriteError:
                await self._wait(tls, True, deadline, "handshake_timeout", "the TLS handshake did not finish")
            except ssl.SSLError as exc:
                self.counters["tls_failures"] += 1
                raise _Reject("tls_handshake_failed", _explain_tls(exc)) from None
            except OSError as exc:
                self.counters["tls_failures"] += 1
                raise _Reject("tls_handshake_failed", f"connection lost during the handshake: {exc}") from None

    async def _first_pdu(self, tls: ssl.SSLSocket, deadline: float) -> tuple[bytes, pdu.AssociateRQ]:
        try:
            header = await self._recv_exact(tls, pdu.HEADER_LEN, deadline)
            if not header:
                raise _Reject("closed_before_associate", "TLS was set up but no DICOM PDU followed (a TLS probe?)")
            length = pdu.check_header(header)
            body = await self._recv_exact(tls, length, deadline)
            return header + body, pdu.parse_associate_rq(header + body)
        except pdu.PDUError as exc:
            self.counters["gate_failures"] += 1
            raise _Reject(exc.code, str(exc), pdu.a_abort(*exc.abort) if exc.abort else None) from None

    async def _recv_exact(self, tls: ssl.SSLSocket, n: int, deadline: float) -> bytes:
        """n bytes, or fewer if the peer closed (b"" if it closed before the first)."""
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = tls.recv(min(n - len(buf), 65536))
            except ssl.SSLWantReadError:
                await self._wait(tls, False, deadline, "first_pdu_timeout", "no complete A-ASSOCIATE-RQ arrived")
                continue
            except ssl.SSLWantWriteError:
                await self._wait(tls, True, deadline, "first_pdu_timeout", "no complete A-ASSOCIATE-RQ arrived")
                continue
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
                chunk = b""
            except ssl.SSLError as exc:
                raise _Reject("not_tls", f"TLS error after the handshake: {exc.reason or exc}") from None
            if not chunk:
                if buf:
                    raise pdu.PDUError("short_pdu", f"the connection ended after {len(buf)} of {n} bytes", abort=None)
                return b""
            buf += chunk
        return bytes(buf)

    async def _wait(self, sock: socket.socket, write: bool, deadline: float, end: str, detail: str) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Reject(end, detail)
        fut = loop.create_future()
        fd = sock.fileno()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, ready)
        try:
            await asyncio.wait_for(fut, remaining)
        except asyncio.TimeoutError:
            raise _Reject(end, f"{detail} within {self.gen.config.handshake_timeout:g} s") from None
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)

    async def _send_all(self, tls: ssl.SSLSocket, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                n = tls.send(view)
                view = view[n:]
            except ssl.SSLWantWriteError:
                await self._wait(tls, True, deadline, "send_timeout", "the client did not take our reply")
            except ssl.SSLWantReadError:
                await self._wait(tls, False, deadline, "send_timeout", "the client did not take our reply")

    async def _close_tls(self, tls: ssl.SSLSocket, reply: bytes | None, deadline: float) -> None:
        """Send a reply PDU (A-ASSOCIATE-RJ / A-ABORT) if any, then close_notify, then close."""
        try:
            if reply:
                await self._send_all(tls, reply, deadline)
            try:
                tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        except (_Reject, ssl.SSLError, OSError, ValueError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    async def _dial(self, cfg: RuntimeConfig, service_name: str, rec: dict[str, Any]) -> tuple[socket.socket, Server]:
        """Connect to a server of the PACS: the least busy of those not marked down (ties in the plan's
        order), the next one if that fails; servers marked down get one quick dial last, so a
        recovery is seen at once. All failing: a transient A-ASSOCIATE-RJ naming each. The server
        returned counts as busy until the caller gives it back (self.busy[server] -= 1)."""
        svc = cfg.service(service_name)

        def down(m) -> bool:
            h = self.health.get((service_name, m.host, m.port))
            return h is not None and h.down

        healthy = [m for m in svc.members if not down(m)]
        order = sorted(healthy, key=lambda m: self.busy[(m.host, m.port)])  # stable: ties keep plan order
        order += [m for m in svc.members if down(m)]
        failed: list[str] = []
        why = ""
        for m in order:
            server: Server = (m.host, m.port)
            timeout = BACKEND_DOWN_CONNECT_TIMEOUT if down(m) else cfg.connect_timeout
            self.busy[server] += 1  # before the await, so concurrent arrivals spread out
            t = time.monotonic()
            try:
                s = await open_tcp(m.host, m.port, timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                self.busy[server] -= 1
                why = f"no answer within {timeout:g} s" if isinstance(exc, asyncio.TimeoutError) else reason(exc)
                self.counters["backend_failures"] += 1
                self._health_result((service_name, m.host, m.port), False, f"dial failed: {why}")
                failed.append(f"{m.address} ({why})")
                continue
            except BaseException:
                self.busy[server] -= 1
                raise
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rec["backend"] = m.address
            rec["backend_connect_ms"] = round((time.monotonic() - t) * 1000, 1)
            if failed:
                rec["backend_failed"] = failed  # tried first, in this order, and did not answer
            self._health_result((service_name, m.host, m.port), True, "dial ok")
            return s, server
        if len(svc.members) == 1:
            detail = f"PACS {svc.members[0].address} ({service_name}) is down: {why}"
        else:
            detail = f"every server of PACS {service_name} is down: {'; '.join(failed)}"
        raise _Reject("backend_unavailable", detail, pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION))

    # --- health -------------------------------------------------------------------------------------
    def _sync_health(self, cfg: RuntimeConfig) -> None:
        """One Health per member; a member still in the new config keeps its state and counters."""
        new: dict[tuple[str, str, int], Health] = {}
        for svc in cfg.services:
            for m in svc.members:
                key = (svc.name, m.host, m.port)
                new[key] = self.health.get(key) or Health(svc.name, m.host, m.port)
        self.health = new

    def _health_result(self, key: tuple[str, str, int], ok: bool, detail: str) -> None:
        h = self.health.get(key)
        if h is not None and h.record(ok, detail):
            self.events.emit("backend_health", service=h.service, host=h.host, port=h.port, state=h.state,
                             detail=detail)

    async def _health_loop(self) -> None:
        while True:
            cfg = self.gen.config
            for h in list(self.health.values()):
                # Real associations that reached this PACS server recently count as probes.
                if h.state == "up" and time.monotonic() - h.last_ok < cfg.health_interval:
                    continue
                h.probes += 1
                ok, detail = await probe(h.host, h.port, min(PROBE_TIMEOUT, cfg.connect_timeout))
                self._health_result((h.service, h.host, h.port), ok, detail)
            await asyncio.sleep(cfg.health_interval)

    # --- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        cfg = self.gen.config
        return {
            "pid": os.getpid(), "started": self.started, "generation": self.gen.number,
            "loaded": self.gen.loaded, "policy": cfg.policy, "policy_title": POLICIES[cfg.policy].title,
            "cert_fingerprint": cfg.cert_fingerprint, "draining": self.draining, "plan_path": cfg.plan_path,
            "last_reload_error": self.last_reload_error,
            "listeners": [{"name": lst.cfg.name, "ip": lst.cfg.ip, "port": lst.cfg.port,
                           "bound_port": _bound_port(lst.sock), "role": lst.cfg.role, "service": lst.cfg.service,
                           "state": "draining" if self.draining else "listening",
                           "allowed_calling_aes": lst.cfg.allowed_calling_aes,
                           "allowed_clients": lst.cfg.allowed_clients, "counters": dict(lst.counters),
                           "live": sum(1 for a in list(self.live.values()) if a.listener == lst.cfg.name)}
                          for lst in list(self.listeners.values())],
            "services": [{**h.as_dict(), "live": self.busy[(h.host, h.port)]} for h in list(self.health.values())],
            "associations": [a.as_dict() for a in list(self.live.values())],
            "counters": dict(self.counters),
        }


def _bound_port(s: socket.socket) -> int | None:
    try:
        return s.getsockname()[1]
    except OSError:
        return None


def _explain_tls(exc: ssl.SSLError) -> str:
    reason = exc.reason or ""
    hints = {
        "NO_SHARED_CIPHER": "the client offered none of the policy's cipher suites",
        "UNSUPPORTED_PROTOCOL": "the client's TLS version is not allowed by the policy",
        "WRONG_VERSION_NUMBER": "the client did not speak TLS (or an unsupported version)",
        "VERSION_TOO_LOW": "the client's TLS version is below the policy's minimum",
        "HTTP_REQUEST": "an HTTP request arrived on the DICOM-TLS port",
        "UNEXPECTED_EOF_WHILE_READING": "the client closed during the handshake",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the client does not trust our certificate",
        "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust our certificate's issuer",
        "SSLV3_ALERT_BAD_CERTIFICATE": "the client rejected our certificate",
    }
    return f"{reason or exc}: {hints[reason]}" if reason in hints else f"{reason or exc}"
