"""Reconcile, don't replay: read what the ADC holds, compare with the plan, plan only the writes needed.

The end state is the seed guide's procedure (issue 4; nitro.md §14): features LB and SSL; the
cert and key in /nsconfig/ssl and a cert-key pair; a TCP service per PACS with monconnectionclose
RESET (a service group with one member binding per server where the plan lists several `members`,
§7); the policy's cipher group in order; an SSL_TCP lbvserver per virtual server, bound to its
service or group, the pair and the cipher group, DEFAULT unbound, only the policy's protocols on;
config saved.

Reads are few and bulk (§13): one GET per object type, bindings of all vservers at once
(`bulkbindings=yes`), `attrs=` projections; file contents and the SSL parameter are read only when a
decision needs them. Writes of one type go in one array payload where NITRO allows it.

Anything that exists and differs in a way we must not overwrite is a CONFLICT with a hint, never a
silent change: a pair of that name holding another certificate (unless replace_cert), a file of that
name with other content, ip:port taken by another vserver, a service of that name pointing elsewhere,
a service where the plan wants a group (or the reverse), a group member the plan does not list.

Each Change carries its NetScaler CLI lines; each Step the NITRO requests that make its changes.
`offline_steps` builds the full create sequence from the plan alone, for `dicomtls export`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backends.base import Action, Change
from engine.backends.netscaler.client import NitroClient, NitroError
from engine.backends.netscaler.models import (CertKey, LbVserverBindings, LbVserverRow, MemberRow, NitroRequest,
                                              NsFeature, ServiceGroupRow, ServiceRow, SslParameter,
                                              SslVserverBindings, SslVserverRow, SystemFile)
from engine.backends.netscaler.renewal import old_file_removals
from engine.errors import UserError
from engine.plan import Plan, Service, host_port

SSL_DIR = "/nsconfig/ssl"
FEATURES = ("LB", "SSL")
VSERVER_TYPE = "SSL_TCP"
SERVICE_TYPE = "TCP"
MONITOR_CLOSE = "RESET"  # the half-open monitor the guide asks for (§6: "Monitoring Connection Close Bit")
# What a new SSL vserver starts with (§9, §10.3): DEFAULT bound, ssl3..tls12 on, tls13 off.
NEW_VSERVER_FLAGS = {"ssl3": "ENABLED", "tls1": "ENABLED", "tls11": "ENABLED", "tls12": "ENABLED", "tls13": "DISABLED"}
NEW_VSERVER_CIPHERS = ["DEFAULT"]
BUILTIN_CIPHER_NAMES = {"DEFAULT", "DEFAULT_BACKEND", "HIGH", "MEDIUM", "LOW", "ALL", "EXPORT", "ECDHE", "SSL3",
                        "TLS1", "TLS1-ECDHE", "TLS1.2", "TLS1.3", "EDH", "AES", "AES-GCM", "RC4", "DES", "3DES"}


# --- the local side -------------------------------------------------------------------------------------

@dataclass
class LocalCert:
    """The plan's certificate as it will be installed. Never printed: key_pem is only sent to the ADC."""

    cert_file: str  # name in /nsconfig/ssl
    key_file: str
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)
    serial: int | None = None
    subject: str = ""
    not_after: str = ""

    @property
    def tag(self) -> str:
        """A short content tag for renewal file names (new names, never an overwrite)."""
        return hashlib.sha256(self.cert_pem or b"").hexdigest()[:8]


def _normalise_pem(data: bytes) -> bytes:
    """What Windows editors do to PEM files (a BOM, CRLF) is undone before upload and comparison."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n")


def local_cert(plan: Plan, passphrase: str | None, *, check: bool = True) -> LocalCert:
    """Read and check the plan's PEM pair (engine.certs.check_pair) before touching the ADC."""
    from cryptography import x509

    cert_path, key_path = plan.cert_path, plan.key_path
    if check:
        from engine.certs import check_pair

        check_pair(cert_path, key_path, passphrase.encode() if passphrase else None,
                   policy=plan.cipher_policy.profile)
    cert_pem = _normalise_pem(cert_path.read_bytes())
    key_pem = _normalise_pem(key_path.read_bytes())
    leaf = x509.load_pem_x509_certificate(cert_pem)
    return LocalCert(cert_file=Path(plan.certificate.cert).name, key_file=Path(plan.certificate.key).name,
                     cert_pem=cert_pem, key_pem=key_pem, serial=leaf.serial_number,
                     subject=leaf.subject.rfc4514_string(), not_after=leaf.not_valid_after_utc.strftime("%Y-%m-%d"))


def offline_cert(plan: Plan) -> LocalCert:
    """For export: file names from the plan; the certificate's content if it is readable (it is public)."""
    out = LocalCert(cert_file=Path(plan.certificate.cert).name, key_file=Path(plan.certificate.key).name)
    try:
        out.cert_pem = _normalise_pem(plan.cert_path.read_bytes())
    except OSError:
        pass
    return out


# --- the ADC side -----------------------------------------------------------------------------------------

