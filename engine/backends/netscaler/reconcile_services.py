"""Services and service groups (the PACS): create, update the monitor, or conflict."""

from __future__ import annotations

import ipaddress
from typing import Any

from dicomtls.engine.addresses import host_port
from dicomtls.engine.advice import advice
from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.current import Current, ip_key
from dicomtls.engine.backends.netscaler.models import NitroRequest
from dicomtls.engine.backends.netscaler.steps import MONITOR_CLOSE, SERVICE_TYPE, ApplyStep, batch, cli_quote
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, Service


def plan_services(plan: Plan, cur: Current, changes: list[Change], steps: list[ApplyStep]) -> None:
    creates: list[tuple[Change, dict[str, Any]]] = []
    group_creates: list[tuple[Change, dict[str, Any]]] = []
    member_binds: list[tuple[Change, dict[str, Any]]] = []
    for svc in plan.service:
        for m in svc.targets:
            try:
                ipaddress.ip_address(m.host)
            except ValueError:
                raise UserError(f"service {svc.name!r}: host {m.host!r} is a name; NetScaler services are created "
                                "by IP address here", advice=advice("ns.pacs_by_ip")) from None
        if svc.is_group:
            _group(svc, cur, changes, steps, group_creates, member_binds)
            continue
        have = cur.services.get(svc.name)
        if have is None and svc.name in cur.servicegroups:
            changes.append(Change(
                kind="service", name=svc.name, action=Action.CONFLICT,
                summary="a service group of that name exists; the plan wants a single service",
                fields={"kind": ("servicegroup", "service")},
                hint=f"if that group is stale, remove it on the ADC instead (rm serviceGroup {cli_quote(svc.name)})",
                advice=advice("ns.rename_or_group")))
        elif have is None:
            c = Change(kind="service", name=svc.name, action=Action.CREATE,
                       summary=f"TCP {svc.host}:{svc.port}, monitor closes with RESET",
                       cli=[f"add service {cli_quote(svc.name)} {svc.host} {SERVICE_TYPE} {svc.port} "
                            f"-monConnectionClose {MONITOR_CLOSE}"])
            changes.append(c)
            creates.append((c, {"name": svc.name, "ip": svc.host, "servicetype": SERVICE_TYPE, "port": svc.port,
                                "monconnectionclose": MONITOR_CLOSE}))
        elif (ip_key(have.ipaddress), have.port, have.servicetype.upper()) != (ip_key(svc.host), svc.port,
                                                                                SERVICE_TYPE):
            changes.append(Change(
                kind="service", name=svc.name, action=Action.CONFLICT,
                summary=f"exists and points elsewhere: {have.servicetype} {have.ipaddress}:{have.port}",
                fields={"target": (f"{have.servicetype} {have.ipaddress}:{have.port}",
                                   f"{SERVICE_TYPE} {svc.host}:{svc.port}")},
                hint=f"another service already has the name {svc.name!r}; if it is stale, change or remove it on "
                     "the ADC instead", advice=advice("ns.rename_service")))
        elif have.monconnectionclose.upper() != MONITOR_CLOSE:
            changes.append(_monitor_reset("service", "name", svc.name, have.monconnectionclose, steps))
        else:
            changes.append(Change(kind="service", name=svc.name, action=Action.UNCHANGED,
                                  summary=f"TCP {svc.host}:{svc.port}, RESET"))
    if creates:
        steps.append(ApplyStep([c for c, _ in creates], [batch("service", [item for _, item in creates])]))
    if group_creates:
        steps.append(ApplyStep([c for c, _ in group_creates], [batch("servicegroup", [i for _, i in group_creates])]))
    if member_binds:  # one array for the members of every group (§13)
        steps.append(ApplyStep([c for c, _ in member_binds],
                          [batch("servicegroup_servicegroupmember_binding", [i for _, i in member_binds])]))


def _monitor_reset(resource: str, key: str, name: str, have: str, steps: list[ApplyStep]) -> Change:
    """An update of a service or service group to the half-open monitor (monconnectionclose RESET)."""
    cli_kind = {"service": "service", "servicegroup": "serviceGroup"}[resource]
    c = Change(kind=resource, name=name, action=Action.UPDATE,
               summary="monitor connections closed with RESET (half-open monitor)",
               fields={"monconnectionclose": (have, MONITOR_CLOSE)},
               cli=[f"set {cli_kind} {cli_quote(name)} -monConnectionClose {MONITOR_CLOSE}"])
    steps.append(ApplyStep([c], [NitroRequest(method="PUT", resource=resource, name=name,
                                         body={resource: {key: name, "monconnectionclose": MONITOR_CLOSE}})]))
    return c


def _group(svc: Service, cur: Current, changes: list[Change], steps: list[ApplyStep],
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
            hint=f"if that service is the old single-server setup, remove it on the ADC instead (unbind it from its "
                 f"vservers, then rm service {cli_quote(name)}) and run again", advice=advice("ns.rename_service")))
        return
    there: set[tuple[str, int]] = set()
    if have is None:
        c = Change(kind="servicegroup", name=name, action=Action.CREATE,
                   summary=f"{SERVICE_TYPE} group of {len(svc.targets)} ({addrs}), monitor closes with RESET",
                   cli=[f"add serviceGroup {cli_quote(name)} {SERVICE_TYPE} -monConnectionClose {MONITOR_CLOSE}"])
        changes.append(c)
        group_creates.append((c, {"servicegroupname": name, "servicetype": SERVICE_TYPE,
                                  "monconnectionclose": MONITOR_CLOSE}))
    elif have.servicetype.upper() != SERVICE_TYPE:
        changes.append(Change(
            kind="servicegroup", name=name, action=Action.CONFLICT,
            summary=f"exists as a {have.servicetype} group; the plan wants {SERVICE_TYPE}",
            fields={"servicetype": (have.servicetype, SERVICE_TYPE)},
            hint=f"a group's type cannot be changed; if that group is stale, remove it on the ADC instead "
                 f"(rm serviceGroup {cli_quote(name)})", advice=advice("ns.rename_service")))
        return
    else:
        there = cur.members.get(name, set())
        if have.monconnectionclose.upper() != MONITOR_CLOSE:
            changes.append(_monitor_reset("servicegroup", "servicegroupname", name, have.monconnectionclose, steps))
        else:
            changes.append(Change(kind="servicegroup", name=name, action=Action.UNCHANGED,
                                  summary=f"{SERVICE_TYPE} group, RESET"))
    wanted = {(ip_key(m.host), m.port): m for m in svc.targets}
    for key, m in wanted.items():
        label = f"{name} {m.address}"
        if key in there:
            changes.append(Change(kind="servicegroup_servicegroupmember_binding", name=label,
                                  action=Action.UNCHANGED, summary="member"))
            continue
        c = Change(kind="servicegroup_servicegroupmember_binding", name=label, action=Action.CREATE,
                   summary="add the member", cli=[f"bind serviceGroup {cli_quote(name)} {m.host} {m.port}"])
        changes.append(c)
        member_binds.append((c, {"servicegroupname": name, "ip": m.host, "port": m.port}))
    for ip, port in sorted(there - set(wanted)):
        address = host_port(ip, port)
        changes.append(Change(
            kind="servicegroup_servicegroupmember_binding", name=f"{name} {address}", action=Action.CONFLICT,
            summary="a member on the ADC that the plan does not list: traffic would also go there",
            fields={"member": (address, None)},
            hint=f"if it is stale, unbind it on the ADC (unbind serviceGroup {cli_quote(name)} {ip} {port})",
            advice=advice("ns.add_member", ip=ip, port=port)))
