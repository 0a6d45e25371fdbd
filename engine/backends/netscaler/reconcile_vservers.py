"""The virtual servers and their bindings, one kind at a time so that each kind is one array write.

Legacy mode (the ADC's Default SSL Profile off): protocols and ciphers are set on each vserver, as the
guide does it. Profile mode: they live in an SSL profile of our own (reconcile_profile).
"""

from __future__ import annotations

from typing import Any

from dicomtls.engine.advice import advice
from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.adc import TLS13_RELEASE, for_release, release_text
from dicomtls.engine.backends.netscaler.current import Current
from dicomtls.engine.backends.netscaler.models import NitroRequest
from dicomtls.engine.backends.netscaler.reconcile_profile import plan_profile
from dicomtls.engine.backends.netscaler.steps import (
    DEFAULT_FRONTEND_PROFILE,
    NEW_VSERVER_CIPHERS,
    NEW_VSERVER_FLAGS,
    VSERVER_TYPE,
    ApplyStep,
    batch,
    cli_quote,
)
from dicomtls.engine.plan import Plan

Pending = list[tuple[Change, dict[str, Any]]]


def plan_vservers(plan: Plan, cur: Current, ck_name: str, group: str, changes: list[Change],
                  steps: list[ApplyStep]) -> None:
    if tls13_refused(plan, cur, changes):
        return
    usable = _lbvservers(plan, cur, changes, steps)
    _service_bindings(plan, cur, usable, changes, steps)
    _cert_bindings(cur, usable, ck_name, changes, steps)
    if cur.ssl_mode == "profile":
        plan_profile(plan, cur, usable, group, changes, steps)
        return
    _cipher_bindings(cur, usable, group, changes, steps)
    _protocol_flags(plan, cur, usable, changes, steps)


def tls13_refused(plan: Plan, cur: Current, changes: list[Change]) -> bool:
    """A policy with TLS 1.3 where the ADC cannot offer it is a conflict before anything is written:
    TLS 1.3 needs release 12.1 or later and, on a NetScaler, the enhanced SSL profile (NetScaler docs
    "TLS 1.3 protocol support"; in legacy mode a vserver's tls13 flag is refused or does nothing)."""
    if plan.policy.netscaler_protocol_flags().get("tls13") != "ENABLED":
        return False
    names = ", ".join(vs.name for vs in plan.virtual_server)
    if not cur.tls13_known:
        changes.append(Change(
            kind="sslvserver", name=names, action=Action.CONFLICT,
            summary=f"the policy {plan.policy.name} enables TLS 1.3, which release {release_text(cur.release)} does "
                    "not have",
            hint=f"choose a TLS 1.2 policy (bcp195-nd) for this ADC, or update its firmware to "
                 f"{release_text(TLS13_RELEASE)} or later"))
        return True
    if cur.ssl_mode == "legacy":
        changes.append(Change(
            kind="sslvserver", name=names, action=Action.CONFLICT,
            summary=f"the policy {plan.policy.name} enables TLS 1.3, which a NetScaler offers only with its Default "
                    "(enhanced) SSL Profile; this ADC runs without it (legacy mode)",
            fields={"sslparameter.defaultprofile": ("DISABLED", "ENABLED")},
            hint="choose the TLS 1.2 policy bcp195-nd, which Butterfly accepts; or have the ADC's owner enable the "
                 "Default SSL Profile (it changes every SSL virtual server on the ADC and cannot be turned off "
                 "again), then run again"))
        return True
    return False


def _lbvservers(plan: Plan, cur: Current, changes: list[Change], steps: list[ApplyStep]) -> list[str]:
    """The lbvservers; returns the names that exist or will be created (no conflict)."""
    usable: list[str] = []
    creates: Pending = []
    for vs in plan.virtual_server:
        have = cur.lbvservers.get(vs.name)
        if have is not None:
            if (have.servicetype.upper(), have.ipv46, have.port) != (VSERVER_TYPE, vs.ip, vs.port):
                changes.append(Change(
                    kind="lbvserver", name=vs.name, action=Action.CONFLICT,
                    summary=f"exists as {have.servicetype} {have.ipv46}:{have.port}",
                    fields={"vserver": (f"{have.servicetype} {have.ipv46}:{have.port}",
                                        f"{VSERVER_TYPE} {vs.ip}:{vs.port}")},
                    hint="another virtual server already has this name (its type and port cannot be changed)",
                    advice=advice("ns.rename_vserver")))
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
                advice=advice("ns.vserver_address_taken", name=vs.name, taken=taken.name)))
            continue
        c = Change(kind="lbvserver", name=vs.name, action=Action.CREATE,
                   summary=f"{VSERVER_TYPE} {vs.ip}:{vs.port} ({vs.role})",
                   cli=[f"add lb vserver {cli_quote(vs.name)} {VSERVER_TYPE} {vs.ip} {vs.port}"])
        changes.append(c)
        creates.append((c, {"name": vs.name, "servicetype": VSERVER_TYPE, "ipv46": vs.ip, "port": vs.port}))
        usable.append(vs.name)
        _new_vserver_defaults(cur, vs.name)
    if creates:
        steps.append(ApplyStep([c for c, _ in creates], [batch("lbvserver", [i for _, i in creates])]))
    return usable