@dataclass
class Current:
    """What the ADC holds, as far as the plan is concerned."""

    features: set[str] = field(default_factory=set)
    certkeys: dict[str, CertKey] = field(default_factory=dict)
    services: dict[str, ServiceRow] = field(default_factory=dict)
    servicegroups: dict[str, ServiceGroupRow] = field(default_factory=dict)
    members: dict[str, set[tuple[str, int]]] = field(default_factory=dict)  # group -> (ip, port), where read
    group: list[str] | None = None  # the plan's cipher group, ciphers in priority order; None = absent
    lbvservers: dict[str, LbVserverRow] = field(default_factory=dict)
    lb_bindings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # vserver -> (kind, name)
    certs_bound: dict[str, list[str]] = field(default_factory=dict)  # vserver -> server cert-key pairs
    ciphers_bound: dict[str, list[str]] = field(default_factory=dict)  # vserver -> cipher groups/aliases
    flags: dict[str, dict[str, str]] = field(default_factory=dict)  # vserver -> protocol flags
    tls13_known: bool = True
    client: NitroClient | None = None  # for the reads only some decisions need; None offline
    _files: set[str] | None = None
    _defaultprofile: str | None = None

    def ssl_files(self) -> set[str]:
        if self.client is None:
            return set()
        if self._files is None:
            rows = self.client.get("systemfile", args={"filelocation": SSL_DIR}, missing_ok=True)
            self._files = {SystemFile.model_validate(r).filename for r in rows}
        return self._files

    def file_content(self, name: str) -> bytes | None:
        if self.client is None or name not in self.ssl_files():
            return None
        rows = self.client.get("systemfile", name, args={"filelocation": SSL_DIR}, missing_ok=True)
        if not rows:
            return None
        try:
            return base64.b64decode(SystemFile.model_validate(rows[0]).filecontent or "")
        except ValueError:
            return b""

    def defaultprofile(self) -> str:
        if self.client is None:
            return "DISABLED"
        if self._defaultprofile is None:
            rows = self.client.get("sslparameter", attrs="defaultprofile")
            self._defaultprofile = SslParameter.model_validate(rows[0]).defaultprofile.upper() if rows else "DISABLED"
        return self._defaultprofile


def read_current(client: NitroClient, plan: Plan) -> Current:
    """One GET per object type; the vserver-side reads only when a planned vserver already exists."""
    cur = Current(client=client)
    for r in client.get("nsfeature"):
        cur.features = {f.upper() for f in NsFeature.model_validate(r).feature}
    for r in client.get("sslcertkey", attrs="certkey,cert,key,serial,subject,issuer,clientcertnotafter,"
                                             "daystoexpiration,status"):
        ck = CertKey.model_validate(r)
        cur.certkeys[ck.certkey] = ck
    _read_services(client, plan, cur)
    try:  # 258 = no such group; a group with no ciphers answers without the key (§8)
        rows = client.get("sslcipher_sslciphersuite_binding", plan.cipher_policy.name)
        cur.group = [str(r["ciphername"]) for r in sorted(rows, key=lambda r: int(r.get("cipherpriority") or 0))]
    except NitroError as exc:
        if exc.errorcode != 258:
            raise
    for r in client.get("lbvserver", attrs="name,ipv46,port,servicetype"):
        vs = LbVserverRow.model_validate(r)
        cur.lbvservers[vs.name] = vs
    seen_members: dict[str, set[tuple[str, int]]] = {}  # group -> members, as the vservers bound to it see them
    if any(v.name in cur.lbvservers for v in plan.virtual_server):
        # The umbrella read: service and service-group bindings (and the groups' members) of every vserver
        # in one GET (DOC12 usecases "Retrieve Bindings in Bulk").
        for r in client.get("lbvserver_binding", bulk=True):
            lb = LbVserverBindings.model_validate(r)
            bound = cur.lb_bindings.setdefault(lb.name, [])
            bound += [("service", b.servicename) for b in lb.lbvserver_service_binding]
            bound += [("servicegroup", b.servicegroupname) for b in lb.lbvserver_servicegroup_binding]
            for g in lb.lbvserver_servicegroup_binding:
                seen_members.setdefault(g.servicegroupname, set())
            for m in lb.lbvserver_servicegroupmember_binding:
                seen_members.setdefault(m.servicegroupname, set()).add((_ip_key(m.ipv46), m.port))
        for r in client.get("sslvserver_binding", bulk=True):
            sb = SslVserverBindings.model_validate(r)
            cur.certs_bound[sb.vservername] = [b.certkeyname for b in sb.sslvserver_sslcertkey_binding
                                               if not b.ca and not b.snicert]
            cur.ciphers_bound[sb.vservername] = [b.group for b in sb.sslvserver_sslcipher_binding]
        # No attrs= here: asking an old firmware for an attribute it lacks (tls13) might itself be refused.
        for r in client.get("sslvserver"):
            row = SslVserverRow.model_validate(r)
            cur.flags[row.vservername] = row.flags()
            if row.tls13 is None:
                cur.tls13_known = False  # firmware before 12.1 has no tls13 attribute (§10.3)
    for svc in plan.service:
        if not svc.is_group or svc.name not in cur.servicegroups:
            continue
        want = {(_ip_key(m.host), m.port) for m in svc.targets}
        if seen_members.get(svc.name) == want:
            cur.members[svc.name] = want  # what the vserver sees agrees with the plan: no read needed
            continue
        # Otherwise ask the group itself (the authority; also for a group no vserver uses yet).
        rows = client.get("servicegroup_servicegroupmember_binding", svc.name, missing_ok=True)
        cur.members[svc.name] = {(_ip_key(m.ip), m.port) for m in map(MemberRow.model_validate, rows)}
    return cur


