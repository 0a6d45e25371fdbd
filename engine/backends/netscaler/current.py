"""What the ADC holds, as far as the plan is concerned: read in one GET per object type.

First the facts about the ADC itself (release, HA role, SSL mode: engine.backends.netscaler.adc); a
release too old or a secondary node stops the reads there, since nothing will be written.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

from dicomtls.engine.backends.netscaler.adc import MIN_RELEASE, Ha, has_tls13, read_ha, read_release, read_ssl_mode
from dicomtls.engine.backends.netscaler.client import NitroClient, NitroError, missing_codes
from dicomtls.engine.backends.netscaler.models import (
    CertKey,
    LbVserverBindings,
    LbVserverRow,
    MemberRow,
    NsFeature,
    ServiceGroupRow,
    ServiceRow,
    SslProfileCipherBinding,
    SslProfileRow,
    SslVserverBindings,
    SslVserverRow,
    SystemFile,
)
from dicomtls.engine.backends.netscaler.steps import BUILTIN_CIPHER_NAMES, ssl_dir
from dicomtls.engine.ciphers import SUITES
from dicomtls.engine.plan import Plan

# A single suite's name ("TLS1.2-ECDHE-RSA-AES256-GCM-SHA384"), as opposed to a group or alias.
_SUITE_NAME = re.compile(r"^(SSL3|TLS1(\.[0-3])?)-[A-Z0-9]")
_SUITE_NAMES = {s.netscaler for s in SUITES.values()}


@dataclass
class Current:
    """What the ADC holds, as far as the plan is concerned."""

    release: tuple[int, int] | None = None  # None offline without a release given: assume a current one
    release_text: str = ""
    ha: Ha = field(default_factory=Ha)
    ssl_mode: str = "legacy"  # "profile" when the Default SSL Profile is enabled
    partition: str | None = None
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
    vs_profiles: dict[str, str] = field(default_factory=dict)  # vserver -> its SSL profile (profile mode)
    profile: SslProfileRow | None = None  # the plan's SSL profile, where it exists
    profile_ciphers: list[str] = field(default_factory=list)  # groups bound to it
    client: NitroClient | None = None  # for the reads only some decisions need; None offline
    _files: set[str] | None = None

    @property
    def tls13_known(self) -> bool:
        return has_tls13(self.release)

    @property
    def too_old(self) -> bool:
        return self.release is not None and self.release < MIN_RELEASE

    @property
    def blocked(self) -> bool:
        """Nothing will be written here: the release is too old, or this is the secondary of a pair."""
        return self.too_old or self.ha.role == "secondary"

    @property
    def ssl_dir(self) -> str:
        return ssl_dir(self.partition)

    def ssl_files(self) -> set[str]:
        if self.client is None:
            return set()
        if self._files is None:
            rows = self.client.get("systemfile", args={"filelocation": self.ssl_dir}, missing_ok=True)
            self._files = {SystemFile.model_validate(r).filename for r in rows}
        return self._files

    def file_content(self, name: str) -> bytes | None:
        if self.client is None or name not in self.ssl_files():
            return None
        rows = self.client.get("systemfile", name, args={"filelocation": self.ssl_dir}, missing_ok=True)
        if not rows:
            return None
        try:
            return base64.b64decode(SystemFile.model_validate(rows[0]).filecontent or "")
        except ValueError:
            return b""


def read_current(client: NitroClient, plan: Plan) -> Current:
    """The ADC's facts, then one GET per object type; the vserver-side reads only when a planned vserver
    already exists."""
    cur = Current(client=client, partition=plan.netscaler.partition if plan.netscaler else None)
    cur.release, cur.release_text = read_release(client)
    if cur.too_old:
        return cur
    cur.ha = read_ha(client)
    if cur.ha.role == "secondary":
        return cur
    cur.ssl_mode = read_ssl_mode(client)
    for r in client.get("nsfeature"):
        cur.features = {f.upper() for f in NsFeature.model_validate(r).feature}
    for r in client.get("sslcertkey", attrs="certkey,cert,key,serial,subject,issuer,clientcertnotafter,"
                                             "daystoexpiration,status"):
        ck = CertKey.model_validate(r)
        cur.certkeys[ck.certkey] = ck
    read_services(client, plan, cur)
    # "No such resource" for a cipher group: 258 in most references, 3711 "Cipher Group does not exist"
    # in the 12.0 error list; either means absent. A group with no ciphers answers without the key.
    try:
        rows = client.get("sslcipher_sslciphersuite_binding", plan.cipher_policy.name)
        cur.group = [str(r["ciphername"]) for r in sorted(rows, key=lambda r: int(r.get("cipherpriority") or 0))]
    except NitroError as exc:
        if exc.errorcode not in missing_codes("sslcipher_sslciphersuite_binding"):
            raise
    for r in client.get("lbvserver", attrs="name,ipv46,port,servicetype"):
        vs = LbVserverRow.model_validate(r)
        cur.lbvservers[vs.name] = vs
    seen_members: dict[str, set[tuple[str, int]]] = {}
    if any(v.name in cur.lbvservers for v in plan.virtual_server):
        seen_members = _read_vserver_side(client, plan, cur)
    if cur.ssl_mode == "profile":
        _read_profile(client, plan, cur)
    _read_members(client, plan, cur, seen_members)
    return cur


def _read_vserver_side(client: NitroClient, plan: Plan, cur: Current) -> dict[str, set[tuple[str, int]]]:
    """The umbrella reads: bindings of every vserver in one GET each (NITRO 12.0 usecases "Retrieve
    Bindings in Bulk"), then the sslvserver rows. Returns each group's members as the vservers see them."""
    seen_members: dict[str, set[tuple[str, int]]] = {}
    for r in client.get("lbvserver_binding", bulk=True):
        lb = LbVserverBindings.model_validate(r)
        bound = cur.lb_bindings.setdefault(lb.name, [])
        bound += [("service", b.servicename) for b in lb.lbvserver_service_binding]
        bound += [("servicegroup", b.servicegroupname) for b in lb.lbvserver_servicegroup_binding]
        for g in lb.lbvserver_servicegroup_binding:
            seen_members.setdefault(g.servicegroupname, set())
        for m in lb.lbvserver_servicegroupmember_binding:
            seen_members.setdefault(m.servicegroupname, set()).add((ip_key(m.ipv46), m.port))
    for r in client.get("sslvserver_binding", bulk=True):
        sb = SslVserverBindings.model_validate(r)
        cur.certs_bound[sb.vservername] = [b.certkeyname for b in sb.sslvserver_sslcertkey_binding
                                           if not b.ca and not b.snicert]
        cur.ciphers_bound[sb.vservername] = bound_groups(sb, plan.cipher_policy.name)
    # No attrs= here: asking an old firmware for an attribute it lacks (tls13) might itself be refused.
    for r in client.get("sslvserver"):
        row = SslVserverRow.model_validate(r)
        cur.flags[row.vservername] = row.flags()
        cur.vs_profiles[row.vservername] = row.sslprofile
    return seen_members


def bound_groups(sb: SslVserverBindings, plan_group: str) -> list[str]:
    """The cipher groups and aliases bound to a vserver, read from both binding types: some releases
    list groups only under sslvserver_sslciphersuite_binding (keyed by ciphername), next to the single
    suites the groups expand to (citrix/terraform-provider-citrixadc sslvserver_utils.go reads both)."""
    out = [b.group for b in sb.sslvserver_sslcipher_binding if b.group]
    for b in sb.sslvserver_sslciphersuite_binding:
        name = b.group
        is_group = name == plan_group or name.upper() in BUILTIN_CIPHER_NAMES or not (
            name in _SUITE_NAMES or _SUITE_NAME.match(name))
        if is_group and name not in out:
            out.append(name)
    return out


def _read_profile(client: NitroClient, plan: Plan, cur: Current) -> None:
    """The plan's SSL profile and its cipher bindings (enhanced mode only). Not found: 258, or 3734-class
    codes on some releases ([UNVERIFIED]); missing_ok covers 258."""
    assert plan.netscaler is not None
    name = plan.netscaler.ssl_profile
    rows = client.get("sslprofile", name, missing_ok=True)
    if not rows:
        return
    cur.profile = SslProfileRow.model_validate(rows[0])
    binds = client.get("sslprofile_sslcipher_binding", name, missing_ok=True)
    cur.profile_ciphers = [SslProfileCipherBinding.model_validate(r).group for r in binds]


def _read_members(client: NitroClient, plan: Plan, cur: Current, seen: dict[str, set[tuple[str, int]]]) -> None:
    for svc in plan.service:
        if not svc.is_group or svc.name not in cur.servicegroups:
            continue
        want = {(ip_key(m.host), m.port) for m in svc.targets}
        if seen.get(svc.name) == want:
            cur.members[svc.name] = want  # what the vserver sees agrees with the plan: no read needed
            continue
        # Otherwise ask the group itself (the authority; also for a group no vserver uses yet).
        rows = client.get("servicegroup_servicegroupmember_binding", svc.name, missing_ok=True)
        cur.members[svc.name] = {(ip_key(m.ip), m.port) for m in map(MemberRow.model_validate, rows)}


def ip_key(ip: str) -> str:
    """An address as one spelling (the ADC may print an IPv6 address differently from the plan)."""
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return ip.strip()


def read_services(client: NitroClient, plan: Plan, cur: Current) -> None:
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
