"""The simulated ADC's running configuration, its request log and fault switches."""

from __future__ import annotations

import copy
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from dicomtls.engine.rehearsal.nitro_sim.catalog import ATTRS, DEFAULT_USER, PROTOCOL_FLAGS, SSL_DIR, SSL_TYPES
from dicomtls.engine.rehearsal.nitro_sim.faults import ns_now


@dataclass
class LogEntry:
    """One request as the simulator saw it. Never the body: it may hold the password or a key."""

    seq: int
    method: str
    path: str
    query: str
    resource: str
    name: str | None
    auth: str  # "login", "session", "header", "none", "expired"
    write: bool
    status: int = 0
    errorcode: int = 0


@dataclass
class Faults:
    die_after_writes: int | None = None  # the Nth write is done, then the server dies without answering
    expire_sessions_at_request: int | None = None  # before request number N, every session is killed


class NitroState:
    """The simulated ADC's running configuration. All access under `lock`."""

    def __init__(self, username: str = DEFAULT_USER, password: str = "nsroot", *, default_profile: bool = False,
                 firmware: str = "14.1", ha: str | None = None, partition: str | None = None) -> None:
        self.lock = threading.RLock()
        self.users = {username: password}
        self.sessions: dict[str, float] = {}  # token -> expiry (monotonic)
        self.session_partition: dict[str, str] = {}  # token -> admin partition switched to
        self.session_timeout = 1800.0
        self.firmware = firmware  # the release imitated: "12.0", "13.1", "14.1", ...
        self.ha = ha  # None (standalone), "primary" or "secondary"
        self.ha_peer = "192.0.2.11" if ha else ""  # the other node's NSIP (documentation range, never contacted)
        self.ha_sync_failure = ""  # a primary's peer reports this as hasyncfailurereason ("" = in sync)
        self.partitions: set[str] = {partition} if partition else set()
        self.sslprofiles: dict[str, dict[str, Any]] = {}  # name -> {"sslprofiletype", flags...}
        self.profile_ciphers: dict[str, list[str]] = {}  # profile -> groups bound
        self.counters: dict[str, dict[str, int]] = {}  # lbvserver -> tothits, curclntconnections, ...
        self.features: set[str] = set()  # off at start, as the issue asks
        self.files: dict[str, dict[str, bytes]] = {SSL_DIR: {}, "/nsconfig": {}}
        self.certkeys: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, str] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.ciphergroups: dict[str, list[str]] = {}  # user groups: cipher names in priority order
        self.lbvservers: dict[str, dict[str, Any]] = {}
        self.lb_bindings: list[dict[str, Any]] = []  # {"name", "servicename", "weight"}
        self.servicegroups: dict[str, dict[str, Any]] = {}
        self.sg_members: dict[str, list[dict[str, Any]]] = {}  # group -> {"ip", "port", "servername", "state"}
        self.lb_group_bindings: list[dict[str, Any]] = []  # {"name", "servicegroupname"}
        self.sslvservers: dict[str, dict[str, Any]] = {}  # flags
        self.cert_bindings: list[dict[str, Any]] = []  # {"vservername", "certkeyname", "snicert", "ca"}
        self.cipher_bindings: dict[str, list[str]] = {}  # vserver -> groups/aliases/ciphers bound
        self.sslparameter = {"defaultprofile": "DISABLED"}
        if default_profile:
            self.enable_default_profile()
        self.configchanged = False
        self.lastconfigchangedtime = ""
        self.lastconfigsavetime = ""
        self.saves = 0
        self.log: list[LogEntry] = []
        self.requests = 0
        self.writes = 0
        self.faults = Faults()
        self.monitor_cache: dict[tuple[str, int], tuple[float, bool]] = {}
        self.monitor_interval = 1.0  # seconds a probe result is reused, like a monitor's interval

    # --- helpers for tests ------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def logins(self) -> list[LogEntry]:
        return [e for e in self.log if e.resource == "login"]

    def write_log(self) -> list[LogEntry]:
        return [e for e in self.log if e.write]

    @property
    def release(self) -> tuple[int, int]:
        major, _, minor = self.firmware.partition(".")
        return int(major), int(minor or 0)

    def flags_known(self) -> list[str]:
        """tls13 exists from 12.1 on (the 12.0 CLI reference's `set ssl vserver` has ssl2..tls12)."""
        return [f for f in PROTOCOL_FLAGS if not (f == "tls13" and self.release < (12, 1))]

    def attrs_for(self, resource: str) -> set[str]:
        attrs = ATTRS[resource]
        if resource in ("sslvserver", "sslprofile") and "tls13" not in self.flags_known():
            attrs = attrs - {"tls13"}
        return attrs

    @property
    def groups_as_suites(self) -> bool:
        """[UNVERIFIED] which releases list a vserver's cipher groups only under
        sslvserver_sslciphersuite_binding; 13.1 is made to, so the client's reading of both is exercised."""
        return self.release == (13, 1)

    def enable_default_profile(self) -> None:
        """`set ssl parameter -defaultProfile ENABLED`: the ADC's default profiles appear and every SSL
        vserver is bound to the front-end one (NetScaler docs "SSL profile infrastructure")."""
        self.sslparameter["defaultprofile"] = "ENABLED"
        for name, typ in (("ns_default_ssl_profile_frontend", "FrontEnd"), ("ns_default_ssl_profile_backend",
                                                                             "BackEnd")):
            flags = {f: "ENABLED" for f in self.flags_known() if f != "ssl3"} | {"ssl3": "DISABLED"}
            self.sslprofiles.setdefault(name, {"sslprofiletype": typ, **flags})
            self.profile_ciphers.setdefault(name, ["DEFAULT"])
        for vs in self.sslvservers.values():
            vs.setdefault("sslprofile", "ns_default_ssl_profile_frontend")

    def client_connected(self, vserver: str) -> None:
        """A connection from outside reached the vserver: its counters move, as `stat lb vserver` shows."""
        with self.lock:
            c = self.counters.setdefault(vserver, {"tothits": 0, "totalrequests": 0, "curclntconnections": 0,
                                                   "establishedconn": 0})
            c["tothits"] += 1
            c["totalrequests"] += 1
            c["establishedconn"] += 1

    def changed(self) -> None:
        self.configchanged = True
        self.lastconfigchangedtime = ns_now()

    # --- monitors ---------------------------------------------------------------------------------
    def svrstate(self, svc: dict[str, Any]) -> str:
        """A TCP monitor: a loopback target is probed for real; anything else is never contacted
        (the project's rule: only loopback addresses as network targets), so it shows DOWN."""
        if svc.get("state") == "DISABLED":
            return "OUT OF SERVICE"
        if "LB" not in self.features:
            return "DOWN"
        ip, port = svc["ipaddress"], int(svc["port"])
        try:
            loopback = ipaddress.ip_address(ip).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return "DOWN"
        now = time.monotonic()
        cached = self.monitor_cache.get((ip, port))
        if cached and now - cached[0] < self.monitor_interval:
            return "UP" if cached[1] else "DOWN"
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                up = True
        except OSError:
            up = False
        self.monitor_cache[(ip, port)] = (now, up)
        return "UP" if up else "DOWN"

    def vserver_state(self, name: str) -> tuple[str, str]:
        """(curstate, value): DOWN until a service is UP and, for SSL, a server certificate is bound."""
        vs = self.lbvservers[name]
        if vs.get("state") == "DISABLED":
            return "OUT OF SERVICE", ""
        if "LB" not in self.features:
            return "DOWN", ""
        if vs["servicetype"] in SSL_TYPES:
            if "SSL" not in self.features:
                return "DOWN", "SSL feature disabled"
            if not any(b["vservername"] == name and not b["ca"] for b in self.cert_bindings):
                return "DOWN", "Certkey not bound"
        return ("UP" if any(s == "UP" for s in self.bound_states(name)) else "DOWN"), ""

    def member_state(self, group: str, m: dict[str, Any]) -> str:
        sg = self.servicegroups[group]
        if sg.get("state") == "DISABLED":
            return "OUT OF SERVICE"
        return self.svrstate({"ipaddress": m["ip"], "port": m["port"], "state": m.get("state", "ENABLED")})

    def bound_states(self, name: str) -> list[str]:
        """svrstate of everything behind a vserver: its services and the members of its groups, as the ADC
        counts them in totalservices/activeservices."""
        out = [self.svrstate(self.services[b["servicename"]]) for b in self.lb_bindings if b["name"] == name]
        for b in self.lb_group_bindings:
            if b["name"] == name:
                g = b["servicegroupname"]
                out += [self.member_state(g, m) for m in self.sg_members.get(g, [])]
        return out


_SNAP_KEYS = ("features", "files", "certkeys", "servers", "services", "ciphergroups", "lbvservers", "lb_bindings",
              "servicegroups", "sg_members", "lb_group_bindings", "sslvservers", "cert_bindings", "cipher_bindings",
              "sslparameter", "sslprofiles", "profile_ciphers")


def take_snapshot(s: NitroState) -> dict[str, Any]:
    return {k: copy.deepcopy(getattr(s, k)) for k in _SNAP_KEYS}


def restore_snapshot(s: NitroState, snap: dict[str, Any]) -> None:
    for k, v in snap.items():
        setattr(s, k, v)