def _ip_key(ip: str) -> str:
    """An address as one spelling (the ADC may print an IPv6 address differently from the plan)."""
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return ip.strip()


def _read_services(client: NitroClient, plan: Plan, cur: Current) -> None:
    """Services and service groups, each read only when the plan needs it. One name cannot be both a
    service and a service group on the ADC ([UNVERIFIED]: `bind lb vserver VS NAME` takes either, so
    they share a namespace), so the other kind is read only where the plan would create a name."""
    singles = [s.name for s in plan.service if not s.is_group]
    groups = [s.name for s in plan.service if s.is_group]

    def services() -> None:
        for r in client.get("service", attrs="name,ipaddress,port,servicetype,monconnectionclose"):
            row = ServiceRow.model_validate(r)
            cur.services[row.name] = row

    def servicegroups() -> None:
        for r in client.get("servicegroup", attrs="servicegroupname,servicetype,monconnectionclose"):
            row = ServiceGroupRow.model_validate(r)
            cur.servicegroups[row.servicegroupname] = row

    if singles:
        services()
    if groups or any(n not in cur.services for n in singles):
        servicegroups()
    if not singles and any(n not in cur.servicegroups for n in groups):
        services()


# --- the plan of changes ------------------------------------------------------------------------------------

@dataclass
class Step:
    """Requests that make some changes; the unit of progress and of done/not done."""

    changes: list[Change]  # done when this step's requests succeeded
    requests: list[NitroRequest]
    title: str = ""  # for a step that only prepares a later one's changes

    @property
    def label(self) -> str:
        return self.title or "; ".join(step_name(c) for c in self.changes)


def step_name(c: Change) -> str:
    return f"{c.kind} {c.name}: {c.action.value}"


def _q(name: str) -> str:
    """Quote a name for the NetScaler CLI when it has spaces or quotes."""
    return f'"{name}"' if any(ch in name for ch in ' "\'') else name


def _batch(resource: str, items: list[dict[str, Any]], method: str = "POST",
           action: str | None = None) -> NitroRequest:
    """One request for several objects of one type: NITRO's array payload (§13)."""
    body: Any = items[0] if len(items) == 1 else items
    return NitroRequest(method=method, resource=resource, action=action, body={resource: body})


@dataclass
class Reconciliation:
    changes: list[Change]
    steps: list[Step]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.CONFLICT]


def reconcile(plan: Plan, cur: Current, local: LocalCert, *, replace_cert: bool = False,
              passphrase: str | None = None, pending_save: bool = False) -> Reconciliation:
    changes: list[Change] = []
    steps: list[Step] = []

    def add(change: Change, *requests: NitroRequest) -> Change:
        changes.append(change)
        if change.writes and requests:
            steps.append(Step([change], list(requests)))
        return change

    policy = plan.policy
    ciphers = policy.netscaler_ciphers
    group = plan.cipher_policy.name
    ck_name = plan.certificate.name

    # 1. features
    missing = [f for f in FEATURES if f not in cur.features]
    add(Change(kind="nsfeature", name=" ".join(FEATURES),
               action=Action.UPDATE if missing else Action.UNCHANGED,
               summary=f"enable {' and '.join(missing)}" if missing else "LB and SSL enabled",
               fields={"enabled": (sorted(cur.features & set(FEATURES)), list(FEATURES))} if missing else {},
               cli=[f"enable ns feature {' '.join(missing)}"] if missing else []),
        NitroRequest(method="POST", resource="nsfeature", action="enable", body={"nsfeature": {"feature": missing}}))

    # 2. certificate files and the cert-key pair
    _certificate(plan, cur, local, replace_cert, passphrase, ck_name, changes, steps)

    # 3. services (the PACS): a TCP service, or a service group where the plan lists several members
    _services(plan, cur, changes, steps)

    # 4. the cipher group, ciphers in the policy's order
    if group.upper() in BUILTIN_CIPHER_NAMES:
        add(Change(kind="sslcipher", name=group, action=Action.CONFLICT, summary="a built-in cipher alias",
                   hint="built-in aliases cannot be changed: give cipher_policy.name another name, e.g. TLS-1.2-Only"))
    elif cur.group is None:
        c = add(Change(kind="sslcipher", name=group, action=Action.CREATE,
                       summary=f"cipher group with {len(ciphers)} suites ({policy.name})",
                       fields={"ciphers": ([], ciphers)},
                       cli=[f"add ssl cipher {_q(group)}"]
                       + [f"bind ssl cipher {_q(group)} -cipherName {n} -cipherPriority {i}"
                          for i, n in enumerate(ciphers, 1)]))
        steps.append(Step([c], [NitroRequest(method="POST", resource="sslcipher",
                                             body={"sslcipher": {"ciphergroupname": group}}),
                                _cipher_binds(group, ciphers, 0)]))
    elif cur.group != ciphers:
        keep = 0
        while keep < min(len(cur.group), len(ciphers)) and cur.group[keep] == ciphers[keep]:
            keep += 1
        drop = cur.group[keep:]
        c = add(Change(kind="sslcipher", name=group, action=Action.UPDATE,
                       summary=f"set the suites to {policy.name}'s, in order",
                       fields={"ciphers": (cur.group, ciphers)},
                       cli=[f"unbind ssl cipher {_q(group)} -cipherName {n}" for n in drop]
                       + [f"bind ssl cipher {_q(group)} -cipherName {n} -cipherPriority {i}"
                          for i, n in enumerate(ciphers[keep:], keep + 1)]))
        reqs = [NitroRequest(method="DELETE", resource="sslcipher_sslciphersuite_binding", name=group,
                             args={"ciphername": n}) for n in drop]
        if ciphers[keep:]:
            reqs.append(_cipher_binds(group, ciphers[keep:], keep))
        steps.append(Step([c], reqs))
    else:
        add(Change(kind="sslcipher", name=group, action=Action.UNCHANGED,
                   summary=f"{len(ciphers)} suites in order ({policy.name})"))

    # 5-9. the virtual servers and their bindings, one kind at a time so that each kind is one array write
    _vservers(plan, cur, ck_name, group, changes, steps)

    # 10. save
    if any(c.writes for c in changes) or pending_save:
        add(Change(kind="nsconfig", name="save", action=Action.UPDATE,
                   summary="save the running configuration" if any(c.writes for c in changes)
                   else "a previous run stopped before saving: save the running configuration",
                   cli=["save ns config"]),
            NitroRequest(method="POST", resource="nsconfig", action="save", body={"nsconfig": {}}))
    return Reconciliation(changes, steps)


