"""A stateful NITRO simulator, served over real HTTP(S) on loopback with the standard library.

NetScaler cannot run here, so the client, the reconciler, the CLI and the wizard's `--demo
--backend netscaler` all talk to this instead. It follows ../shared/research/nitro.md (cited as §n)
down to status lines and error codes: login with a NITRO_AUTH_TOKEN cookie (§2), features off at
start (§3), systemfile without overwrite (§4), sslcertkey refusing a missing file or a key that does
not match (§5), an SSL_TCP lbvserver auto-creating its sslvserver with DEFAULT bound and curstate
DOWN until a service (or a service group with a member) that is UP and a certificate are bound (§9),
service groups with members by IP creating `server` objects and the 273/258/351/1092/1093 refusals
(§7, §15), numbers as strings in GETs and empty collections omitting the key (§1), the Default SSL
Profile refusals 3740/3679 (§10.2), bulk array payloads with 207 Multi Status (§13). Points the notes
mark [UNVERIFIED] are marked so here too.

Tests get a handle with the URL, the management certificate's fingerprint, the state (for
checking object by object), a request log (never holding bodies, so never a password), and fault
switches: expire sessions at request N, die after N writes, the Default SSL Profile, an older
firmware that does not know `tls13`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from engine.ciphers import SUITES

DEFAULT_USER = "nsroot"
SSL_DIR = "/nsconfig/ssl"

REASONS = {200: "OK", 201: "Created", 207: "Multi Status", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 599: "Netscaler specific error"}

# Built-in cipher-suite names the simulated ADC knows (§8.1), plus every name of our policy table.
KNOWN_CIPHERS = {
    "TLS1-AES-128-CBC-SHA", "TLS1-AES-256-CBC-SHA", "TLS1-DHE-RSA-AES-128-CBC-SHA", "TLS1-ECDHE-RSA-AES128-SHA",
    "TLS1-ECDHE-RSA-AES256-SHA", "TLS1.2-AES-128-SHA256", "TLS1.2-AES-256-SHA256", "TLS1.2-AES128-GCM-SHA256",
    "TLS1.2-AES256-GCM-SHA384", "TLS1.2-DHE-RSA-AES-128-SHA256", "TLS1.2-DHE-RSA-AES-256-SHA256",
    "TLS1.2-DHE-RSA-AES128-GCM-SHA256", "TLS1.2-DHE-RSA-AES256-GCM-SHA384", "TLS1.2-DHE-RSA-CHACHA20-POLY1305",
    "TLS1.2-ECDHE-ECDSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-ECDSA-AES128-SHA256",
    "TLS1.2-ECDHE-ECDSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-ECDSA-AES256-SHA384",
    "TLS1.2-ECDHE-ECDSA-CHACHA20-POLY1305", "TLS1.2-ECDHE-RSA-AES-128-SHA256", "TLS1.2-ECDHE-RSA-AES-256-SHA384",
    "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-RSA-AES256-GCM-SHA384",
    "TLS1.2-ECDHE-RSA-CHACHA20-POLY1305", "TLS1.3-AES128-GCM-SHA256", "TLS1.3-AES256-GCM-SHA384",
    "TLS1.3-CHACHA20-POLY1305-SHA256",
} | {s.netscaler for s in SUITES.values()}

# Predefined groups/aliases (§8.1): read-only; DEFAULT is bound to new SSL vservers.
BUILTIN_GROUPS: dict[str, list[str]] = {
    "DEFAULT": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
                "TLS1.2-ECDHE-RSA-AES-256-SHA384", "TLS1.2-ECDHE-RSA-AES-128-SHA256",
                "TLS1-ECDHE-RSA-AES256-SHA", "TLS1-ECDHE-RSA-AES128-SHA", "TLS1-AES-256-CBC-SHA",
                "TLS1-AES-128-CBC-SHA"],
    "DEFAULT_BACKEND": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
                        "TLS1-AES-256-CBC-SHA", "TLS1-AES-128-CBC-SHA"],
    "HIGH": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
             "TLS1.2-AES256-GCM-SHA384", "TLS1.2-AES128-GCM-SHA256"],
    "ECDHE": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
              "TLS1.2-ECDHE-ECDSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-ECDSA-AES128-GCM-SHA256"],
}

FEATURES = ["WL", "SP", "LB", "CS", "CR", "SC", "CMP", "PQ", "SSL", "GSLB", "HDOSP", "ROUTING", "CF", "IC",
            "SSLVPN", "AAA", "REWRITE", "RESPONDER"]
FEATURE_ALIASES = {"LOADBALANCING": "LB", "SSLOFFLOAD": "SSL", "SSLOFFLOADING": "SSL", "CONTENTSWITCHING": "CS"}

SERVICE_TYPES = {"HTTP", "FTP", "TCP", "UDP", "SSL", "SSL_BRIDGE", "SSL_TCP", "DTLS", "NNTP", "RPCSVR", "DNS",
                 "ADNS", "SNMP", "RTSP", "DHCPRA", "ANY", "SIP_UDP", "USER_TCP", "USER_SSL_TCP", "QUIC"}
SSL_TYPES = {"SSL", "SSL_TCP", "SSL_BRIDGE"}
FLAG_VALUES = {"ENABLED", "DISABLED"}

# Attributes each resource accepts in a request body; anything else is 278 "Invalid argument" (§12.3:
# the code for an unknown attribute is [UNVERIFIED]; 278 is the commonly assumed one).
ATTRS: dict[str, set[str]] = {
    "login": {"username", "password", "timeout", "new_password"},
    "logout": set(),
    "nsfeature": {"feature"},
    "systemfile": {"filename", "filelocation", "filecontent", "fileencoding"},
    "sslcertkey": {"certkey", "cert", "key", "inform", "passplain", "password", "expirymonitor",
                   "notificationperiod", "bundle", "nodomaincheck", "linkcertkeyname"},
    "service": {"name", "ip", "ipaddress", "servername", "servicetype", "port", "monconnectionclose",
                "healthmonitor", "state", "comment"},
    "sslcipher": {"ciphergroupname", "ciphgrpalias"},
    "sslcipher_sslciphersuite_binding": {"ciphergroupname", "ciphername", "cipherpriority"},
    "lbvserver": {"name", "servicetype", "ipv46", "port", "lbmethod", "comment", "clttimeout", "state"},
    "lbvserver_service_binding": {"name", "servicename", "weight"},
    "servicegroup": {"servicegroupname", "servicetype", "monconnectionclose", "healthmonitor", "state", "comment"},
    "servicegroup_servicegroupmember_binding": {"servicegroupname", "ip", "servername", "port", "weight", "state",
                                                "customserverid", "serverid", "hashid"},
    "lbvserver_servicegroup_binding": {"name", "servicegroupname", "weight"},
    "sslvserver_sslcertkey_binding": {"vservername", "certkeyname", "snicert", "ca", "crlcheck", "ocspcheck",
                                      "skipcaname"},
    "sslvserver_sslcipher_binding": {"vservername", "ciphername"},
    "sslvserver": {"vservername", "ssl3", "tls1", "tls11", "tls12", "tls13", "dh", "dhfile", "ersa",
                   "sessreuse", "sesstimeout", "snienable"},
    "sslparameter": {"defaultprofile"},
    "nsconfig": {"all"},
    "systemsession": {"sid"},
}
PROTOCOL_FLAGS = ["ssl3", "tls1", "tls11", "tls12", "tls13"]


class Fault(Exception):
    """A NITRO error response: HTTP status, NITRO errorcode and message (bracketed detail as newer firmware)."""

    def __init__(self, http: int, code: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.http, self.code = http, code
        self.message = f"{message} [{detail}]" if detail else message

    def body(self) -> dict[str, Any]:
        return {"errorcode": self.code, "message": self.message, "severity": "ERROR"}


def _missing(what: str, name: str) -> Fault:
    return Fault(404, 258, "No such resource", f"{what}, {name}")


def _exists(what: str, name: str) -> Fault:
    return Fault(409, 273, "Resource already exists", f"{what}, {name}")


def _argmissing(arg: str) -> Fault:
    return Fault(400, 1095, "Required argument missing", arg)


def _invalid(arg: str) -> Fault:
    return Fault(599, 278, "Invalid argument", arg)


def _nsdate(t: dt.datetime) -> str:
    """OpenSSL's text form, as `show ssl certKey` prints validity dates."""
    return t.astimezone(dt.timezone.utc).strftime("%b %e %H:%M:%S %Y GMT")


