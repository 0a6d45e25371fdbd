"""Write handlers of the simulated NITRO API: dispatch, bulk, features, files, cert-key pairs,
services and service groups."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from typing import Any, Callable

from dicomtls.engine.rehearsal.nitro_sim.catalog import (
    ATTRS,
    FEATURE_ALIASES,
    FEATURES,
    PARTITIONS_DIR,
    SERVICE_TYPES,
    SSL_DIR,
)
from dicomtls.engine.rehearsal.nitro_sim.faults import (
    Args,
    Fault,
    Row,
    already_exists,
    arg_missing,
    body_items,
    invalid_arg,
    not_found,
    parse_args,
    truthy,
)
from dicomtls.engine.rehearsal.nitro_sim.state import NitroState, restore_snapshot, take_snapshot


class Writes:
    state: NitroState
    partition: str | None = None  # the session's admin partition, set per request

    # ---- writes ---------------------------------------------------------------------------------
    def write(self, method: str, resource: str, name: str | None, q: dict[str, str], body: Any,
              onerror: str) -> tuple[int, dict[str, Any] | None]:
        action = q.get("action")
        if resource not in ATTRS or resource in ("login", "logout"):
            raise Fault(400, 1232, "Invalid object name", resource)
        if self.state.ha == "secondary":
            # Configuration belongs on the primary; the HTTP status is [UNVERIFIED] (599 as for other
            # NITRO-specific refusals).
            raise Fault(599, 368, "Operation permitted only on primary node")
        if method == "DELETE":
            fn = getattr(self, f"delete_{resource}", None)
            if fn is None:
                raise Fault(405, 1240, "Invalid nitro action or operation", f"delete {resource}")
            fn(name, parse_args(q.get("args", "")))
            self.state.changed()
            return 200, {"errorcode": 0, "message": "Done", "severity": "NONE"}
        items = body_items(body, resource)
        allowed = self.state.attrs_for(resource)
        for item in items:
            for k in item:
                if k.lower() not in allowed:
                    raise invalid_arg(k)
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
                self.state.changed()
            return (201 if verb == "add" else 200), None
        return self._bulk(fn, name, items, onerror, 201 if verb == "add" else 200)

    def _bulk(self, fn: Callable[[str | None, Row], None], name: str | None, items: list[Row], onerror: str,
              ok_status: int) -> tuple[int, dict[str, Any] | None]:
        """Array payload (§13): X-NITRO-ONERROR exit|continue|rollback; 207 with per-item results."""
        snapshot = take_snapshot(self.state) if onerror == "rollback" else None
        results: list[dict[str, Any]] = []
        failed = False
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
            restore_snapshot(self.state, snapshot)
        elif any(r["errorcode"] == 0 for r in results):
            self.state.changed()
        if not failed:
            return ok_status, None
        return 207, {"errorcode": 1243, "message": "Bulk operation failed", "severity": "ERROR",
                     "response": results}

    # nsfeature
    def action_nsfeature_enable(self, name: str | None, item: Row) -> None:
        self.state.features |= self._features(item)

    def action_nsfeature_disable(self, name: str | None, item: Row) -> None:
        self.state.features -= self._features(item)

    def _features(self, item: Row) -> set[str]:
        names = item.get("feature")
        if not names:
            raise arg_missing("feature")
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
    def add_systemfile(self, name: str | None, item: Row) -> None:
        fname = item.get("filename")
        if not fname:
            raise arg_missing("filename")
        loc = str(item.get("filelocation") or "").rstrip("/")
        if not loc:
            raise arg_missing("filelocation")
        if str(item.get("fileencoding", "BASE64")).upper() != "BASE64":
            raise invalid_arg("fileencoding")
        if len(fname) > 63 or "/" in fname:
            raise invalid_arg("filename")
        try:
            content = base64.b64decode(str(item.get("filecontent", "")), validate=True)
        except ValueError:
            raise invalid_arg("filecontent") from None
        if len(content) > 2 * 1024 * 1024:
            raise Fault(599, 278, "Invalid argument", "filecontent: file size must be <= 2 MB")
        folder = self.state.files.setdefault(loc, {})
        if fname in folder:
            raise Fault(409, 1642, "Cannot create output file. File already exists")
        folder[fname] = content

    def delete_systemfile(self, name: str | None, args: Args) -> None:
        loc = (args.get("filelocation") or "").rstrip("/")
        if not name:
            raise arg_missing("filename")
        if not loc:
            raise arg_missing("filelocation")
        folder = self.state.files.get(loc, {})
        if name not in folder:
            raise Fault(599, 1155, "No such file", f"{loc}/{name}")
        del folder[name]

    # sslcertkey (§5)
    @property
    def ssl_dir(self) -> str:
        """The SSL folder the session sees: its admin partition's own ([UNVERIFIED] path) or /nsconfig/ssl."""
        return f"{PARTITIONS_DIR}/{self.partition}/ssl" if self.partition else SSL_DIR

    def _read_file(self, path: str) -> bytes:
        full = path if path.startswith("/") else f"{self.ssl_dir}/{path}"
        loc, _, fname = full.rpartition("/")
        content = self.state.files.get(loc or "/", {}).get(fname)
        if self.partition and not loc.startswith(f"{PARTITIONS_DIR}/{self.partition}"):
            content = None  # another partition's (or the default partition's) files are not visible
        if content is None:
            raise Fault(599, 1647, "Input file(s) not present or not accessible in current partition")
        return content

    def _load_pair(self, item: Row) -> dict[str, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not item.get("cert"):
            raise arg_missing("cert")
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
            spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
                raise Fault(599, 1538, "Certificate and private key do not match")
        pub = cert.public_key()
        out.update(
            serial=format(cert.serial_number, "X"),
            subject=", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.subject),
            issuer=", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.issuer),
            notbefore=cert.not_valid_before_utc, notafter=cert.not_valid_after_utc,
            signaturealg=(cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else "none")
            + ("WithRSAEncryption" if isinstance(pub, rsa.RSAPublicKey) else "-ecdsa"),
            publickey=("RSA" if isinstance(pub, rsa.RSAPublicKey) else
                       "ECDSA" if isinstance(pub, ec.EllipticCurvePublicKey) else "other"),
            publickeysize=getattr(pub, "key_size", 0),
            fingerprint=hashlib.sha256(cert_pem).hexdigest(),
            cn=next((a.value for a in cert.subject if a.rfc4514_attribute_name == "CN"), ""),
        )
        return out

    def add_sslcertkey(self, name: str | None, item: Row) -> None:
        ck = item.get("certkey")
        if not ck:
            raise arg_missing("certkey")
        if ck in self.state.certkeys:
            raise already_exists("certkey", ck)
        pair = self._load_pair(item)
        for other in self.state.certkeys.values():
            # ansible#402: the same certificate under another name is refused (interpretation [UNVERIFIED]).
            if other["serial"] == pair["serial"] and other["issuer"] == pair["issuer"]:
                raise already_exists("certkeyName Contents", other["certkey"])
        pair.update(certkey=ck, expirymonitor=item.get("expirymonitor", "ENABLED"),
                    notificationperiod=item.get("notificationperiod", 30))
        self.state.certkeys[ck] = pair

    def action_sslcertkey_update(self, name: str | None, item: Row) -> None:
        """`update ssl certKey` (§5.4): new files for an existing pair; bindings stay."""
        ck = item.get("certkey") or name
        if not ck:
            raise arg_missing("certkey")
        if ck not in self.state.certkeys:
            raise not_found("certkey", ck)
        old = self.state.certkeys[ck]
        pair = self._load_pair(item)
        if pair["cn"] != old["cn"] and not truthy(item.get("nodomaincheck")):
            raise Fault(599, 3585, "Certificate is registered to a different domain; use the no domain check"
                        "option to force the operation")
        old.update(pair)

    def update_sslcertkey(self, name: str | None, item: Row) -> None:
        ck = item.get("certkey") or name
        if ck not in self.state.certkeys:
            raise not_found("certkey", str(ck))
        for k in item:
            if k not in ("certkey", "expirymonitor", "notificationperiod"):
                raise invalid_arg(k)
        self.state.certkeys[ck].update({k: v for k, v in item.items() if k != "certkey"})

    def delete_sslcertkey(self, name: str | None, args: Args) -> None:
        if name not in self.state.certkeys:
            raise not_found("certkey", str(name))
        if any(b["certkeyname"] == name for b in self.state.cert_bindings):
            raise Fault(599, 1541, "Certificate is referenced by a CRL, OCSP responder, vserver, service, "
                        "monitor, SSL profile, or another certificate")
        del self.state.certkeys[name]

    # service (§6)
    def add_service(self, name: str | None, item: Row) -> None:
        for req in ("name", "servicetype", "port"):
            if item.get(req) in (None, ""):
                raise arg_missing(req)
        n = item["name"]
        if n in self.state.services or n in self.state.servicegroups:  # one namespace ([UNVERIFIED], see add_servicegroup)
            raise already_exists("name", n)
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
            server = next((s for s, a in self.state.servers.items() if a == ip), ip)
            self.state.servers.setdefault(server, ip)  # IP-based services auto-create a server (§6)
        elif item.get("servername"):
            server = str(item["servername"])
            if server not in self.state.servers:
                raise Fault(599, 351, "No such server")
            ip = self.state.servers[server]
        else:
            raise arg_missing("ip")
        mcc = str(item.get("monconnectionclose", "NONE")).upper()
        if mcc not in ("NONE", "RESET", "FIN"):
            raise Fault(599, 1097, "Invalid argument value", f"monconnectionclose, {mcc}")
        self.state.services[n] = {"name": n, "servername": server, "ipaddress": ip, "port": port,
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

    def update_service(self, name: str | None, item: Row) -> None:
        n = item.get("name") or name
        if not n:
            raise arg_missing("name")
        if n not in self.state.services:
            raise not_found("name", n)
        svc = self.state.services[n]
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

    def delete_service(self, name: str | None, args: Args) -> None:
        if name not in self.state.services:
            raise not_found("name", str(name))
        del self.state.services[name]
        self.state.lb_bindings = [b for b in self.state.lb_bindings if b["servicename"] != name]

    # service groups (§7)
    def add_servicegroup(self, name: str | None, item: Row) -> None:
        for req in ("servicegroupname", "servicetype"):
            if item.get(req) in (None, ""):
                raise arg_missing(req)
        n = str(item["servicegroupname"])
        # [UNVERIFIED] services and groups share one namespace (`bind lb vserver VS NAME` takes either).
        if n in self.state.servicegroups or n in self.state.services:
            raise already_exists("servicegroupname", n)
        stype = str(item["servicetype"]).upper()
        if stype not in SERVICE_TYPES:
            raise Fault(599, 1097, "Invalid argument value", f"servicetype, {item['servicetype']}")
        mcc = self._monitor_close(item.get("monconnectionclose", "NONE"))
        self.state.servicegroups[n] = {"servicegroupname": n, "servicetype": stype, "monconnectionclose": mcc,
                                   "healthmonitor": item.get("healthmonitor", "YES"),
                                   "state": str(item.get("state", "ENABLED")).upper()}
        self.state.sg_members[n] = []

    def _monitor_close(self, v: Any) -> str:
        mcc = str(v).upper()
        if mcc not in ("NONE", "RESET", "FIN"):
            raise Fault(599, 1097, "Invalid argument value", f"monconnectionclose, {mcc}")
        return mcc

    def update_servicegroup(self, name: str | None, item: Row) -> None:
        n = item.get("servicegroupname") or name
        if not n:
            raise arg_missing("servicegroupname")
        if n not in self.state.servicegroups:
            raise not_found("servicegroupname", str(n))
        sg = self.state.servicegroups[n]
        if "monconnectionclose" in item:
            sg["monconnectionclose"] = self._monitor_close(item["monconnectionclose"])
        for k in ("healthmonitor", "comment"):  # servicetype is immutable: ignored, as for a service (§6)
            if k in item:
                sg[k] = item[k]

    def delete_servicegroup(self, name: str | None, args: Args) -> None:
        if name not in self.state.servicegroups:
            raise not_found("servicegroupname", str(name))
        # [UNVERIFIED] like `rm service`, `rm serviceGroup` of a bound group succeeds and takes its vserver
        # bindings and members with it; the auto-created server objects stay (netscaler-k8s-ingress-controller#375).
        del self.state.servicegroups[name]
        self.state.sg_members.pop(name, None)
        self.state.lb_group_bindings = [b for b in self.state.lb_group_bindings if b["servicegroupname"] != name]

    def _member_target(self, item: dict[str, Any], *, adding: bool) -> tuple[str | None, str | None]:
        """(ip, servername) of a member add/delete; both given is 1092 (ansible-collection-netscaleradc#328)."""
        ip, server = item.get("ip"), item.get("servername")
        if ip and server:
            raise Fault(599, 1092, "Arguments cannot both be specified", "serverName, IP")
        if not ip and not server:
            raise arg_missing("ip")
        if ip:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                raise Fault(599, 1097, "Invalid argument value", f"ip, {ip}") from None
        elif adding and str(server) not in self.state.servers:
            raise Fault(599, 351, "No such server")  # terraform-provider-citrixadc#35
        return (str(ip) if ip else None), (str(server) if server else None)

    def add_servicegroup_servicegroupmember_binding(self, name: str | None, item: Row) -> None:
        g = item.get("servicegroupname") or name
        if not g:
            raise arg_missing("servicegroupname")
        if g not in self.state.servicegroups:
            raise not_found("servicegroupname", g)
        ip, server = self._member_target(item, adding=True)
        if item.get("port") in (None, ""):
            raise arg_missing("port")
        port = self._port(item["port"])
        if ip is not None:  # by IP: a server object named after the IP is created (§6)
            server = next((s for s, a in self.state.servers.items() if a == ip), ip)
            self.state.servers.setdefault(server, ip)
        else:
            ip = self.state.servers[str(server)]
        members = self.state.sg_members.setdefault(g, [])
        if any(m["servername"] == server and m["port"] == port for m in members):
            raise already_exists("servicegroupmember", f"{server}:{port}")  # 409/273 (ansible-collection-netscaleradc#376)
        members.append({"ip": ip, "port": port, "servername": server,
                        "state": str(item.get("state", "ENABLED")).upper()})

    def delete_servicegroup_servicegroupmember_binding(self, name: str | None, args: Args) -> None:
        if name not in self.state.servicegroups:
            raise not_found("servicegroupname", str(name))
        ip, server = self._member_target(args, adding=False)
        if not args.get("port"):
            raise arg_missing("port")
        port = self._port(args["port"])
        members = self.state.sg_members.get(name, [])
        keep = [m for m in members if not (m["port"] == port and (m["ip"] == ip if ip else m["servername"] == server))]
        if len(keep) == len(members):
            raise not_found("servicegroupmember", f"{ip or server}:{port}")
        self.state.sg_members[name] = keep

    def add_lbvserver_servicegroup_binding(self, name: str | None, item: Row) -> None:
        vs, g = item.get("name") or name, item.get("servicegroupname")
        if not vs:
            raise arg_missing("name")
        if not g:
            raise arg_missing("servicegroupname")
        if "weight" in item:  # weight belongs to a service binding (ansible-collection-netscaleradc#191)
            raise Fault(400, 1093, "Argument pre-requisite missing", "weight, serviceName")
        if vs not in self.state.lbvservers:
            raise not_found("name", vs)
        if g not in self.state.servicegroups:
            raise not_found("servicegroupname", g)
        if any(b["name"] == vs and b["servicegroupname"] == g for b in self.state.lb_group_bindings):
            raise already_exists("servicegroupname", g)
        self.state.lb_group_bindings.append({"name": vs, "servicegroupname": g})

    def delete_lbvserver_servicegroup_binding(self, name: str | None, args: Args) -> None:
        g = args.get("servicegroupname")
        if not g:
            raise arg_missing("servicegroupname")
        before = len(self.state.lb_group_bindings)
        self.state.lb_group_bindings = [b for b in self.state.lb_group_bindings
                                    if not (b["name"] == name and b["servicegroupname"] == g)]
        if len(self.state.lb_group_bindings) == before:
            raise not_found("servicegroupname", g)