def _services(plan: Plan, cur: Current, changes: list[Change], steps: list[Step]) -> None:
    creates: list[tuple[Change, dict[str, Any]]] = []
    group_creates: list[tuple[Change, dict[str, Any]]] = []
    member_binds: list[tuple[Change, dict[str, Any]]] = []
    for svc in plan.service:
        for m in svc.targets:
            try:
                ipaddress.ip_address(m.host)
            except ValueError:
                where = "service.host" if not svc.members else "each of service.members"
                raise UserError(f"service {svc.name!r}: host {m.host!r} is a name; NetScaler services are created "
                                "by IP address here", f"give the PACS's IP address as {where} for {svc.name!r}"
                                ) from None
        if svc.is_group:
            _group(svc, cur, changes, steps, group_creates, member_binds)
            continue
        have = cur.services.get(svc.name)
        if have is None and svc.name in cur.servicegroups:
            changes.append(Change(
                kind="service", name=svc.name, action=Action.CONFLICT,
                summary="a service group of that name exists; the plan wants a single service",
                fields={"kind": ("servicegroup", "service")},
                hint=f"give [[service]] another name in the plan, list its servers under `members` to use the group, "
                     f"or remove the stale group on the ADC (rm serviceGroup {_q(svc.name)})"))
        elif have is None:
            c = Change(kind="service", name=svc.name, action=Action.CREATE,
                       summary=f"TCP {svc.host}:{svc.port}, monitor closes with RESET",
                       cli=[f"add service {_q(svc.name)} {svc.host} {SERVICE_TYPE} {svc.port} "
                            f"-monConnectionClose {MONITOR_CLOSE}"])
            changes.append(c)
            creates.append((c, {"name": svc.name, "ip": svc.host, "servicetype": SERVICE_TYPE, "port": svc.port,
                                "monconnectionclose": MONITOR_CLOSE}))
        elif (_ip_key(have.ipaddress), have.port, have.servicetype.upper()) != (_ip_key(svc.host), svc.port,
                                                                                SERVICE_TYPE):
            changes.append(Change(
                kind="service", name=svc.name, action=Action.CONFLICT,
                summary=f"exists and points elsewhere: {have.servicetype} {have.ipaddress}:{have.port}",
                fields={"target": (f"{have.servicetype} {have.ipaddress}:{have.port}",
                                   f"{SERVICE_TYPE} {svc.host}:{svc.port}")},
                hint=f"another service already has the name {svc.name!r}: give [[service]] another name in "
                     "the plan, or change/remove that service on the ADC if it is stale"))
        elif have.monconnectionclose.upper() != MONITOR_CLOSE:
            changes.append(_monitor_reset("service", "name", svc.name, have.monconnectionclose, steps))
        else:
            changes.append(Change(kind="service", name=svc.name, action=Action.UNCHANGED,
                                  summary=f"TCP {svc.host}:{svc.port}, RESET"))
    if creates:
        steps.append(Step([c for c, _ in creates], [_batch("service", [item for _, item in creates])]))
    if group_creates:
        steps.append(Step([c for c, _ in group_creates], [_batch("servicegroup", [i for _, i in group_creates])]))
    if member_binds:  # one array for the members of every group (§13)
        steps.append(Step([c for c, _ in member_binds],
                          [_batch("servicegroup_servicegroupmember_binding", [i for _, i in member_binds])]))