def _now() -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime())


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
                 firmware: str = "14.1") -> None:
        self.lock = threading.RLock()
        self.users = {username: password}
        self.sessions: dict[str, float] = {}  # token -> expiry (monotonic)
        self.session_timeout = 1800.0
        self.firmware = firmware
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
        self.sslparameter = {"defaultprofile": "ENABLED" if default_profile else "DISABLED"}
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

    def flags_known(self) -> list[str]:
        return [f for f in PROTOCOL_FLAGS if not (f == "tls13" and self.firmware.startswith("12."))]

    def attrs_for(self, resource: str) -> set[str]:
        attrs = ATTRS[resource]
        if resource == "sslvserver" and "tls13" not in self.flags_known():
            attrs = attrs - {"tls13"}
        return attrs

    def changed(self) -> None:
        self.configchanged = True
        self.lastconfigchangedtime = _now()

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


# --- the API ----------------------------------------------------------------------------------------

def _one(body: Any, resource: str) -> list[dict[str, Any]]:
    """The items of a request body: `{"<type>": {...}}` or `{"<type>": [{...}, ...]}` (§1, §13)."""
    if not isinstance(body, dict) or resource not in body:
        raise Fault(400, 1233, "Invalid JSON input", f"expected {{\"{resource}\": ...}}")
    items = body[resource]
    if isinstance(items, dict):
        return [items]
    if isinstance(items, list) and all(isinstance(i, dict) for i in items):
        return items
    raise Fault(400, 1234, "Invalid JSON data type", resource)


def _flag(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("true", "yes"))


