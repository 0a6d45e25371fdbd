"""One connection, from accept() to a live association: allowlist, TLS handshake with a deadline, the
first-PDU gate (a complete, well-formed A-ASSOCIATE-RQ), the calling-AE allowlist, the association
cap, the dial to a PACS server, then a pump on a pump loop until the association ends.

The PACS is dialled only once the A-ASSOCIATE-RQ has arrived over TLS, so port scanners,
load-balancer probes and idle TLS clients never reach it. A PACS on several servers (a service's
members): the least busy one not marked down, the next one if the dial fails.

Every connection that sent anything ends in exactly one JSON "association" record (events.py) and
one update of the metrics (metrics.py, at the end, never per byte); connections that close without
sending a byte (TCP probes) are only counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dicomtls.engine.terminator.pdu as pdu
from dicomtls.engine.terminator.config import (
    BACKEND_DOWN_CONNECT_TIMEOUT,
    HALF_CLOSE_IDLE,
    MAX_ASSOCIATIONS,
    ListenerConfig,
    MemberConfig,
    RuntimeConfig,
)
from dicomtls.engine.terminator.handshake import run_handshake
from dicomtls.engine.terminator.health import open_tcp, why
from dicomtls.engine.terminator.pump import Pump, abort_socket

if TYPE_CHECKING:
    from dicomtls.engine.terminator.server import Generation, Listener, Terminator

# A PACS server: (host, port). Health is kept per (service, host, port), load per server.
Server = tuple[str, int]


class Reject(Exception):
    """End the connection before the pump: `end` is the log's reason, `detail` the explanation."""

    def __init__(self, end: str, detail: str = "", reply: bytes | None = None) -> None:
        super().__init__(detail or end)
        self.end, self.detail, self.reply = end, detail, reply


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


def in_networks(ip: str, networks: list[str]) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in ipaddress.ip_network(n) for n in networks)