def _monitor_reset(resource: str, key: str, name: str, have: str, steps: list[Step]) -> Change:
    """An update of a service or service group to the half-open monitor (monconnectionclose RESET)."""
    cli_kind = {"service": "service", "servicegroup": "serviceGroup"}[resource]
    c = Change(kind=resource, name=name, action=Action.UPDATE,
               summary="monitor connections closed with RESET (half-open monitor)",
               fields={"monconnectionclose": (have, MONITOR_CLOSE)},
               cli=[f"set {cli_kind} {_q(name)} -monConnectionClose {MONITOR_CLOSE}"])
    steps.append(Step([c], [NitroRequest(method="PUT", resource=resource, name=name,
                                         body={resource: {key: name, "monconnectionclose": MONITOR_CLOSE}})]))
    return c


def _group(svc: Service, cur: Current, changes: list[Change], steps: list[Step],
           group_creates: list[tuple[Change, dict[str, Any]]],
           member_binds: list[tuple[Change, dict[str, Any]]]) -> None:
    """A service group (§7) for a PACS on several servers: the group, then one member binding each."""
    name = svc.name
    have = cur.servicegroups.get(name)
    addrs = ", ".join(m.address for m in svc.targets)
    if have is None and name in cur.services:
        other = cur.services[name]
        changes.append(Change(
            kind="servicegroup", name=name, action=Action.CONFLICT,
            summary=f"a service (not a service group) of that name exists: {other.servicetype} "
                    f"{other.ipaddress}:{other.port}; the plan wants a group of {len(svc.targets)} members",
            fields={"kind": ("service", "servicegroup")},
            hint=f"give [[service]] another name in the plan, or, if that service is the old single-server setup, "
                 f"remove it on the ADC (unbind it from its vservers, then rm service {_q(name)}) and run again"))
        return
    there: set[tuple[str, int]] = set()
    if have is None:
        c = Change(kind="servicegroup", name=name, action=Action.CREATE,
                   summary=f"{SERVICE_TYPE} group of {len(svc.targets)} ({addrs}), monitor closes with RESET",
                   cli=[f"add serviceGroup {_q(name)} {SERVICE_TYPE} -monConnectionClose {MONITOR_CLOSE}"])
        changes.append(c)
        group_creates.append((c, {"servicegroupname": name, "servicetype": SERVICE_TYPE,
                                  "monconnectionclose": MONITOR_CLOSE}))
    elif have.servicetype.upper() != SERVICE_TYPE:
        changes.append(Change(
            kind="servicegroup", name=name, action=Action.CONFLICT,
            summary=f"exists as a {have.servicetype} group; the plan wants {SERVICE_TYPE}",
            fields={"servicetype": (have.servicetype, SERVICE_TYPE)},
            hint=f"a group's type cannot be changed: give [[service]] another name in the plan, or remove the stale "
                 f"group on the ADC (rm serviceGroup {_q(name)})"))
        return
    else:
        there = cur.members.get(name, set())
        if have.monconnectionclose.upper() != MONITOR_CLOSE:
            changes.append(_monitor_reset("servicegroup", "servicegroupname", name, have.monconnectionclose, steps))
        else:
            changes.append(Change(kind="servicegroup", name=name, action=Action.UNCHANGED,
                                  summary=f"{SERVICE_TYPE} group, RESET"))
    wanted = {(_ip_key(m.host), m.port): m for m in svc.targets}
    for key, m in wanted.items():
        label = f"{name} {m.address}"
        if key in there:
            changes.append(Change(kind="servicegroup_servicegroupmember_binding", name=label,
                                  action=Action.UNCHANGED, summary="member"))
            continue
        c = Change(kind="servicegroup_servicegroupmember_binding", name=label, action=Action.CREATE,
                   summary="add the member", cli=[f"bind serviceGroup {_q(name)} {m.host} {m.port}"])
        changes.append(c)
        member_binds.append((c, {"servicegroupname": name, "ip": m.host, "port": m.port}))
    for ip, port in sorted(there - set(wanted)):
        address = host_port(ip, port)
        changes.append(Change(
            kind="servicegroup_servicegroupmember_binding", name=f"{name} {address}", action=Action.CONFLICT,
            summary="a member on the ADC that the plan does not list: traffic would also go there",
            fields={"member": (address, None)},
            hint=f"if that server is part of this PACS, add {{ host = \"{ip}\", port = {port} }} to the service's "
                 f"`members` in the plan; if it is stale, unbind it on the ADC (unbind serviceGroup {_q(name)} "
                 f"{ip} {port})"))


def _cipher_binds(group: str, names: list[str], offset: int) -> NitroRequest:
    return _batch("sslcipher_sslciphersuite_binding",
                  [{"ciphergroupname": group, "ciphername": n, "cipherpriority": offset + i}
                   for i, n in enumerate(names, 1)])


