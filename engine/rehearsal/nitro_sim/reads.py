"""GET and stat handlers of the simulated NITRO API."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from dicomtls.engine.rehearsal.nitro_sim.catalog import BUILTIN_GROUPS, FEATURES
from dicomtls.engine.rehearsal.nitro_sim.faults import (
    Args,
    Fault,
    Row,
    arg_missing,
    not_found,
    ns_date,
    ns_now,
    parse_args,
    project,
)
from dicomtls.engine.rehearsal.nitro_sim.state import NitroState


class Reads:
    """GET handlers: get_<resource>(name, args, q) -> rows or a singleton object; raise Fault."""

    state: NitroState

    # ---- GET ------------------------------------------------------------------------------------
    def get(self, resource: str, name: str | None, q: dict[str, str]) -> dict[str, Any]:
        args = parse_args(q.get("args", ""))
        flt = parse_args(q.get("filter", ""))
        fn = getattr(self, f"get_{resource}", None)
        if fn is None:
            raise Fault(400, 1232, "Invalid object name", resource)
        result = fn(name, args, q)
        if isinstance(result, dict):  # singletons come back as an object (§1 [DISAGREE]: GO vs DOC12)
            return {resource: result}
        rows = [r for r in result if all(str(r.get(k, "")) == v for k, v in flt.items())]
        rows = project(rows, q.get("attrs"))
        return {resource: rows} if rows else {}  # empty collections omit the key (§1)

    def get_nsfeature(self, name: str | None, args: Args, q: Args) -> Row:
        out: dict[str, Any] = {"feature": sorted(self.state.features)}
        out.update({f.lower(): f in self.state.features for f in FEATURES})
        return out

    def get_systemfile(self, name: str | None, args: Args, q: Args) -> list[Row]:
        loc = args.get("filelocation")
        if not loc:
            raise arg_missing("filelocation")
        loc = loc.rstrip("/") or "/"
        folder = self.state.files.get(loc)
        if folder is None:
            raise Fault(599, 1155, "No such file", loc)
        if name is None:
            return [{"filename": n, "filelocation": loc, "filesize": str(len(c)), "filemode": [],
                     "filemodifiedtime": ns_now()} for n, c in sorted(folder.items())]
        if name not in folder:
            # [UNVERIFIED] code for a missing file; DOC12 lists 1155 NSERR_NOSUCHFILE.
            raise Fault(599, 1155, "No such file", f"{loc}/{name}")
        return [{"filename": name, "filelocation": loc, "filecontent": base64.b64encode(folder[name]).decode(),
                 "fileencoding": "BASE64", "filesize": str(len(folder[name]))}]

    def get_sslcertkey(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is not None:
            if name not in self.state.certkeys:
                raise not_found("certkey", name)
            return [self._certkey_row(self.state.certkeys[name])]
        return [self._certkey_row(ck) for ck in self.state.certkeys.values()]

    def _certkey_row(self, ck: dict[str, Any]) -> dict[str, Any]:
        days = (ck["notafter"] - dt.datetime.now(dt.timezone.utc)).days
        return {"certkey": ck["certkey"], "cert": ck["cert"], "key": ck["key"], "inform": "PEM",
                "signaturealg": ck["signaturealg"], "certificatetype": ["SRVR_CERT"], "serial": ck["serial"],
                "issuer": ck["issuer"], "subject": ck["subject"],
                "clientcertnotbefore": ns_date(ck["notbefore"]), "clientcertnotafter": ns_date(ck["notafter"]),
                "daystoexpiration": days, "publickey": ck["publickey"], "publickeysize": ck["publickeysize"],
                "version": 3, "status": "Valid" if days >= 0 else "Expired", "passcrypt": "",
                "expirymonitor": ck.get("expirymonitor", "ENABLED"),
                "notificationperiod": str(ck.get("notificationperiod", 30))}

    def get_server(self, name: str | None, args: Args, q: Args) -> list[Row]:
        rows = [{"name": n, "ipaddress": ip, "state": "ENABLED"} for n, ip in self.state.servers.items()]
        if name is not None:
            rows = [r for r in rows if r["name"] == name]
            if not rows:
                raise not_found("name", name)
        return rows

    def get_service(self, name: str | None, args: Args, q: Args) -> list[Row]:
        names = [name] if name is not None else list(self.state.services)
        if name is not None and name not in self.state.services:
            raise not_found("name", name)
        rows = []
        for n in names:
            svc = self.state.services[n]
            rows.append({"name": n, "servername": svc["servername"], "ipaddress": svc["ipaddress"],
                         "port": svc["port"], "servicetype": svc["servicetype"],
                         "monconnectionclose": svc["monconnectionclose"], "svrstate": self.state.svrstate(svc),
                         "state": svc.get("state", "ENABLED"), "healthmonitor": svc.get("healthmonitor", "YES"),
                         "maxclient": "0", "numofconnections": 0, "statechangetimesec": ns_now()})
        return rows

    def get_sslcipher(self, name: str | None, args: Args, q: Args) -> list[Row]:
        rows = [{"ciphergroupname": g, "description": "Predefined Cipher Alias"} for g in BUILTIN_GROUPS]
        rows += [{"ciphergroupname": g, "description": "User Created Cipher Group"} for g in self.state.ciphergroups]
        if name is not None:
            rows = [r for r in rows if r["ciphergroupname"] == name]
            if not rows:
                raise not_found("ciphergroupname", name)
        return rows

    def get_sslcipher_sslciphersuite_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise arg_missing("ciphergroupname")
            groups = list(self.state.ciphergroups)
        else:
            groups = [name]
        rows = []
        for g in groups:
            ciphers = self.state.ciphergroups.get(g, BUILTIN_GROUPS.get(g))
            if ciphers is None:
                raise not_found("ciphergroupname", g)
            rows += [{"ciphergroupname": g, "ciphername": c, "cipherpriority": str(i + 1), "description": c}
                     for i, c in enumerate(ciphers)]
        return rows

    def get_lbvserver(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is not None and name not in self.state.lbvservers:
            raise not_found("name", name)
        rows = []
        for n in ([name] if name else list(self.state.lbvservers)):
            vs = self.state.lbvservers[n]
            cur, value = self.state.vserver_state(n)
            bound = self.state.bound_states(n)
            active = sum(1 for st in bound if st == "UP")
            row = {"name": n, "ipv46": vs["ipv46"], "port": vs["port"], "servicetype": vs["servicetype"],
                   "curstate": cur, "effectivestate": cur, "state": vs.get("state", "ENABLED"),
                   "lbmethod": vs.get("lbmethod", "LEASTCONNECTION"), "totalservices": str(len(bound)),
                   "activeservices": str(active), "health": str(100 * active // len(bound) if bound else 0),
                   "clttimeout": str(vs.get("clttimeout", 9000)), "status": 0, "range": "1",
                   "statechangetimesec": ns_now()}
            if value:
                row["value"] = value
            rows.append(row)
        return rows

    def get_lbvserver_service_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is None and q.get("bulkbindings") != "yes":
            raise arg_missing("name")
        if name is not None and name not in self.state.lbvservers:
            raise not_found("name", name)
        rows = []
        for b in self.state.lb_bindings:
            if name is not None and b["name"] != name:
                continue
            svc = self.state.services[b["servicename"]]
            rows.append({"name": b["name"], "servicename": b["servicename"], "ipv46": svc["ipaddress"],
                         "port": svc["port"], "servicetype": svc["servicetype"], "curstate": self.state.svrstate(svc),
                         "weight": str(b["weight"]), "dynamicweight": "0", "vsvrbindsvcip": svc["ipaddress"],
                         "vsvrbindsvcport": svc["port"]})
        return rows

    def get_lbvserver_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        names = self._binding_names(name, q, self.state.lbvservers, "name")
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

    def get_servicegroup(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is not None and name not in self.state.servicegroups:
            raise not_found("servicegroupname", name)
        rows = []
        for n in ([name] if name is not None else list(self.state.servicegroups)):
            sg = self.state.servicegroups[n]
            states = [self.state.member_state(n, m) for m in self.state.sg_members.get(n, [])]
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
                         "maxclient": "0", "maxreq": "0", "statechangetimesec": ns_now()})
        return rows

    def _member_rows(self, g: str) -> list[dict[str, Any]]:
        return [{"servicegroupname": g, "ip": m["ip"], "port": m["port"], "servername": m["servername"],
                 "state": m.get("state", "ENABLED"), "svrstate": self.state.member_state(g, m), "weight": "1",
                 "customserverid": "None", "serverid": 0, "hashid": "0", "graceful": "NO",
                 "statechangetimesec": ns_now(), "tickssincelaststatechange": "0"}
                for m in self.state.sg_members.get(g, [])]

    def get_servicegroup_servicegroupmember_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        # DOC12 documents only GET by group name; bulkbindings=yes is accepted as for the other bindings.
        return [r for g in self._binding_names(name, q, self.state.servicegroups, "servicegroupname")
                for r in self._member_rows(g)]

    def get_lbvserver_servicegroup_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        names = self._binding_names(name, q, self.state.lbvservers, "name")
        return [{"name": b["name"], "servicegroupname": b["servicegroupname"], "servicename": b["servicegroupname"],
                 "stateflag": "536936464"}  # both keys, as the DOC12 bulk example shows
                for b in self.state.lb_group_bindings if b["name"] in names]

    def get_lbvserver_servicegroupmember_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        names = self._binding_names(name, q, self.state.lbvservers, "name")
        rows = []
        for b in self.state.lb_group_bindings:
            if b["name"] not in names:
                continue
            g = b["servicegroupname"]
            for m in self.state.sg_members.get(g, []):
                rows.append({"name": b["name"], "servicegroupname": g, "ipv46": m["ip"], "port": m["port"],
                             "servicetype": self.state.servicegroups[g]["servicetype"],
                             "curstate": self.state.member_state(g, m), "weight": "1", "dynamicweight": "0"})
        return rows

    def get_sslvserver(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is not None and name not in self.state.sslvservers:
            raise not_found("vservername", name)
        rows = []
        for n in ([name] if name else list(self.state.sslvservers)):
            flags = self.state.sslvservers[n]
            row = {"vservername": n, "dh": "DISABLED", "ersa": "DISABLED", "sessreuse": "ENABLED",
                   "sesstimeout": "120", "snienable": "DISABLED", "ssl2": "DISABLED"}
            row.update({f: flags[f] for f in self.state.flags_known()})
            if flags.get("sslprofile"):
                row["sslprofile"] = flags["sslprofile"]
            rows.append(row)
        return rows

    def _cert_rows(self, vs: str) -> list[dict[str, Any]]:
        return [{"vservername": b["vservername"], "certkeyname": b["certkeyname"], "ca": b["ca"],
                 "snicert": b["snicert"], "crlcheck": "", "ocspcheck": ""}
                for b in self.state.cert_bindings if b["vservername"] == vs]

    def _cipher_rows(self, vs: str) -> list[dict[str, Any]]:
        if self.state.groups_as_suites:
            return []
        return [{"vservername": vs, "ciphername": c, "cipheraliasname": c, "description": c}
                for c in self.state.cipher_bindings.get(vs, [])]

    def _suite_rows(self, vs: str) -> list[dict[str, Any]]:
        out, seen = [], set()
        if self.state.groups_as_suites:  # the groups themselves, keyed by ciphername, before their suites
            out = [{"vservername": vs, "ciphername": c, "description": "cipher group"}
                   for c in self.state.cipher_bindings.get(vs, [])]
        for c in self.state.cipher_bindings.get(vs, []):
            for suite in self.state.ciphergroups.get(c, BUILTIN_GROUPS.get(c, [c])):
                if suite not in seen:
                    seen.add(suite)
                    out.append({"vservername": vs, "ciphername": suite, "description": suite})
        return out

    def _ssl_vs(self, name: str | None, q: dict[str, str], what: str) -> list[str]:
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise arg_missing("vservername")
            return list(self.state.sslvservers)
        if name not in self.state.sslvservers:
            if name in self.state.lbvservers:
                raise Fault(599, 1544, "Objects protocol type is not SSL", name)
            raise not_found("vservername", name)
        return [name]

    def get_sslvserver_sslcertkey_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        return [r for vs in self._ssl_vs(name, q, "cert") for r in self._cert_rows(vs)]

    def get_sslvserver_sslcipher_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        return [r for vs in self._ssl_vs(name, q, "cipher") for r in self._cipher_rows(vs)]

    def get_sslvserver_sslciphersuite_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        return [r for vs in self._ssl_vs(name, q, "suite") for r in self._suite_rows(vs)]

    def get_sslvserver_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
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

    def _binding_names(self, name: str | None, q: Args, table: dict[str, Any], what: str) -> list[str]:
        if name is None:
            if q.get("bulkbindings") != "yes":
                raise arg_missing(what)
            return list(table)
        if name not in table:
            raise not_found(what, name)
        return [name]

    def get_sslparameter(self, name: str | None, args: Args, q: Args) -> Row:
        return dict(self.state.sslparameter, defaultprofile=self.state.sslparameter["defaultprofile"])

    def get_nsconfig(self, name: str | None, args: Args, q: Args) -> Row:
        return {"configchanged": self.state.configchanged, "lastconfigchangedtime": self.state.lastconfigchangedtime,
                "lastconfigsavetime": self.state.lastconfigsavetime}

    # ---- stat -----------------------------------------------------------------------------------
    def stat(self, resource: str, name: str | None) -> dict[str, Any]:
        if resource == "lbvserver":
            rows = []
            for row in self.get_lbvserver(name, {}, {}):
                c = self.state.counters.get(row["name"], {})
                rows.append({"name": row["name"], "state": row["curstate"], "type": row["servicetype"],
                             "primaryipaddress": row["ipv46"], "primaryport": row["port"],
                             "curclntconnections": str(c.get("curclntconnections", 0)), "cursrvrconnections": "0",
                             "tothits": str(c.get("tothits", 0)), "totalrequests": str(c.get("totalrequests", 0)),
                             "establishedconn": str(c.get("establishedconn", 0)),
                             "totalrequestbytes": "0", "totalresponsebytes": "0",
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