def _args(raw: str) -> dict[str, str]:
    """`args=k:v,k2:v2` with single-encoded values (§1)."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part:
            continue
        k, _, v = part.partition(":")
        out[unquote(k).lower()] = unquote(v)
    return out


def _project(rows: list[dict[str, Any]], attrs: str | None) -> list[dict[str, Any]]:
    if not attrs:
        return rows
    keep = {a.strip().lower() for a in attrs.split(",")}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]


class Api:
    """Request dispatch over a NitroState: method + resource -> handler; raises Fault."""

    def __init__(self, state: NitroState) -> None:
        self.s = state

    # ---- GET ------------------------------------------------------------------------------------
    def get(self, resource: str, name: str | None, q: dict[str, str]) -> dict[str, Any]:
        args = _args(q.get("args", ""))
        flt = _args(q.get("filter", ""))
        fn = getattr(self, f"get_{resource}", None)
        if fn is None:
            raise Fault(400, 1232, "Invalid object name", resource)
        result = fn(name, args, q)
        if isinstance(result, dict):  # singletons come back as an object (§1 [DISAGREE]: GO vs DOC12)
            return {resource: result}
        rows = [r for r in result if all(str(r.get(k, "")) == v for k, v in flt.items())]
        rows = _project(rows, q.get("attrs"))
        return {resource: rows} if rows else {}  # empty collections omit the key (§1)

    def get_nsfeature(self, name, args, q):
        out: dict[str, Any] = {"feature": sorted(self.s.features)}
        out.update({f.lower(): f in self.s.features for f in FEATURES})
        return out

    def get_systemfile(self, name, args, q):
        loc = args.get("filelocation")
        if not loc:
            raise _argmissing("filelocation")
        loc = loc.rstrip("/") or "/"
        folder = self.s.files.get(loc)
        if folder is None:
            raise Fault(599, 1155, "No such file", loc)
        if name is None:
            return [{"filename": n, "filelocation": loc, "filesize": str(len(c)), "filemode": [],
                     "filemodifiedtime": _now()} for n, c in sorted(folder.items())]
        if name not in folder:
            # [UNVERIFIED] code for a missing file; DOC12 lists 1155 NSERR_NOSUCHFILE.
            raise Fault(599, 1155, "No such file", f"{loc}/{name}")
        return [{"filename": name, "filelocation": loc, "filecontent": base64.b64encode(folder[name]).decode(),
                 "fileencoding": "BASE64", "filesize": str(len(folder[name]))}]

    def get_sslcertkey(self, name, args, q):
        if name is not None:
            if name not in self.s.certkeys:
                raise _missing("certkey", name)
            return [self._certkey_row(self.s.certkeys[name])]
        return [self._certkey_row(ck) for ck in self.s.certkeys.values()]

    def _certkey_row(self, ck: dict[str, Any]) -> dict[str, Any]:
        days = (ck["notafter"] - dt.datetime.now(dt.timezone.utc)).days
        return {"certkey": ck["certkey"], "cert": ck["cert"], "key": ck["key"], "inform": "PEM",
                "signaturealg": ck["signaturealg"], "certificatetype": ["SRVR_CERT"], "serial": ck["serial"],
                "issuer": ck["issuer"], "subject": ck["subject"],
                "clientcertnotbefore": _nsdate(ck["notbefore"]), "clientcertnotafter": _nsdate(ck["notafter"]),
                "daystoexpiration": days, "publickey": ck["publickey"], "publickeysize": ck["publickeysize"],
                "version": 3, "status": "Valid" if days >= 0 else "Expired", "passcrypt": "",
                "expirymonitor": ck.get("expirymonitor", "ENABLED"),
                "notificationperiod": str(ck.get("notificationperiod", 30))}

    def get_server(self, name, args, q):
        rows = [{"name": n, "ipaddress": ip, "state": "ENABLED"} for n, ip in self.s.servers.items()]
        if name is not None:
            rows = [r for r in rows if r["name"] == name]
            if not rows:
                raise _missing("name", name)
        return rows

    def get_service(self, name, args, q):
        names = [name] if name is not None else list(self.s.services)
        if name is not None and name not in self.s.services:
            raise _missing("name", name)
        rows = []
        for n in names:
            svc = self.s.services[n]
            rows.append({"name": n, "servername": svc["servername"], "ipaddress": svc["ipaddress"],
                         "port": svc["port"], "servicetype": svc["servicetype"],
                         "monconnectionclose": svc["monconnectionclose"], "svrstate": self.s.svrstate(svc),
                         "state": svc.get("state", "ENABLED"), "healthmonitor": svc.get("healthmonitor", "YES"),
                         "maxclient": "0", "numofconnections": 0, "statechangetimesec": _now()})
        return rows

    def get_sslcipher(self, name, args, q):
        rows = [{"ciphergroupname": g, "description": "Predefined Cipher Alias"} for g in BUILTIN_GROUPS]
        rows += [{"ciphergroupname": g, "description": "User Created Cipher Group"} for g in self.s.ciphergroups]
        if name is not None:
            rows = [r for r in rows if r["ciphergroupname"] == name]
            if not rows:
                raise _missing("ciphergroupname", name)
        return rows

    def get_sslcipher_sslciphersuite_binding(self, name, args, q):
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise _argmissing("ciphergroupname")
            groups = list(self.s.ciphergroups)
        else:
            groups = [name]
        rows = []
        for g in groups:
            ciphers = self.s.ciphergroups.get(g, BUILTIN_GROUPS.get(g))
            if ciphers is None:
                raise _missing("ciphergroupname", g)
            rows += [{"ciphergroupname": g, "ciphername": c, "cipherpriority": str(i + 1), "description": c}
                     for i, c in enumerate(ciphers)]
        return rows

    def get_lbvserver(self, name, args, q):
        if name is not None and name not in self.s.lbvservers:
            raise _missing("name", name)
        rows = []
        for n in ([name] if name else list(self.s.lbvservers)):
            vs = self.s.lbvservers[n]
            cur, value = self.s.vserver_state(n)
            bound = self.s.bound_states(n)
            active = sum(1 for st in bound if st == "UP")
            row = {"name": n, "ipv46": vs["ipv46"], "port": vs["port"], "servicetype": vs["servicetype"],
                   "curstate": cur, "effectivestate": cur, "state": vs.get("state", "ENABLED"),
                   "lbmethod": vs.get("lbmethod", "LEASTCONNECTION"), "totalservices": str(len(bound)),
                   "activeservices": str(active), "health": str(100 * active // len(bound) if bound else 0),
                   "clttimeout": str(vs.get("clttimeout", 9000)), "status": 0, "range": "1",
                   "statechangetimesec": _now()}
            if value:
                row["value"] = value
            rows.append(row)
        return rows

    def get_lbvserver_service_binding(self, name, args, q):
        if name is None and q.get("bulkbindings") != "yes":
            raise _argmissing("name")
        if name is not None and name not in self.s.lbvservers:
            raise _missing("name", name)
        rows = []
        for b in self.s.lb_bindings:
            if name is not None and b["name"] != name:
                continue
            svc = self.s.services[b["servicename"]]
            rows.append({"name": b["name"], "servicename": b["servicename"], "ipv46": svc["ipaddress"],
                         "port": svc["port"], "servicetype": svc["servicetype"], "curstate": self.s.svrstate(svc),
                         "weight": str(b["weight"]), "dynamicweight": "0", "vsvrbindsvcip": svc["ipaddress"],
                         "vsvrbindsvcport": svc["port"]})
        return rows

    def get_lbvserver_binding(self, name, args, q):
        names = self._binding_names(name, q, self.s.lbvservers, "name")
        out = []
        for n in names:
            row: dict[str, Any] = {"name": n}
            for key, rows in (("lbvserver_service_binding", self.get_lbvserver_service_binding(n, {}, {})),
                              ("lbvserver_servicegroup_binding", self.get_lbvserver_servicegroup_binding(n, {}, {})),
                              ("lbvserver_servicegroupmember_binding",
                               self.get_lbvserver_servicegroupmember_binding(n, {}, {}))):
                if rows:  # empty binding types are left out, as empty collections are (§1)
                    row[key] = rows
            out.append(row)
        return out

    def get_servicegroup(self, name, args, q):
        if name is not None and name not in self.s.servicegroups:
            raise _missing("servicegroupname", name)
        rows = []
        for n in ([name] if name is not None else list(self.s.servicegroups)):
            sg = self.s.servicegroups[n]
            states = [self.s.member_state(n, m) for m in self.s.sg_members.get(n, [])]
            up = sum(1 for st in states if st == "UP")
            if sg.get("state") == "DISABLED" or (states and all(st == "OUT OF SERVICE" for st in states)):
                effective = "OUT OF SERVICE"
            else:  # DOC12: all UP -> UP, some UP -> PARTIAL-UP, none -> DOWN
                effective = "UP" if states and up == len(states) else "PARTIAL-UP" if up else "DOWN"
            rows.append({"servicegroupname": n, "servicetype": sg["servicetype"], "td": "0",
                         "monconnectionclose": sg["monconnectionclose"], "state": sg.get("state", "ENABLED"),
                         "svrstate": "UP" if up else "DOWN", "servicegroupeffectivestate": effective,
                         "healthmonitor": sg.get("healthmonitor", "YES"), "numofconnections": 0,
                         "serviceconftype": True, "svcitmactsvcs": str(up), "svcitmboundsvcs": str(len(states)),
                         "maxclient": "0", "maxreq": "0", "statechangetimesec": _now()})
        return rows

    def _member_rows(self, g: str) -> list[dict[str, Any]]:
        return [{"servicegroupname": g, "ip": m["ip"], "port": m["port"], "servername": m["servername"],
                 "state": m.get("state", "ENABLED"), "svrstate": self.s.member_state(g, m), "weight": "1",
                 "customserverid": "None", "serverid": 0, "hashid": "0", "graceful": "NO",
                 "statechangetimesec": _now(), "tickssincelaststatechange": "0"}
                for m in self.s.sg_members.get(g, [])]

    def get_servicegroup_servicegroupmember_binding(self, name, args, q):
        # DOC12 documents only GET by group name; bulkbindings=yes is accepted as for the other bindings.
        return [r for g in self._binding_names(name, q, self.s.servicegroups, "servicegroupname")
                for r in self._member_rows(g)]

    def get_lbvserver_servicegroup_binding(self, name, args, q):
        names = self._binding_names(name, q, self.s.lbvservers, "name")
        return [{"name": b["name"], "servicegroupname": b["servicegroupname"], "servicename": b["servicegroupname"],
                 "stateflag": "536936464"}  # both keys, as the DOC12 bulk example shows
                for b in self.s.lb_group_bindings if b["name"] in names]

    def get_lbvserver_servicegroupmember_binding(self, name, args, q):
        names = self._binding_names(name, q, self.s.lbvservers, "name")
        rows = []
        for b in self.s.lb_group_bindings:
            if b["name"] not in names:
                continue
            g = b["servicegroupname"]
            for m in self.s.sg_members.get(g, []):
                rows.append({"name": b["name"], "servicegroupname": g, "ipv46": m["ip"], "port": m["port"],
                             "servicetype": self.s.servicegroups[g]["servicetype"],
                             "curstate": self.s.member_state(g, m), "weight": "1", "dynamicweight": "0"})
        return rows

    def get_sslvserver(self, name, args, q):
        if name is not None and name not in self.s.sslvservers:
            raise _missing("vservername", name)
        rows = []
        for n in ([name] if name else list(self.s.sslvservers)):
            flags = self.s.sslvservers[n]
            row = {"vservername": n, "dh": "DISABLED", "ersa": "DISABLED", "sessreuse": "ENABLED",
                   "sesstimeout": "120", "snienable": "DISABLED", "ssl2": "DISABLED"}
            row.update({f: flags[f] for f in self.s.flags_known()})
            rows.append(row)
        return rows

    def _cert_rows(self, vs: str) -> list[dict[str, Any]]:
        return [{"vservername": b["vservername"], "certkeyname": b["certkeyname"], "ca": b["ca"],
                 "snicert": b["snicert"], "crlcheck": "", "ocspcheck": ""}
                for b in self.s.cert_bindings if b["vservername"] == vs]

    def _cipher_rows(self, vs: str) -> list[dict[str, Any]]:
        return [{"vservername": vs, "ciphername": c, "cipheraliasname": c, "description": c}
                for c in self.s.cipher_bindings.get(vs, [])]

    def _suite_rows(self, vs: str) -> list[dict[str, Any]]:
        out, seen = [], set()
        for c in self.s.cipher_bindings.get(vs, []):
            for suite in self.s.ciphergroups.get(c, BUILTIN_GROUPS.get(c, [c])):
                if suite not in seen:
                    seen.add(suite)
                    out.append({"vservername": vs, "ciphername": suite, "description": suite})
        return out

    def _ssl_vs(self, name: str | None, q: dict[str, str], what: str) -> list[str]:
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise _argmissing("vservername")
            return list(self.s.sslvservers)
        if name not in self.s.sslvservers:
            if name in self.s.lbvservers:
                raise Fault(599, 1544, "Objects protocol type is not SSL", name)
            raise _missing("vservername", name)
        return [name]

    def get_sslvserver_sslcertkey_binding(self, name, args, q):
        return [r for vs in self._ssl_vs(name, q, "cert") for r in self._cert_rows(vs)]

    def get_sslvserver_sslcipher_binding(self, name, args, q):
        return [r for vs in self._ssl_vs(name, q, "cipher") for r in self._cipher_rows(vs)]

    def get_sslvserver_sslciphersuite_binding(self, name, args, q):
        return [r for vs in self._ssl_vs(name, q, "suite") for r in self._suite_rows(vs)]

    def get_sslvserver_binding(self, name, args, q):
        out = []
        for vs in self._ssl_vs(name, q, "all"):
            row: dict[str, Any] = {"vservername": vs}
            for key, rows in (("sslvserver_sslcertkey_binding", self._cert_rows(vs)),
                              ("sslvserver_sslcipher_binding", self._cipher_rows(vs)),
                              ("sslvserver_sslciphersuite_binding", self._suite_rows(vs)),
                              ("sslvserver_ecccurve_binding",
                               [{"vservername": vs, "ecccurvename": c} for c in ("P_256", "P_384", "P_224", "P_521")])):
                if rows:
                    row[key] = rows
            out.append(row)
        return out

    def _binding_names(self, name, q, table, what):
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise _argmissing(what)
            return list(table)
        if name not in table:
            raise _missing(what, name)
        return [name]

    def get_sslparameter(self, name, args, q):
        return dict(self.s.sslparameter, defaultprofile=self.s.sslparameter["defaultprofile"])

    def get_nsconfig(self, name, args, q):
        return {"configchanged": self.s.configchanged, "lastconfigchangedtime": self.s.lastconfigchangedtime,
                "lastconfigsavetime": self.s.lastconfigsavetime}

    # ---- stat -----------------------------------------------------------------------------------
    def stat(self, resource: str, name: str | None) -> dict[str, Any]:
        if resource == "lbvserver":
            rows = []
            for row in self.get_lbvserver(name, {}, {}):
                rows.append({"name": row["name"], "state": row["curstate"], "type": row["servicetype"],
                             "primaryipaddress": row["ipv46"], "primaryport": row["port"],
                             "curclntconnections": "0", "cursrvrconnections": "0", "tothits": "0",
                             "totalrequests": "0", "totalrequestbytes": "0", "totalresponsebytes": "0",
                             "actsvcs": row["activeservices"],
                             "inactsvcs": str(int(row["totalservices"]) - int(row["activeservices"])),
                             "vslbhealth": row["health"]})
            return {"lbvserver": rows} if rows else {}
        if resource == "service":
            rows = [{"name": r["name"], "state": r["svrstate"], "servicetype": r["servicetype"],
                     "primaryipaddress": r["ipaddress"], "primaryport": r["port"], "curclntconnections": "0",
                     "cursrvrconnections": "0", "totalrequests": "0", "throughput": "0"}
                    for r in self.get_service(name, {}, {})]
            return {"service": rows} if rows else {}
        raise Fault(400, 1232, "Invalid object name", resource)

    # ---- writes ---------------------------------------------------------------------------------
    def write(self, method: str, resource: str, name: str | None, q: dict[str, str], body: Any,
              onerror: str) -> tuple[int, dict[str, Any] | None]:
        action = q.get("action")
        if resource not in ATTRS or resource in ("login", "logout"):
            raise Fault(400, 1232, "Invalid object name", resource)
        if method == "DELETE":
            fn = getattr(self, f"delete_{resource}", None)
            if fn is None:
                raise Fault(405, 1240, "Invalid nitro action or operation", f"delete {resource}")
            fn(name, _args(q.get("args", "")))
            self.s.changed()
            return 200, {"errorcode": 0, "message": "Done", "severity": "NONE"}
        items = _one(body, resource)
        allowed = self.s.attrs_for(resource)
        for item in items:
            for k in item:
                if k.lower() not in allowed:
                    raise _invalid(k)
        items = [{k.lower(): v for k, v in item.items()} for item in items]
        binding = resource.endswith("_binding")
        if action:
            fn = getattr(self, f"action_{resource}_{action}", None)
            verb = "action"
        elif method == "POST" or binding:  # bindings: both POST and PUT add (§8, §9, §10)
            fn = getattr(self, f"add_{resource}", None)
            verb = "add"
        else:
            fn = getattr(self, f"update_{resource}", None)
            verb = "update"
        if fn is None:
            raise Fault(405, 1240, "Invalid nitro action or operation", f"{action or method} {resource}")
        if len(items) == 1:
            fn(name, items[0])
            if action != "save":
                self.s.changed()
            return (201 if verb == "add" else 200), None
        return self._bulk(fn, name, items, onerror, 201 if verb == "add" else 200)

    def _bulk(self, fn, name, items, onerror, ok_status):
        """Array payload (§13): X-NITRO-ONERROR exit|continue|rollback; 207 with per-item results."""
        snapshot = _snapshot(self.s) if onerror == "rollback" else None
        results, failed = [], False
        for item in items:
            try:
                fn(name, item)
                results.append({"errorcode": 0, "message": "Done", "severity": "NONE"})
            except Fault as f:
                failed = True
                results.append(f.body())
                if onerror in ("exit", "rollback"):
                    break
        if failed and snapshot is not None:
            _restore(self.s, snapshot)
        elif any(r["errorcode"] == 0 for r in results):
            self.s.changed()
        if not failed:
            return ok_status, None
        return 207, {"errorcode": 1243, "message": "Bulk operation failed", "severity": "ERROR",
                     "response": results}

    # nsfeature
    def action_nsfeature_enable(self, name, item):
        self.s.features |= self._features(item)

    def action_nsfeature_disable(self, name, item):
        self.s.features -= self._features(item)

    def _features(self, item) -> set[str]:
        names = item.get("feature")
        if not names:
            raise _argmissing("feature")
        if isinstance(names, str):
            names = [names]
        out = set()
        for n in names:
            u = FEATURE_ALIASES.get(str(n).upper(), str(n).upper())  # case-insensitive (§3)
            if u not in FEATURES:
                raise Fault(599, 1097, "Invalid argument value", f"feature, {n}")
            out.add(u)
        return out

    # systemfile (§4)
    def add_systemfile(self, name, item):
        fname = item.get("filename")
        if not fname:
            raise _argmissing("filename")
        loc = str(item.get("filelocation") or "").rstrip("/")
        if not loc:
            raise _argmissing("filelocation")
        if str(item.get("fileencoding", "BASE64")).upper() != "BASE64":
            raise _invalid("fileencoding")
        if len(fname) > 63 or "/" in fname:
            raise _invalid("filename")
        try:
            content = base64.b64decode(str(item.get("filecontent", "")), validate=True)
        except ValueError:
            raise _invalid("filecontent") from None
        if len(content) > 2 * 1024 * 1024:
            raise Fault(599, 278, "Invalid argument", "filecontent: file size must be <= 2 MB")
        folder = self.s.files.setdefault(loc, {})
        if fname in folder:
            raise Fault(409, 1642, "Cannot create output file. File already exists")
        folder[fname] = content

    def delete_systemfile(self, name, args):
        loc = (args.get("filelocation") or "").rstrip("/")
        if not name:
            raise _argmissing("filename")
        if not loc:
            raise _argmissing("filelocation")
        folder = self.s.files.get(loc, {})
        if name not in folder:
            raise Fault(599, 1155, "No such file", f"{loc}/{name}")
        del folder[name]

    # sslcertkey (§5)
    def _read_file(self, path: str) -> bytes:
        full = path if path.startswith("/") else f"{SSL_DIR}/{path}"
        loc, _, fname = full.rpartition("/")
        content = self.s.files.get(loc or "/", {}).get(fname)
        if content is None:
            raise Fault(599, 1647, "Input file(s) not present or not accessible in current partition")
        return content

    def _load_pair(self, item) -> dict[str, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not item.get("cert"):
            raise _argmissing("cert")
        cert_pem = self._read_file(str(item["cert"]))
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise Fault(599, 1536, "Invalid certificate") from None
        out: dict[str, Any] = {"cert": str(item["cert"]), "key": str(item.get("key") or "")}
        if item.get("key"):
            key_pem = self._read_file(str(item["key"]))
            passplain = item.get("passplain")
            try:
                key = serialization.load_pem_private_key(key_pem, password=passplain.encode() if passplain else None)
            except TypeError:  # encrypted and no pass phrase, or a pass phrase for a plain key
                if passplain:
                    raise Fault(599, 1614, "Invalid password") from None
                raise Fault(599, 1537, "Invalid private key, or PEM pass phrase required for this private key") from None
            except ValueError:
                if passplain:
                    raise Fault(599, 1614, "Invalid password") from None
                raise Fault(599, 1537, "Invalid private key, or PEM pass phrase required for this private key") from None
            if key.public_key().public_numbers() != cert.public_key().public_numbers():
                raise Fault(599, 1538, "Certificate and private key do not match")
        pub = cert.public_key()
        out.update(
            serial=format(cert.serial_number, "X"),
            subject=", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.subject),
            issuer=", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.issuer),
            notbefore=cert.not_valid_before_utc, notafter=cert.not_valid_after_utc,
            signaturealg=(cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else "none")
            + ("WithRSAEncryption" if isinstance(pub, rsa.RSAPublicKey) else "-ecdsa"),
            publickey="RSA" if isinstance(pub, rsa.RSAPublicKey) else "ECDSA" if isinstance(pub, ec.EllipticCurvePublicKey) else "other",
            publickeysize=getattr(pub, "key_size", 0),
            fingerprint=hashlib.sha256(cert_pem).hexdigest(),
            cn=next((a.value for a in cert.subject if a.rfc4514_attribute_name == "CN"), ""),
        )
        return out

    def add_sslcertkey(self, name, item):
        ck = item.get("certkey")
        if not ck:
            raise _argmissing("certkey")
        if ck in self.s.certkeys:
            raise _exists("certkey", ck)
        pair = self._load_pair(item)
        for other in self.s.certkeys.values():
            # ansible#402: the same certificate under another name is refused (interpretation [UNVERIFIED]).
            if other["serial"] == pair["serial"] and other["issuer"] == pair["issuer"]:
                raise _exists("certkeyName Contents", other["certkey"])
        pair.update(certkey=ck, expirymonitor=item.get("expirymonitor", "ENABLED"),
                    notificationperiod=item.get("notificationperiod", 30))
        self.s.certkeys[ck] = pair

    def action_sslcertkey_update(self, name, item):
        """`update ssl certKey` (§5.4): new files for an existing pair; bindings stay."""
        ck = item.get("certkey") or name
        if not ck:
            raise _argmissing("certkey")
        if ck not in self.s.certkeys:
            raise _missing("certkey", ck)
        old = self.s.certkeys[ck]
        pair = self._load_pair(item)
        if pair["cn"] != old["cn"] and not _flag(item.get("nodomaincheck")):
            raise Fault(599, 3585, "Certificate is registered to a different domain; use the no domain check"
                        "option to force the operation")
        old.update(pair)

    def update_sslcertkey(self, name, item):
        ck = item.get("certkey") or name
        if ck not in self.s.certkeys:
            raise _missing("certkey", str(ck))
        for k in item:
            if k not in ("certkey", "expirymonitor", "notificationperiod"):
                raise _invalid(k)
        self.s.certkeys[ck].update({k: v for k, v in item.items() if k != "certkey"})

    def delete_sslcertkey(self, name, args):
        if name not in self.s.certkeys:
            raise _missing("certkey", str(name))
        if any(b["certkeyname"] == name for b in self.s.cert_bindings):
            raise Fault(599, 1541, "Certificate is referenced by a CRL, OCSP responder, vserver, service, "
                        "monitor, SSL profile, or another certificate")
        del self.s.certkeys[name]

    # service (§6)
    def add_service(self, name, item):
        n = item.get("name")
        for req in ("name", "servicetype", "port"):
            if item.get(req) in (None, ""):
                raise _argmissing(req)
        if n in self.s.services or n in self.s.servicegroups:  # one namespace ([UNVERIFIED], see add_servicegroup)
            raise _exists("name", n)
        stype = str(item["servicetype"]).upper()
        if stype not in SERVICE_TYPES:
            raise Fault(599, 1097, "Invalid argument value", f"servicetype, {item['servicetype']}")
        port = self._port(item["port"])
        if item.get("ip") and item.get("servername"):
            raise Fault(599, 1092, "Arguments cannot both be specified", "serverName, IP")
        if item.get("ip"):
            ip = str(item["ip"])
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise Fault(599, 1097, "Invalid argument value", f"ip, {ip}") from None
            server = next((s for s, a in self.s.servers.items() if a == ip), ip)
            self.s.servers.setdefault(server, ip)  # IP-based services auto-create a server (§6)
        elif item.get("servername"):
            server = str(item["servername"])
            if server not in self.s.servers:
                raise Fault(599, 351, "No such server")
            ip = self.s.servers[server]
        else:
            raise _argmissing("ip")
        mcc = str(item.get("monconnectionclose", "NONE")).upper()
        if mcc not in ("NONE", "RESET", "FIN"):
            raise Fault(599, 1097, "Invalid argument value", f"monconnectionclose, {mcc}")
        self.s.services[n] = {"name": n, "servername": server, "ipaddress": ip, "port": port,
                              "servicetype": stype, "monconnectionclose": mcc,
                              "healthmonitor": item.get("healthmonitor", "YES"), "state": item.get("state", "ENABLED")}

    def _port(self, v: Any) -> int:
        try:
            p = int(v)
        except (TypeError, ValueError):
            raise Fault(599, 1097, "Invalid argument value", f"port, {v}") from None
        if not 0 <= p <= 65535:
            raise Fault(599, 1097, "Invalid argument value", f"port, {v}")
        return p

    def update_service(self, name, item):
        n = item.get("name") or name
        if not n:
            raise _argmissing("name")
        if n not in self.s.services:
            raise _missing("name", n)
        svc = self.s.services[n]
        # port, servicetype, servername are immutable: "the update appears to succeed, but these
        # properties retain their original values" (DOC12, §6).
        if "ipaddress" in item:
            svc["ipaddress"] = str(item["ipaddress"])
        if "monconnectionclose" in item:
            mcc = str(item["monconnectionclose"]).upper()
            if mcc not in ("NONE", "RESET", "FIN"):
                raise Fault(599, 1097, "Invalid argument value", f"monconnectionclose, {mcc}")
            svc["monconnectionclose"] = mcc
        for k in ("healthmonitor", "comment"):
            if k in item:
                svc[k] = item[k]

    def delete_service(self, name, args):
        if name not in self.s.services:
            raise _missing("name", str(name))
        del self.s.services[name]
        self.s.lb_bindings = [b for b in self.s.lb_bindings if b["servicename"] != name]

    # service groups (§7)
    def add_servicegroup(self, name, item):
        for req in ("servicegroupname", "servicetype"):
            if item.get(req) in (None, ""):
                raise _argmissing(req)
        n = str(item["servicegroupname"])
        # [UNVERIFIED] services and groups share one namespace (`bind lb vserver VS NAME` takes either).
        if n in self.s.servicegroups or n in self.s.services:
            raise _exists("servicegroupname", n)
        stype = str(item["servicetype"]).upper()
        if stype not in SERVICE_TYPES:
            raise Fault(599, 1097, "Invalid argument value", f"servicetype, {item['servicetype']}")
        mcc = self._mcc(item.get("monconnectionclose", "NONE"))
        self.s.servicegroups[n] = {"servicegroupname": n, "servicetype": stype, "monconnectionclose": mcc,
                                   "healthmonitor": item.get("healthmonitor", "YES"),
                                   "state": str(item.get("state", "ENABLED")).upper()}
        self.s.sg_members[n] = []

    def _mcc(self, v: Any) -> str:
        mcc = str(v).upper()
        if mcc not in ("NONE", "RESET", "FIN"):
            raise Fault(599, 1097, "Invalid argument value", f"monconnectionclose, {mcc}")
        return mcc

    def update_servicegroup(self, name, item):
        n = item.get("servicegroupname") or name
        if not n:
            raise _argmissing("servicegroupname")
        if n not in self.s.servicegroups:
            raise _missing("servicegroupname", str(n))
        sg = self.s.servicegroups[n]
        if "monconnectionclose" in item:
            sg["monconnectionclose"] = self._mcc(item["monconnectionclose"])
        for k in ("healthmonitor", "comment"):  # servicetype is immutable: ignored, as for a service (§6)
            if k in item:
                sg[k] = item[k]

    def delete_servicegroup(self, name, args):
        if name not in self.s.servicegroups:
            raise _missing("servicegroupname", str(name))
        # [UNVERIFIED] like `rm service`, `rm serviceGroup` of a bound group succeeds and takes its vserver
        # bindings and members with it; the auto-created server objects stay (netscaler-k8s-ingress-controller#375).
        del self.s.servicegroups[name]
        self.s.sg_members.pop(name, None)
        self.s.lb_group_bindings = [b for b in self.s.lb_group_bindings if b["servicegroupname"] != name]

    def _member_target(self, item: dict[str, Any], *, adding: bool) -> tuple[str | None, str | None]:
        """(ip, servername) of a member add/delete; both given is 1092 (ansible-collection-netscaleradc#328)."""
        ip, server = item.get("ip"), item.get("servername")
        if ip and server:
            raise Fault(599, 1092, "Arguments cannot both be specified", "serverName, IP")
        if not ip and not server:
            raise _argmissing("ip")
        if ip:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                raise Fault(599, 1097, "Invalid argument value", f"ip, {ip}") from None
        elif adding and str(server) not in self.s.servers:
            raise Fault(599, 351, "No such server")  # terraform-provider-citrixadc#35
        return (str(ip) if ip else None), (str(server) if server else None)

    def add_servicegroup_servicegroupmember_binding(self, name, item):
        g = item.get("servicegroupname") or name
        if not g:
            raise _argmissing("servicegroupname")
        if g not in self.s.servicegroups:
            raise _missing("servicegroupname", g)
        ip, server = self._member_target(item, adding=True)
        if item.get("port") in (None, ""):
            raise _argmissing("port")
        port = self._port(item["port"])
        if ip is not None:  # by IP: a server object named after the IP is created (§6)
            server = next((s for s, a in self.s.servers.items() if a == ip), ip)
            self.s.servers.setdefault(server, ip)
        else:
            ip = self.s.servers[str(server)]
        members = self.s.sg_members.setdefault(g, [])
        if any(m["servername"] == server and m["port"] == port for m in members):
            raise _exists("servicegroupmember", f"{server}:{port}")  # 409/273 (ansible-collection-netscaleradc#376)
        members.append({"ip": ip, "port": port, "servername": server,
                        "state": str(item.get("state", "ENABLED")).upper()})

    def delete_servicegroup_servicegroupmember_binding(self, name, args):
        if name not in self.s.servicegroups:
            raise _missing("servicegroupname", str(name))
        ip, server = self._member_target(args, adding=False)
        if not args.get("port"):
            raise _argmissing("port")
        port = self._port(args["port"])
        members = self.s.sg_members.get(name, [])
        keep = [m for m in members if not (m["port"] == port and (m["ip"] == ip if ip else m["servername"] == server))]
        if len(keep) == len(members):
            raise _missing("servicegroupmember", f"{ip or server}:{port}")
        self.s.sg_members[name] = keep

    def add_lbvserver_servicegroup_binding(self, name, item):
        vs, g = item.get("name") or name, item.get("servicegroupname")
        if not vs:
            raise _argmissing("name")
        if not g:
            raise _argmissing("servicegroupname")
        if "weight" in item:  # weight belongs to a service binding (ansible-collection-netscaleradc#191)
            raise Fault(400, 1093, "Argument pre-requisite missing", "weight, serviceName")
        if vs not in self.s.lbvservers:
            raise _missing("name", vs)
        if g not in self.s.servicegroups:
            raise _missing("servicegroupname", g)
        if any(b["name"] == vs and b["servicegroupname"] == g for b in self.s.lb_group_bindings):
            raise _exists("servicegroupname", g)
        self.s.lb_group_bindings.append({"name": vs, "servicegroupname": g})

    def delete_lbvserver_servicegroup_binding(self, name, args):
        g = args.get("servicegroupname")
        if not g:
            raise _argmissing("servicegroupname")
        before = len(self.s.lb_group_bindings)
        self.s.lb_group_bindings = [b for b in self.s.lb_group_bindings
                                    if not (b["name"] == name and b["servicegroupname"] == g)]
        if len(self.s.lb_group_bindings) == before:
            raise _missing("servicegroupname", g)

    # cipher groups (§8)
    def add_sslcipher(self, name, item):
        g = item.get("ciphergroupname")
        if not g:
            raise _argmissing("ciphergroupname")
        if g in self.s.ciphergroups or g in BUILTIN_GROUPS or g in KNOWN_CIPHERS:
            raise _exists("ciphergroupname", g)
        self.s.ciphergroups[g] = []

    def delete_sslcipher(self, name, args):
        if name in BUILTIN_GROUPS:
            raise Fault(599, 1558, "Default ciphers/aliases cannot be added or removed")
        if name not in self.s.ciphergroups:
            raise _missing("ciphergroupname", str(name))
        if any(name in groups for groups in self.s.cipher_bindings.values()):
            raise Fault(599, 3593, "Cipher group has bound entities or is referenced by an SSL vserver or SSL service")
        del self.s.ciphergroups[name]

    def add_sslcipher_sslciphersuite_binding(self, name, item):
        g = item.get("ciphergroupname") or name
        c = item.get("ciphername")
        if not g:
            raise _argmissing("ciphergroupname")
        if not c:
            raise _argmissing("ciphername")
        if g in BUILTIN_GROUPS:
            raise Fault(599, 1558, "Default ciphers/aliases cannot be added or removed")
        if g not in self.s.ciphergroups:
            raise _missing("ciphergroupname", g)
        if c not in KNOWN_CIPHERS:
            raise Fault(599, 3621, "No such cipher/cipherAlias/cipherGroup", c)
        group = self.s.ciphergroups[g]
        if c in group:
            raise Fault(599, 3741, "Specified cipher is already bound with higher priority")
        prio = item.get("cipherpriority")
        if prio in (None, ""):
            group.append(c)
        else:
            p = int(prio)
            if p < 1:
                raise Fault(599, 1097, "Invalid argument value", f"cipherpriority, {prio}")
            group.insert(p - 1, c)

    def delete_sslcipher_sslciphersuite_binding(self, name, args):
        c = args.get("ciphername")
        if name in BUILTIN_GROUPS:
            raise Fault(599, 1558, "Default ciphers/aliases cannot be added or removed")
        if name not in self.s.ciphergroups:
            raise _missing("ciphergroupname", str(name))
        if "ciphername" in args and not c:
            raise Fault(400, 1091, "Required argument value missing")
        if not c:
            raise _argmissing("ciphername")
        if c not in self.s.ciphergroups[name]:
            raise _missing("ciphername", c)
        self.s.ciphergroups[name].remove(c)

    # lbvserver (§9)
    def add_lbvserver(self, name, item):
        for req in ("name", "servicetype"):
            if not item.get(req):
                raise _argmissing(req)
        n = item["name"]
        if n in self.s.lbvservers:
            raise _exists("name", n)
        stype = str(item["servicetype"]).upper()
        if stype not in SERVICE_TYPES:
            raise Fault(599, 1097, "Invalid argument value", f"servicetype, {item['servicetype']}")
        ip = str(item.get("ipv46") or "0.0.0.0")
        port = self._port(item.get("port", 0))
        if ip != "0.0.0.0" and port == 0:
            raise _argmissing("port")
        for other, vs in self.s.lbvservers.items():
            if vs["ipv46"] == ip and vs["port"] == port and port != 0:
                # [UNVERIFIED] code/wording for an ip:port already used by another vserver.
                raise _exists("ipv46:port", f"{ip}:{port} is used by lbvserver {other}")
        self.s.lbvservers[n] = {"name": n, "servicetype": stype, "ipv46": ip, "port": port,
                                "lbmethod": item.get("lbmethod", "LEASTCONNECTION"),
                                "clttimeout": item.get("clttimeout", 9000), "state": "ENABLED"}
        if stype in SSL_TYPES:  # the sslvserver comes with it, DEFAULT bound (§9)
            self.s.sslvservers[n] = {"ssl3": "ENABLED", "tls1": "ENABLED", "tls11": "ENABLED",
                                     "tls12": "ENABLED", "tls13": "DISABLED"}
            self.s.cipher_bindings[n] = ["DEFAULT"]

    def update_lbvserver(self, name, item):
        n = item.get("name") or name
        if n not in self.s.lbvservers:
            raise _missing("name", str(n))
        for k in ("lbmethod", "comment", "clttimeout"):
            if k in item:
                self.s.lbvservers[n][k] = item[k]

    def delete_lbvserver(self, name, args):
        if name not in self.s.lbvservers:
            raise _missing("name", str(name))
        del self.s.lbvservers[name]
        self.s.sslvservers.pop(name, None)
        self.s.cipher_bindings.pop(name, None)
        self.s.lb_bindings = [b for b in self.s.lb_bindings if b["name"] != name]
        self.s.lb_group_bindings = [b for b in self.s.lb_group_bindings if b["name"] != name]
        self.s.cert_bindings = [b for b in self.s.cert_bindings if b["vservername"] != name]

    def add_lbvserver_service_binding(self, name, item):
        vs, svc = item.get("name") or name, item.get("servicename")
        if not vs:
            raise _argmissing("name")
        if not svc:
            raise _argmissing("servicename")
        if vs not in self.s.lbvservers:
            raise _missing("name", vs)
        if svc not in self.s.services:
            raise _missing("servicename", svc)
        if any(b["name"] == vs and b["servicename"] == svc for b in self.s.lb_bindings):
            raise _exists("servicename", svc)
        self.s.lb_bindings.append({"name": vs, "servicename": svc, "weight": int(item.get("weight", 1))})

    def delete_lbvserver_service_binding(self, name, args):
        svc = args.get("servicename")
        if not svc:
            raise _argmissing("servicename")
        before = len(self.s.lb_bindings)
        self.s.lb_bindings = [b for b in self.s.lb_bindings if not (b["name"] == name and b["servicename"] == svc)]
        if len(self.s.lb_bindings) == before:
            raise _missing("servicename", svc)

    # sslvserver and its bindings (§10)
    def _need_ssl_vs(self, vs: str | None) -> str:
        if not vs:
            raise _argmissing("vservername")
        if vs not in self.s.sslvservers:
            if vs in self.s.lbvservers:
                raise Fault(599, 1544, "Objects protocol type is not SSL")
            raise _missing("vservername", vs)
        return vs

    def add_sslvserver_sslcertkey_binding(self, name, item):
        vs = self._need_ssl_vs(item.get("vservername") or name)
        ck = item.get("certkeyname")
        if not ck:
            raise _argmissing("certkeyname")
        if ck not in self.s.certkeys:
            raise _missing("certkeyName", ck)
        sni, ca = _flag(item.get("snicert")), _flag(item.get("ca"))
        for b in self.s.cert_bindings:
            if b["vservername"] == vs and b["certkeyname"] == ck and b["ca"] == ca and b["snicert"] == sni:
                raise _exists("certkeyName", ck)
        if not sni and not ca:
            # One non-SNI server certificate per vserver: "Current certificate replaces the previous
            # binding" (1546; whether warning or error is [UNVERIFIED]); modelled as a replace.
            self.s.cert_bindings = [b for b in self.s.cert_bindings
                                    if not (b["vservername"] == vs and not b["ca"] and not b["snicert"])]
        self.s.cert_bindings.append({"vservername": vs, "certkeyname": ck, "snicert": sni, "ca": ca})

    def delete_sslvserver_sslcertkey_binding(self, name, args):
        vs = self._need_ssl_vs(name)
        ck = args.get("certkeyname")
        if not ck:
            raise _argmissing("certkeyname")
        sni, ca = _flag(args.get("snicert")), _flag(args.get("ca"))
        keep = [b for b in self.s.cert_bindings
                if not (b["vservername"] == vs and b["certkeyname"] == ck and b["snicert"] == sni and b["ca"] == ca)]
        if len(keep) == len(self.s.cert_bindings):
            raise Fault(599, 1542, "Certificate binding does not exist")
        self.s.cert_bindings = keep

    def _profile_guard(self) -> None:
        if self.s.sslparameter["defaultprofile"] == "ENABLED":
            raise Fault(599, 3740, "Operation not permitted. To do this Disable default ssl profile by setting "
                        "'set ssl parameter -defaultProfile D'")

    def add_sslvserver_sslcipher_binding(self, name, item):
        vs = self._need_ssl_vs(item.get("vservername") or name)
        c = item.get("ciphername")
        if not c:
            raise _argmissing("ciphername")
        self._profile_guard()
        if c not in self.s.ciphergroups and c not in BUILTIN_GROUPS and c not in KNOWN_CIPHERS:
            raise Fault(599, 3621, "No such cipher/cipherAlias/cipherGroup", c)
        bound = self.s.cipher_bindings.setdefault(vs, [])
        if c in bound:
            raise _exists("ciphername", c)
        bound.append(c)

    def delete_sslvserver_sslcipher_binding(self, name, args):
        vs = self._need_ssl_vs(name)
        if "ciphername" in args and not args["ciphername"]:
            raise Fault(400, 1091, "Required argument value missing")  # ansible#129
        c = args.get("ciphername")
        if not c:
            raise _argmissing("ciphername")
        self._profile_guard()
        bound = self.s.cipher_bindings.get(vs, [])
        if c not in bound:
            raise _missing("ciphername", c)
        bound.remove(c)

    def update_sslvserver(self, name, item):
        vs = self._need_ssl_vs(item.get("vservername") or name)
        flags = {k: v for k, v in item.items() if k in PROTOCOL_FLAGS}
        if flags and self.s.sslparameter["defaultprofile"] == "ENABLED":
            raise Fault(599, 3679, "Operation not permitted. Use set ssl profile for setting these parameters.")
        for k, v in flags.items():
            if str(v).upper() not in FLAG_VALUES:
                raise Fault(599, 1097, "Invalid argument value", f"{k}, {v}")
        if "dhfile" in item:
            self._read_file(str(item["dhfile"]))  # 1647 when absent (ryancbutler/Citrix#7)
        self.s.sslvservers[vs].update({k: str(v).upper() for k, v in flags.items()})

    def update_sslparameter(self, name, item):
        v = str(item.get("defaultprofile", "")).upper()
        if v not in FLAG_VALUES:
            raise Fault(599, 1097, "Invalid argument value", f"defaultprofile, {v}")
        self.s.sslparameter["defaultprofile"] = v

    # nsconfig (§11)
    def action_nsconfig_save(self, name, item):
        self.s.configchanged = False
        self.s.lastconfigsavetime = _now()
        self.s.saves += 1

    def action_systemsession_kill(self, name, item):
        self.s.sessions.clear()


_SNAP_KEYS = ("features", "files", "certkeys", "servers", "services", "ciphergroups", "lbvservers", "lb_bindings",
              "servicegroups", "sg_members", "lb_group_bindings", "sslvservers", "cert_bindings", "cipher_bindings",
              "sslparameter")


def _snapshot(s: NitroState) -> dict[str, Any]:
    return {k: copy.deepcopy(getattr(s, k)) for k in _SNAP_KEYS}


def _restore(s: NitroState, snap: dict[str, Any]) -> None:
    for k, v in snap.items():
        setattr(s, k, v)


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

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
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
        is_write = method != "GET" and resource not in ("login", "logout")
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

    def _dispatch(self, state: NitroState, method: str, kind: str, resource: str, name: str | None,
                  q: dict[str, str], raw_body: bytes, entry: LogEntry):
        api = Api(state)
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

    def _login(self, state: NitroState, body: Any):
        items = _one(body, "login")
        item = {k.lower(): v for k, v in items[0].items()}
        for k in item:
            if k not in ATTRS["login"]:
                raise _invalid(k)
        user, password = item.get("username"), item.get("password")
        if not user:
            raise _argmissing("username")
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

    def finish_request(self, request, client_address) -> None:
        # TLS handshake here, in the connection's own thread, so a slow client never blocks accept().
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        pass  # a client that went away is not worth a traceback on the console

    def die(self) -> None:
        """Stop like a killed process: refuse new connections, drop the open ones."""
        self.dead = True
        threading.Thread(target=self._stop, daemon=True).start()

    def _stop(self) -> None:
        self.shutdown()
        self.server_close()


def make_management_cert(common_name: str = "ns-sim.localhost") -> tuple[bytes, bytes]:
    """A self-signed management certificate (as an ADC ships with) and its key, in memory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NITRO simulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.IPAddress(ipaddress.ip_address("::1"))]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def pem_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate as AB:CD:... (the form `show ssl certKey` and browsers print)."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:  # ssl loads only from files; the key lives here for a moment, 0600
        cpath, kpath = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cpath, "wb") as fh:
            fh.write(cert_pem)
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        ctx.load_cert_chain(cpath, kpath)
    return ctx


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
                    cert_pem: bytes | None = None, key_pem: bytes | None = None,
                    state: NitroState | None = None) -> SimHandle:
    """Serve a simulated NITRO on loopback in a daemon thread; returns when it accepts connections."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("the NITRO simulator listens on loopback only (127.0.0.1 or ::1)")
    state = state or NitroState(username, password, default_profile=default_profile, firmware=firmware)
    ctx = None
    fp = None
    if tls:
        if cert_pem is None or key_pem is None:
            cert_pem, key_pem = make_management_cert()
        ctx = _server_context(cert_pem, key_pem)
        fp = pem_fingerprint(cert_pem)
        # The ADC's own certificate is on disk and installed as ns-server-certificate, as on a real box.
        with state.lock:
            state.files[SSL_DIR].setdefault("ns-server.cert", cert_pem)
    handle = SimHandle(host=host, port=port, tls=tls, state=state, username=username, password=password,
                       fingerprint=fp, _ctx=ctx)
    handle._start()
    return handle