def _certificate(plan: Plan, cur: Current, local: LocalCert, replace_cert: bool, passphrase: str | None,
                 ck_name: str, changes: list[Change], steps: list[Step]) -> None:
    have = cur.certkeys.get(ck_name)
    same_elsewhere = next((ck for ck in cur.certkeys.values() if ck.certkey != ck_name and local.serial is not None
                           and ck.serial_int() == local.serial), None)

    def pair_body(cert_file: str, key_file: str, update: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"certkey": ck_name, "cert": cert_file, "key": key_file, "inform": "PEM"}
        if passphrase:
            body["passplain"] = passphrase
        if update:
            body["nodomaincheck"] = True  # a renewal may change the subject (certbot-hook#10)
        return body

    if have is not None and local.serial is not None and have.serial_int() == local.serial:
        for f in (local.cert_file, local.key_file):
            changes.append(Change(kind="systemfile", name=f"{SSL_DIR}/{f}", action=Action.UNCHANGED,
                                  summary="in use by the cert-key pair"))
        changes.append(Change(kind="sslcertkey", name=ck_name, action=Action.UNCHANGED,
                              summary=f"holds this certificate (serial {format(local.serial, 'X')}, "
                                      f"expires {local.not_after})"))
        return
    if have is not None and local.serial is not None and not replace_cert:
        changes.append(Change(
            kind="sslcertkey", name=ck_name, action=Action.CONFLICT,
            summary=f"exists and holds another certificate (serial {have.serial or '?'}, {have.subject or '?'}, "
                    f"expires {have.clientcertnotafter or '?'})",
            fields={"serial": (have.serial, format(local.serial, "X"))},
            hint="if this is a renewal, run again with --replace-cert (new files, then `update ssl certKey`: no "
                 "moment without a certificate); otherwise give certificate.name another name in the plan"))
        return
    if have is None and same_elsewhere is not None:
        changes.append(Change(
            kind="sslcertkey", name=ck_name, action=Action.CONFLICT,
            summary=f"this certificate is already installed as cert-key pair {same_elsewhere.certkey!r}",
            hint=f"the ADC refuses the same certificate twice: set certificate.name = \"{same_elsewhere.certkey}\" in "
                 "the plan to reuse that pair"))
        return

    renewal = have is not None  # replace_cert: new file names, then update the pair in place
    cert_file, key_file = local.cert_file, local.key_file
    if renewal:
        stem = lambda n: (Path(n).stem, Path(n).suffix)  # noqa: E731
        cert_file = "{0}-{2}{1}".format(*stem(local.cert_file), local.tag)
        key_file = "{0}-{2}{1}".format(*stem(local.key_file), local.tag)
    uploads: list[tuple[Change, dict[str, Any]]] = []
    blocked = False
    for fname, content, what in ((cert_file, local.cert_pem, "certificate"), (key_file, local.key_pem, "key")):
        there = fname in cur.ssl_files()
        if there:
            remote = cur.file_content(fname)
            if remote is not None and _normalise_pem(remote) == content:
                changes.append(Change(kind="systemfile", name=f"{SSL_DIR}/{fname}", action=Action.UNCHANGED,
                                      summary=f"the {what}, already uploaded"))
                continue
            changes.append(Change(
                kind="systemfile", name=f"{SSL_DIR}/{fname}", action=Action.CONFLICT,
                summary=f"a file of that name holds other content than the plan's {what}",
                hint=f"this tool never overwrites files: rename the local {what} file (the name on the ADC follows "
                     f"it), or remove /nsconfig/ssl/{fname} on the ADC if nothing uses it (shell: rm)"))
            blocked = True
            continue
        c = Change(kind="systemfile", name=f"{SSL_DIR}/{fname}", action=Action.CREATE,
                   summary=f"upload the {what}",
                   cli=[f"# upload {fname} to {SSL_DIR}/ (NITRO systemfile; from a shell: "
                        f"scp {fname} nsroot@<NSIP>:{SSL_DIR}/)"])
        changes.append(c)
        encoded = base64.b64encode(content).decode() if content is not None else f"<base64 of {fname}>"
        uploads.append((c, {"filename": fname, "filelocation": SSL_DIR, "filecontent": encoded,
                            "fileencoding": "BASE64"}))
    if uploads:
        steps.append(Step([c for c, _ in uploads], [_batch("systemfile", [i for _, i in uploads])]))
    if blocked:
        changes.append(Change(kind="sslcertkey", name=ck_name, action=Action.UNCHANGED if have else Action.CREATE,
                              summary="waits for the file conflict above"))
        return
    if renewal:
        c = Change(kind="sslcertkey", name=ck_name, action=Action.UPDATE,
                   summary=f"replace the certificate (renewal) with serial {format(local.serial or 0, 'X')}, "
                           f"expires {local.not_after}; bindings stay, no moment without a certificate",
                   fields={"serial": (have.serial, format(local.serial or 0, "X")),
                           "cert": (have.cert, cert_file), "key": (have.key, key_file)},
                   cli=[f"update ssl certKey {_q(ck_name)} -cert {cert_file} -key {key_file}"
                        + (" -password" if passphrase else "") + " -noDomainCheck"])
        changes.append(c)
        steps.append(Step([c], [NitroRequest(method="POST", resource="sslcertkey", action="update",
                                             body={"sslcertkey": pair_body(cert_file, key_file, True)})]))
        # The replaced files go in the next step, so only once the update has succeeded.
        removals = old_file_removals(have, [ck for ck in cur.certkeys.values() if ck.certkey != ck_name],
                                     {cert_file, key_file}, cur.ssl_files())
        changes += [c for c, _ in removals]
        if removals:
            steps.append(Step([c for c, _ in removals], [r for _, r in removals]))
        return
    c = Change(kind="sslcertkey", name=ck_name, action=Action.CREATE,
               summary="cert-key pair" + (f" (serial {format(local.serial, 'X')}, expires {local.not_after})"
                                          if local.serial is not None else ""),
               cli=[f"add ssl certKey {_q(ck_name)} -cert {cert_file} -key {key_file}"
                    + (" -password" if passphrase else "")])
    changes.append(c)
    steps.append(Step([c], [NitroRequest(method="POST", resource="sslcertkey",
                                         body={"sslcertkey": pair_body(cert_file, key_file, False)})]))