def _new_vserver_defaults(cur: Current, name: str) -> None:
    """What a new SSL vserver starts with: DEFAULT bound and ssl3..tls12 on in legacy mode; the ADC's
    default front-end profile in profile mode (NetScaler docs "SSL profile infrastructure")."""
    cur.flags.setdefault(name, for_release(NEW_VSERVER_FLAGS, cur.release))
    cur.ciphers_bound.setdefault(name, list(NEW_VSERVER_CIPHERS))
    if cur.ssl_mode == "profile":
        cur.vs_profiles.setdefault(name, DEFAULT_FRONTEND_PROFILE)


def _service_bindings(plan: Plan, cur: Current, usable: list[str], changes: list[Change],
                      steps: list[ApplyStep]) -> None:
    by_name = {vs.name: vs for vs in plan.virtual_server}
    binds: Pending = []
    group_binds: Pending = []
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
                hint=f"traffic would also go there: unbind it on the ADC (unbind lb vserver {cli_quote(name)} "
                     f"{cli_quote(others[0][1])}) if it is stale, or point the plan's virtual server at it"))
            continue
        if want in bound:
            changes.append(Change(kind=kind, name=label, action=Action.UNCHANGED))
            continue
        c = Change(kind=kind, name=label, action=Action.CREATE,
                   cli=[f"bind lb vserver {cli_quote(name)} {cli_quote(vs.service)}"])
        changes.append(c)
        if is_group:  # no weight here: NITRO refuses it for a group (1093, ansible-collection-netscaleradc#191)
            group_binds.append((c, {"name": name, "servicegroupname": vs.service}))
        else:
            binds.append((c, {"name": name, "servicename": vs.service}))
    if binds:
        steps.append(ApplyStep([c for c, _ in binds], [batch("lbvserver_service_binding", [i for _, i in binds])]))
    if group_binds:
        steps.append(ApplyStep([c for c, _ in group_binds],
                          [batch("lbvserver_servicegroup_binding", [i for _, i in group_binds])]))


def _cert_bindings(cur: Current, usable: list[str], ck_name: str, changes: list[Change], steps: list[ApplyStep]) -> None:
    binds: Pending = []
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
                hint=f"if that pair is stale, unbind it on the ADC (unbind ssl vserver {cli_quote(name)} -certkeyName "
                     f"{cli_quote(bound[0])})", advice=advice("ns.renew_binding")))
            continue
        c = Change(kind="sslvserver_sslcertkey_binding", name=label, action=Action.CREATE,
                   cli=[f"bind ssl vserver {cli_quote(name)} -certkeyName {cli_quote(ck_name)}"])
        changes.append(c)
        binds.append((c, {"vservername": name, "certkeyname": ck_name}))
    if binds:
        steps.append(ApplyStep([c for c, _ in binds], [batch("sslvserver_sslcertkey_binding", [i for _, i in binds])]))


def _cipher_bindings(cur: Current, usable: list[str], group: str, changes: list[Change], steps: list[ApplyStep]) -> None:
    """Legacy mode: bind the group first, then unbind DEFAULT and anything else (never without ciphers)."""
    binds: Pending = []
    unbinds: list[tuple[Change, list[NitroRequest]]] = []
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
                   cli=([f"bind ssl vserver {cli_quote(name)} -cipherName {cli_quote(group)}"]
                        if group not in bound else [])
                   + [f"unbind ssl vserver {cli_quote(name)} -cipherName {cli_quote(g)}" for g in extra])
        changes.append(c)
        if group not in bound:
            binds.append((c, {"vservername": name, "ciphername": group}))
        if extra:
            unbinds.append((c, [NitroRequest(method="DELETE", resource="sslvserver_sslcipher_binding", name=name,
                                             args={"ciphername": g}) for g in extra]))
    unbinding = {id(c) for c, _ in unbinds}
    if binds:
        steps.append(ApplyStep([c for c, _ in binds if id(c) not in unbinding],
                          [batch("sslvserver_sslcipher_binding", [i for _, i in binds])],
                          title="; ".join(f"sslvserver_sslcipher_binding {c.name}: bind" for c, _ in binds)))
    for c, reqs in unbinds:  # a change is done when its unbinds are
        steps.append(ApplyStep([c], reqs))


def _protocol_flags(plan: Plan, cur: Current, usable: list[str], changes: list[Change], steps: list[ApplyStep]) -> None:
    """Legacy mode: only the policy's protocols on each vserver; no tls13 attribute before 12.1."""
    want = for_release(plan.policy.netscaler_protocol_flags(), cur.release)
    updates: Pending = []
    for name in usable:
        have = cur.flags.get(name, {})
        diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        on = ", ".join(k for k, v in want.items() if v == "ENABLED")
        if not diff:
            changes.append(Change(kind="sslvserver", name=name, action=Action.UNCHANGED, summary=f"protocols: {on}"))
            continue
        c = Change(kind="sslvserver", name=name, action=Action.UPDATE, summary=f"protocols: only {on}", fields=diff,
                   cli=[f"set ssl vserver {cli_quote(name)} " + " ".join(f"-{k} {v}" for k, v in want.items())])
        changes.append(c)
        updates.append((c, {"vservername": name, **want}))
    if updates:
        steps.append(ApplyStep([c for c, _ in updates], [batch("sslvserver", [i for _, i in updates], method="PUT")]))
