"""The terminator: listeners, accept, health probes, reload, drain, status and metrics.

Control plane on asyncio; each accepted connection goes to admission.py (TLS handshake, the
A-ASSOCIATE-RQ gate, the dial to the PACS), and the bytes of a live association move in a pump
thread (pump.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator.admission import Admission, Live, Server
from dicomtls.engine.terminator.config import MAX_PENDING, PROBE_TIMEOUT, ListenerConfig, RuntimeConfig, StateFiles
from dicomtls.engine.terminator.control import start_control
from dicomtls.engine.terminator.events import EventLog
from dicomtls.engine.terminator.health import Health, forget_addresses, probe
from dicomtls.engine.terminator.metrics import Metrics
from dicomtls.engine.terminator.pump import abort_socket
from dicomtls.engine.terminator.pumploop import PumpLoop

LISTEN_BACKLOG = 512


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
    task: asyncio.Task[None] | None = None
    counters: dict[str, int] = field(default_factory=lambda: {"connections": 0, "associations": 0, "rejected": 0,
                                                              "probes": 0})

    @property
    def address(self) -> tuple[str, int]:
        return self.cfg.ip, self.cfg.port


def bind_listener(cfg: ListenerConfig) -> socket.socket:
    """A listening socket for one virtual server. No TCP_DEFER_ACCEPT: the kernel would hold a silent
    connection for handshake_timeout before accept() (man 7 tcp), and the handshake deadline, which counts
    from accept(), would then close it only after twice that. A probe that connects and closes without a
    byte is cheap to accept and is counted, not logged (admission.peek)."""
    family = socket.AF_INET6 if ipaddress.ip_address(cfg.ip).version == 6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cfg.ip, cfg.port))
        s.listen(LISTEN_BACKLOG)
        s.setblocking(False)
    except OSError as exc:
        s.close()
        raise UserError(f"cannot listen on {cfg.ip}:{cfg.port} for {cfg.name}: {exc.strerror}",
                        "stop the program using that port (`ss -ltnp`), or give the virtual server another "
                        "port; ports below 1024 need root or CAP_NET_BIND_SERVICE") from None
    return s


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
        self.pending: set[asyncio.Task[None]] = set()
        self.handlers: set[asyncio.Task[None]] = set()
        self.counters = {"connections": 0, "associations": 0, "rejected": 0, "probes": 0, "tls_failures": 0,
                         "gate_failures": 0, "backend_failures": 0, "reloads": 0, "reload_failures": 0}
        self.draining = False
        self.last_reload_error = ""
        self.started = time.time()
        self._ids = count(1)
        self._control_enabled = control
        self._control: asyncio.AbstractServer | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reload_lock = asyncio.Lock()
        self.admission = Admission(self)
        self.metrics = Metrics(self)
        self.pumps = PumpLoop()  # every live association's sockets, and the handshakes in progress

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.pumps.attach(self._loop)
        cfg = self.gen.config
        bound: list[Listener] = []
        try:
            for lc in cfg.listeners:
                bound.append(Listener(lc, bind_listener(lc)))
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
            self._control = await start_control(self.status, StateFiles(cfg.state_dir).control, cfg.status_port,
                                                 self.metrics.exposition)
        self.events.emit("started", pid=os.getpid(), generation=1, policy=cfg.policy,
                         cert_fingerprint=cfg.cert_fingerprint,
                         listeners=[f"{lc.name}={lc.ip}:{lc.port}->{lc.service}" for lc in cfg.listeners])

    async def reload(self, config: RuntimeConfig, context: ssl.SSLContext) -> bool:
        """Swap in a new configuration for new connections; live associations keep theirs.
        All-or-nothing: if a new listener cannot be bound, the old configuration stays."""
        async with self._reload_lock:
            if self.draining:
                return False
            forget_addresses()  # a reload resolves the PACS's host names again
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
                            new_socks[name] = bind_listener(lc)
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
            self.metrics.reloaded(True)
            self.metrics.allow(config)
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
            self._control = await start_control(self.status, StateFiles(cfg.state_dir).control, cfg.status_port,
                                                 self.metrics.exposition)
        except (OSError, UserError) as exc:
            self._control = None
            self.events.emit("control_failed", error=str(exc), status_port=cfg.status_port)

    def reload_failed(self, error: str, fix: str) -> None:
        self.counters["reload_failures"] += 1
        self.metrics.reloaded(False)
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
        self.pumps.close()
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
                self.count_reject(lst)
                self.events.emit("association", client=f"{addr[0]}:{addr[1]}", listener=lst.cfg.name,
                                 end="too_many_pending", detail=f"{MAX_PENDING} connections already in handshake")
                continue
            task = asyncio.create_task(self.admission.handle(conn, addr, lst, self.gen))
            self.pending.add(task)
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)
            task.add_done_callback(self.pending.discard)

    def next_id(self) -> int:
        return next(self._ids)

    def count_reject(self, lst: Listener) -> None:
        lst.counters["rejected"] += 1
        self.counters["rejected"] += 1

    # --- health -------------------------------------------------------------------------------------
    def _sync_health(self, cfg: RuntimeConfig) -> None:
        """One Health per member; a member still in the new config keeps its state and counters."""
        new: dict[tuple[str, str, int], Health] = {}
        for svc in cfg.services:
            for m in svc.members:
                key = (svc.name, m.host, m.port)
                new[key] = self.health.get(key) or Health(svc.name, m.host, m.port)
        self.health = new

    def health_result(self, key: tuple[str, str, int], ok: bool, detail: str) -> None:
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
                self.health_result((h.service, h.host, h.port), ok, detail)
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
        port: int = s.getsockname()[1]  # a listener: (host, port[, flowinfo, scope_id])
        return port
    except OSError:
        return None