def _vservers(plan: Plan, cur: Current, ck_name: str, group: str, changes: list[Change], steps: list[Step]) -> None:
    flags_wanted = plan.policy.netscaler_protocol_flags()
    usable: list[str] = []  # vservers that exist or will be created (no conflict)

    # lbvservers
    creates: list[tuple[Change, dict[str, Any]]] = []
    for vs in plan.virtual_server:
        have = cur.lbvservers.get(vs.name)
        if have is not None:
            if (have.servicetype.upper(), have.ipv46, have.port) != (VSERVER_TYPE, vs.ip, vs.port):
                changes.append(Change(
                    kind="lbvserver", name=vs.name, action=Action.CONFLICT,
                    summary=f"exists as {have.servicetype} {have.ipv46}:{have.port}",
                    fields={"vserver": (f"{have.servicetype} {have.ipv46}:{have.port}",
                                        f"{VSERVER_TYPE} {vs.ip}:{vs.port}")},
                    hint="another virtual server already has this name: give [[virtual_server]] another name, or "
                         "remove the old one on the ADC if it is stale (its type and port cannot be changed)"))
                continue
            changes.append(Change(kind="lbvserver", name=vs.name, action=Action.UNCHANGED,
                                  summary=f"{VSERVER_TYPE} {vs.ip}:{vs.port}"))
            usable.append(vs.name)
            continue
        taken = next((o for o in cur.lbvservers.values() if o.ipv46 == vs.ip and o.port == vs.port), None)
        if taken is not None:
            changes.append(Change(
                kind="lbvserver", name=vs.name, action=Action.CONFLICT,
                summary=f"{vs.ip}:{vs.port} is taken by lbvserver {taken.name!r} ({taken.servicetype})",
                hint=f"give virtual_server {vs.name!r} another ip or port, or rename it to {taken.name!r} if that is "
                     "the same virtual server"))
            continue
        c = Change(kind="lbvserver", name=vs.name, action=Action.CREATE,
                   summary=f"{VSERVER_TYPE} {vs.ip}:{vs.port} ({vs.role})",
                   cli=[f"add lb vserver {_q(vs.name)} {VSERVER_TYPE} {vs.ip} {vs.port}"])
        changes.append(c)
        creates.append((c, {"name": vs.name, "servicetype": VSERVER_TYPE, "ipv46": vs.ip, "port": vs.port}))
        usable.append(vs.name)
        cur.flags.setdefault(vs.name, {k: v for k, v in NEW_VSERVER_FLAGS.items()
                                       if k != "tls13" or cur.tls13_known})
        cur.ciphers_bound.setdefault(vs.name, list(NEW_VSERVER_CIPHERS))
    if creates:
        steps.append(Step([c for c, _ in creates], [_batch("lbvserver", [i for _, i in creates])]))
    by_name = {vs.name: vs for vs in plan.virtual_server}

    # service / service-group bindings
    binds: list[tuple[Change, dict[str, Any]]] = []
    group_binds: list[tuple[Change, dict[str, Any]]] = []
    for name in usable:
        vs = by_name[name]
        is_group = plan.service_named(vs.service).is_group
        kind = "lbvserver_servicegroup_binding" if is_group else "lbvserver_service_binding"
        want = ("servicegroup" if is_group else "service", vs.service)
        bound = cur.lb_bindings.get(name, [])
        others = [b for b in bound if b != want]
        label = f"{name} -> {vs.service}"
        if others:
            what = ", ".join(f"{'service group' if k == 'servicegroup' else 'service'} {n}" for k, n in others)
            changes.append(Change(
                kind=kind, name=label, action=Action.CONFLICT,
                summary=f"the vserver is also bound to {what}, which the plan does not name",
                hint=f"traffic would also go there: unbind it on the ADC (unbind lb vserver {_q(name)} "
                     f"{_q(others[0][1])}) if it is stale, or point the plan's virtual server at it"))
            continue
        if want in bound:
            changes.append(Change(kind=kind, name=label, action=Action.UNCHANGED))
            continue
        c = Change(kind=kind, name=label, action=Action.CREATE, cli=[f"bind lb vserver {_q(name)} {_q(vs.service)}"])
        changes.append(c)
        if is_group:  # no weight here: NITRO refuses it for a group (1093, ansible-collection-netscaleradc#191)
            group_binds.append((c, {"name": name, "servicegroupname": vs.service}))
        else:
            binds.append((c, {"name": name, "servicename": vs.service}))
    if binds:
        steps.append(Step([c for c, _ in binds], [_batch("lbvserver_service_binding", [i for _, i in binds])]))
    if group_binds:
        steps.append(Step([c for c, _ in group_binds],
                          [_batch("lbvserver_servicegroup_binding", [i for _, i in group_binds])]))

    # certificate bindings
    binds = []
    for name in usable:
        bound = cur.certs_bound.get(name, [])
        label = f"{name} <- {ck_name}"
        if bound == [ck_name]:
            changes.append(Change(kind="sslvserver_sslcertkey_binding", name=label, action=Action.UNCHANGED))
            continue
        if [b for b in bound if b != ck_name]:
            changes.append(Change(
                kind="sslvserver_sslcertkey_binding", name=label, action=Action.CONFLICT,
                summary=f"the vserver presents another certificate: {', '.join(b for b in bound if b != ck_name)}",
                hint=f"if that pair is stale, unbind it on the ADC (unbind ssl vserver {_q(name)} -certkeyName "
                     f"{_q(bound[0])}); for a renewal of the plan's pair use --replace-cert"))
            continue
        c = Change(kind="sslvserver_sslcertkey_binding", name=label, action=Action.CREATE,
                   cli=[f"bind ssl vserver {_q(name)} -certkeyName {_q(ck_name)}"])
        changes.append(c)
        binds.append((c, {"vservername": name, "certkeyname": ck_name}))
    if binds:
        steps.append(Step([c for c, _ in binds], [_batch("sslvserver_sslcertkey_binding", [i for _, i in binds])]))

    # cipher bindings: bind the group first, then unbind DEFAULT and anything else (never without ciphers)
    binds = []
    unbinds: list[tuple[Change, list[NitroRequest]]] = []
    ssl_changes: list[Change] = []
    for name in usable:
        bound = cur.ciphers_bound.get(name, [])
        extra = [g for g in bound if g != group]
        label = f"{name} <- {group}"
        if group in bound and not extra:
            changes.append(Change(kind="sslvserver_sslcipher_binding", name=label, action=Action.UNCHANGED))
            continue
        c = Change(kind="sslvserver_sslcipher_binding", name=label,
                   action=Action.CREATE if group not in bound else Action.UPDATE,
                   summary=f"only {group}" + (f"; unbind {', '.join(extra)}" if extra else ""),
                   fields={"ciphers": (bound, [group])},
                   cli=([f"bind ssl vserver {_q(name)} -cipherName {_q(group)}"] if group not in bound else [])
                   + [f"unbind ssl vserver {_q(name)} -cipherName {_q(g)}" for g in extra])
        changes.append(c)
        ssl_changes.append(c)
        if group not in bound:
            binds.append((c, {"vservername": name, "ciphername": group}))
        if extra:
            unbinds.append((c, [NitroRequest(method="DELETE", resource="sslvserver_sslcipher_binding", name=name,
                                             args={"ciphername": g}) for g in extra]))
    unbinding = {id(c) for c, _ in unbinds}
    if binds:
        steps.append(Step([c for c, _ in binds if id(c) not in unbinding],
                          [_batch("sslvserver_sslcipher_binding", [i for _, i in binds])],
                          title="; ".join(f"sslvserver_sslcipher_binding {c.name}: bind" for c, _ in binds)))
    for c, reqs in unbinds:  # a change is done when its unbinds are
        steps.append(Step([c], reqs))

    # protocol flags
    updates: list[tuple[Change, dict[str, Any]]] = []
    for name in usable:
        have = cur.flags.get(name, {})
        known = [k for k in flags_wanted if k in have or (k == "tls13" and cur.tls13_known)]
        want = {k: flags_wanted[k] for k in known}
        if not cur.tls13_known and flags_wanted.get("tls13") == "ENABLED":
            changes.append(Change(
                kind="sslvserver", name=name, action=Action.CONFLICT,
                summary="the policy enables TLS 1.3, which this ADC's firmware does not have",
                hint="choose a TLS 1.2 policy (bcp195-nd) or update the firmware to 12.1 or later"))
            continue
        diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        if not diff:
            changes.append(Change(kind="sslvserver", name=name, action=Action.UNCHANGED,
                                  summary="protocols: " + ", ".join(k for k, v in want.items() if v == "ENABLED")))
            continue
        c = Change(kind="sslvserver", name=name, action=Action.UPDATE,
                   summary="protocols: only " + ", ".join(k for k, v in want.items() if v == "ENABLED"),
                   fields=diff,
                   cli=[f"set ssl vserver {_q(name)} " + " ".join(f"-{k} {v}" for k, v in want.items())])
        changes.append(c)
        ssl_changes.append(c)
        updates.append((c, {"vservername": name, **want}))
    if updates:
        steps.append(Step([c for c, _ in updates], [_batch("sslvserver", [i for _, i in updates], method="PUT")]))

    # the Default SSL Profile owns ciphers and protocols when enabled (§10.2): say so before any write
    if ssl_changes and cur.defaultprofile() == "ENABLED":
        changes.append(Change(
            kind="sslparameter", name="defaultprofile", action=Action.CONFLICT,
            summary="the ADC's Default SSL Profile is enabled: ciphers and protocols cannot be set on a vserver "
                    "(NITRO 3740/3679)",
            fields={"defaultprofile": ("ENABLED", "DISABLED")},
            hint="on the ADC run `set ssl parameter -defaultProfile DISABLED` and `save ns config` (this affects "
                 "every SSL virtual server: agree it with the ADC's owner), then run again"))


def offline_steps(plan: Plan, passphrase: str | None = None) -> Reconciliation:
    """The full create sequence against an empty ADC, from the plan alone (for export)."""
    return reconcile(plan, Current(), offline_cert(plan), passphrase=passphrase)