class Admission:
    """Admits the connections of one terminator; reads and updates its shared state (live, busy,
    health, counters, metrics)."""

    def __init__(self, term: Terminator) -> None:
        self.term = term

    async def handle(self, conn: socket.socket, addr: tuple[Any, ...], lst: Listener, gen: Generation) -> None:
        term, cfg, lc = self.term, gen.config, lst.cfg
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
            if lc.allowed_clients and not in_networks(addr[0], lc.allowed_clients):
                abort_socket(conn)
                raise Reject("client_not_allowed", f"{addr[0]} is outside allowed_clients {lc.allowed_clients}")
            opened = await self._tls(conn, lst, gen, t0 + cfg.handshake_timeout, rec)
            if opened is None:
                return  # a probe: connected and closed without a byte; counted, not logged
            tls = opened
            rq_bytes, rq = await self._first_pdu(tls, time.monotonic() + cfg.handshake_timeout, cfg)
            rec["calling_ae"], rec["called_ae"] = rq.calling_ae, rq.called_ae
            self._check_admissible(lc, rq)
            backend, server = await self._connect_pacs(cfg, lc.service, rq_bytes, rec)
        except Reject as rj:
            term.count_reject(lst)
            rec.update(end=rj.end, detail=rj.detail)
            if tls is not None:
                await close_tls(tls, rj.reply, time.monotonic() + 2.0, cfg.handshake_timeout)
            else:
                conn.close()
            self._emit_end(rec, t0)
            return
        except asyncio.CancelledError:  # draining: connections not yet associated are closed at once
            abort_socket(tls or conn)
            term.count_reject(lst)
            rec.update(end="draining", detail="the terminator shut down before the association started")
            self._emit_end(rec, t0)
            return
        except Exception as exc:  # a bug: close this one connection, keep serving the rest
            abort_socket(tls or conn)
            rec.update(end="error", detail=f"{type(exc).__name__}: {exc}")
            self._emit_end(rec, t0)
            return
        term.pending.discard(task)
        await self._pump(tls, backend, server, lst, cfg, rec, len(rq_bytes), t0)

    async def _tls(self, conn: socket.socket, lst: Listener, gen: Generation, deadline: float,
                   rec: dict[str, Any]) -> ssl.SSLSocket | None:
        """The TLS handshake, or None for a probe that closed without a byte."""
        term = self.term
        first = await peek(conn, deadline, gen.config.handshake_timeout)
        if first is None:
            lst.counters["probes"] += 1
            term.counters["probes"] += 1
            conn.close()
            return None
        if first != pdu.TLS_HANDSHAKE_RECORD:
            if 1 <= first <= 7:
                term.metrics.handshake_failed(lst.cfg.name, "plain_dicom")
                raise Reject("plaintext_dicom", "a plain (non-TLS) DICOM PDU arrived on the TLS port: the "
                             "caller is not using TLS; enable TLS on the calling side")
            term.metrics.handshake_failed(lst.cfg.name, "not_tls")
            raise Reject("not_tls", f"first byte 0x{first:02x} is not a TLS handshake record")
        tls = gen.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False,
                                      suppress_ragged_eofs=False)
        try:
            await self._handshake(tls, deadline, gen.config.handshake_timeout)
        except Reject as rj:
            term.metrics.handshake_failed(lst.cfg.name, handshake_reason(rj))
            tls.close()  # wrap_socket took conn's descriptor: closing conn would not close it
            raise
        except asyncio.CancelledError:
            abort_socket(tls)
            raise
        rec["tls_version"], rec["cipher"] = tls.version(), (tls.cipher() or ("",))[0]
        return tls

    def _check_admissible(self, lc: ListenerConfig, rq: pdu.AssociateRQ) -> None:
        term = self.term
        if lc.allowed_calling_aes and rq.calling_ae not in lc.allowed_calling_aes:
            raise Reject("calling_ae_refused", f"calling AE {rq.calling_ae!r} is not in allowed_calling_aes",
                         pdu.associate_rj(*pdu.RJ_CALLING_AE_NOT_RECOGNIZED))
        # Associations being dialled hold a slot too, or concurrent arrivals would overshoot the cap.
        if len(term.live) + term.admitting >= MAX_ASSOCIATIONS:
            raise Reject("too_many_associations", f"{MAX_ASSOCIATIONS} associations are live",
                         pdu.associate_rj(*pdu.RJ_LOCAL_LIMIT_EXCEEDED))
        if term.draining:
            raise Reject("draining", "the terminator is shutting down",
                         pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION))

    async def _connect_pacs(self, cfg: RuntimeConfig, service: str, rq_bytes: bytes,
                            rec: dict[str, Any]) -> tuple[socket.socket, Server]:
        """Dial a PACS server and hand it the A-ASSOCIATE-RQ. The server counts as busy until the
        association ends."""
        term = self.term
        term.admitting += 1
        try:
            backend, server = await self.dial(cfg, service, rec)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(backend, rq_bytes), cfg.connect_timeout)
            except BaseException as exc:
                abort_socket(backend)
                term.busy[server] -= 1
                if not isinstance(exc, (OSError, asyncio.TimeoutError)):
                    raise
                raise Reject("backend_failed", f"the PACS closed before taking the A-ASSOCIATE-RQ: {exc}",
                             pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION)) from None
            return backend, server
        finally:
            term.admitting -= 1  # from here to term.live[...] in _pump there is no await

    async def _pump(self, tls: ssl.SSLSocket, backend: socket.socket, server: Server, lst: Listener,
                    cfg: RuntimeConfig, rec: dict[str, Any], rq_len: int, t0: float) -> None:
        """The association is admitted: both sockets go to a pump loop (pumploop.py) until it ends."""
        term, lc = self.term, lst.cfg
        lst.counters["associations"] += 1
        term.counters["associations"] += 1
        pump = Pump(tls, backend, cfg.idle_timeout, HALF_CLOSE_IDLE)
        if lc.role == "worklist":  # count the items the PACS returns (store listeners: no extra work)
            pump.down_pdus = pdu.ItemTracker()
        live = Live(term.next_id(), rec["client"], lc.name, lc.service, rec["calling_ae"], rec["called_ae"],
                    rec["tls_version"], rec["cipher"], time.time(), pump, rec["backend"])
        term.live[live.id] = live
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()

        def finish(end: str) -> None:
            if not done.done():
                done.set_result(end)

        pump.on_done = finish  # the pump loop runs on this thread
        term.pumps.add(pump)
        try:
            end = await asyncio.shield(done)
        except asyncio.CancelledError:
            pump.abort("shutdown")
            end = await done
        finally:
            term.live.pop(live.id, None)
            term.busy[server] -= 1
        rec.update(outcome=pdu.outcome(pump.up_pdus, pump.down_pdus), end=end, closed_first=pump.closed_first,
                   client_close=pump.client_close, bytes_from_client=pump.bytes_up + rq_len,
                   bytes_to_client=pump.bytes_down, pdus_from_client=pump.up_pdus.pdus + 1,
                   pdus_to_client=pump.down_pdus.pdus)
        if isinstance(pump.down_pdus, pdu.ItemTracker):
            rec["items_to_client"] = pump.down_pdus.items
        self._emit_end(rec, t0)

    def _emit_end(self, rec: dict[str, Any], t0: float) -> None:
        rec["seconds"] = round(time.monotonic() - t0, 3)
        self.term.metrics.association_ended(rec)
        self.term.events.emit("association", **rec)

    async def _handshake(self, tls: ssl.SSLSocket, deadline: float, limit: float) -> None:
        job = await run_handshake(tls, deadline, self.term.pumps)
        if job.end == "ok":
            return
        if job.end == "timeout":
            raise Reject("handshake_timeout", f"the TLS handshake did not finish within {limit:g} s")
        self.term.counters["tls_failures"] += 1
        if isinstance(job.error, ssl.SSLError):
            raise Reject("tls_handshake_failed", explain_tls(job.error))
        raise Reject("tls_handshake_failed", f"connection lost during the handshake: {job.error}")

    async def _first_pdu(self, tls: ssl.SSLSocket, deadline: float,
                         cfg: RuntimeConfig) -> tuple[bytes, pdu.AssociateRQ]:
        try:
            header = await recv_exact(tls, pdu.HEADER_LEN, deadline, cfg.handshake_timeout)
            if not header:
                raise Reject("closed_before_associate", "TLS was set up but no DICOM PDU followed (a TLS probe?)")
            length = pdu.check_header(header)
            body = await recv_exact(tls, length, deadline, cfg.handshake_timeout)
            return header + body, pdu.parse_associate_rq(header + body)
        except pdu.PDUError as exc:
            self.term.counters["gate_failures"] += 1
            raise Reject(exc.code, str(exc), pdu.a_abort(*exc.abort) if exc.abort else None) from None

    async def dial(self, cfg: RuntimeConfig, service_name: str, rec: dict[str, Any]) -> tuple[socket.socket, Server]:
        """Connect to a server of the PACS: the least busy of those not marked down (ties in the plan's
        order), the next one if that fails; servers marked down get one quick dial last, so a
        recovery is seen at once. All failing: a transient A-ASSOCIATE-RJ naming each. The server
        returned counts as busy until the caller gives it back (term.busy[server] -= 1)."""
        term = self.term
        svc = cfg.service(service_name)

        def down(m: MemberConfig) -> bool:
            h = term.health.get((service_name, m.host, m.port))
            return h is not None and h.down

        healthy = [m for m in svc.members if not down(m)]
        order = sorted(healthy, key=lambda m: term.busy[(m.host, m.port)])  # stable: ties keep plan order
        order += [m for m in svc.members if down(m)]
        failed: list[str] = []
        reason = ""
        for m in order:
            server: Server = (m.host, m.port)
            timeout = BACKEND_DOWN_CONNECT_TIMEOUT if down(m) else cfg.connect_timeout
            term.busy[server] += 1  # before the await, so concurrent arrivals spread out
            t = time.monotonic()
            try:
                s = await open_tcp(m.host, m.port, timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                term.busy[server] -= 1
                reason = f"no answer within {timeout:g} s" if isinstance(exc, asyncio.TimeoutError) else why(exc)
                term.counters["backend_failures"] += 1
                term.health_result((service_name, m.host, m.port), False, f"dial failed: {reason}")
                failed.append(f"{m.address} ({reason})")
                continue
            except BaseException:
                term.busy[server] -= 1
                raise
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rec["backend"] = m.address
            rec["backend_connect_ms"] = round((time.monotonic() - t) * 1000, 1)
            if failed:
                rec["backend_failed"] = failed  # tried first, in this order, and did not answer
            term.health_result((service_name, m.host, m.port), True, "dial ok")
            return s, server
        if len(svc.members) == 1:
            detail = f"PACS {svc.members[0].address} ({service_name}) is down: {reason}"
        else:
            detail = f"every server of PACS {service_name} is down: {'; '.join(failed)}"
        raise Reject("backend_unavailable", detail, pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION))


# --- non-blocking socket steps with a deadline ---------------------------------------------------

async def wait_io(sock: socket.socket, write: bool, deadline: float, end: str, detail: str, limit: float) -> None:
    """Wait until sock is readable (or writable); Reject(end) once the deadline has passed."""
    loop = asyncio.get_running_loop()
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Reject(end, detail)
    fut = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, ready)
    try:
        await asyncio.wait_for(fut, remaining)
    except asyncio.TimeoutError:
        raise Reject(end, f"{detail} within {limit:g} s") from None
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def peek(conn: socket.socket, deadline: float, limit: float) -> int | None:
    """First byte without consuming it; None if the peer closed (or reset) without sending any."""
    while True:
        try:
            b = conn.recv(1, socket.MSG_PEEK)
            return b[0] if b else None
        except BlockingIOError:
            await wait_io(conn, False, deadline, "handshake_timeout", "no TLS ClientHello arrived", limit)
        except OSError:
            return None


async def recv_exact(tls: ssl.SSLSocket, n: int, deadline: float, limit: float) -> bytes:
    """n bytes, or fewer if the peer closed (b"" if it closed before the first)."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = tls.recv(min(n - len(buf), 65536))
        except ssl.SSLWantReadError:
            await wait_io(tls, False, deadline, "first_pdu_timeout", "no complete A-ASSOCIATE-RQ arrived", limit)
            continue
        except ssl.SSLWantWriteError:
            await wait_io(tls, True, deadline, "first_pdu_timeout", "no complete A-ASSOCIATE-RQ arrived", limit)
            continue
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
            chunk = b""
        except ssl.SSLError as exc:
            raise Reject("not_tls", f"TLS error after the handshake: {exc.reason or exc}") from None
        if not chunk:
            if buf:
                raise pdu.PDUError("short_pdu", f"the connection ended after {len(buf)} of {n} bytes", abort=None)
            return b""
        buf += chunk
    return bytes(buf)


async def send_all(tls: ssl.SSLSocket, data: bytes, deadline: float, limit: float) -> None:
    view = memoryview(data)
    while view:
        try:
            n = tls.send(view)
            view = view[n:]
        except ssl.SSLWantWriteError:
            await wait_io(tls, True, deadline, "send_timeout", "the client did not take our reply", limit)
        except ssl.SSLWantReadError:
            await wait_io(tls, False, deadline, "send_timeout", "the client did not take our reply", limit)


async def close_tls(tls: ssl.SSLSocket, reply: bytes | None, deadline: float, limit: float) -> None:
    """Send a reply PDU (A-ASSOCIATE-RJ / A-ABORT) if any, then close_notify, then close."""
    try:
        if reply:
            await send_all(tls, reply, deadline, limit)
        try:
            tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
    except (Reject, ssl.SSLError, OSError, ValueError):
        pass
    finally:
        try:
            tls.close()
        except OSError:
            pass


# OpenSSL reason codes -> what they mean for the operator; and -> the metric's bounded reason label.
_TLS_HINTS = {
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
_TLS_REASON_LABEL = {
    "NO_SHARED_CIPHER": "cipher",
    "UNSUPPORTED_PROTOCOL": "protocol", "WRONG_VERSION_NUMBER": "protocol", "VERSION_TOO_LOW": "protocol",
    "HTTP_REQUEST": "not_tls",
    "UNEXPECTED_EOF_WHILE_READING": "closed",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate", "TLSV1_ALERT_UNKNOWN_CA": "certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "certificate",
}


def explain_tls(exc: ssl.SSLError) -> str:
    code = exc.reason or ""
    return f"{code or exc}: {_TLS_HINTS[code]}" if code in _TLS_HINTS else f"{code or exc}"


def handshake_reason(rj: Reject) -> str:
    """The handshake-failure metric's reason: timeout, protocol, cipher, certificate, closed, not_tls, other."""
    if rj.end == "handshake_timeout":
        return "timeout"
    code = rj.detail.split(":", 1)[0]
    if code in _TLS_REASON_LABEL:
        return _TLS_REASON_LABEL[code]
    return "closed" if rj.detail.startswith("connection lost") else "other"
