"""Profile (enhanced) mode: where the ADC runs the Default SSL Profile, protocols and ciphers live in an
SSL profile. The end state the NetScaler docs ("SSL profile infrastructure") describe: a front-end
`sslprofile` of our own with only the policy's protocols, the policy's cipher group bound to it (a new
profile starts with DEFAULT bound, which is unbound after, as citrix/terraform-provider-citrixadc's
sslprofile resource does), and the profile bound to each vserver (`set ssl vserver V -sslProfile P`).
The ADC's own ns_default_ profiles are never changed. Request shapes as ryancbutler/Citrix set-nsssl.ps1
sends them (POST sslprofile; sslprofile_sslcipher_binding {name, ciphername}; DELETE ...?args=cipherName:X).
"""

from __future__ import annotations

from typing import Any

from dicomtls.engine.advice import advice
from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.adc import for_release
from dicomtls.engine.backends.netscaler.current import Current
from dicomtls.engine.backends.netscaler.models import NitroRequest
from dicomtls.engine.backends.netscaler.steps import DEFAULT_FRONTEND_PROFILE, ApplyStep, batch, cli_quote
from dicomtls.engine.plan import Plan

PROFILE_TYPE = "FrontEnd"
NEW_PROFILE_CIPHERS = ["DEFAULT"]


def plan_profile(plan: Plan, cur: Current, usable: list[str], group: str, changes: list[Change],
                 steps: list[ApplyStep]) -> None:
    assert plan.netscaler is not None
    name = plan.netscaler.ssl_profile
    if not _profile_object(plan, cur, name, changes, steps):
        return
    _profile_ciphers(cur, name, group, changes, steps)
    _profile_bindings(cur, usable, name, changes, steps)


def _flags_cli(flags: dict[str, str]) -> str:
    return " ".join(f"-{k} {v}" for k, v in flags.items())


def _profile_object(plan: Plan, cur: Current, name: str, changes: list[Change], steps: list[ApplyStep]) -> bool:
    """Create or update the profile; False when it exists in a form we must not change."""
    want = for_release(plan.policy.netscaler_protocol_flags(), cur.release)
    on = ", ".join(k for k, v in want.items() if v == "ENABLED")
    have = cur.profile
    if have is None:
        c = Change(kind="sslprofile", name=name, action=Action.CREATE,
                   summary=f"front-end SSL profile with only {on} (the ADC runs the Default SSL Profile)",
                   cli=[f"add ssl profile {cli_quote(name)} -sslProfileType {PROFILE_TYPE} {_flags_cli(want)}"])
        changes.append(c)
        steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="sslprofile", body={"sslprofile": {
            "name": name, "sslprofiletype": PROFILE_TYPE, **want}})]))
        cur.profile_ciphers = list(NEW_PROFILE_CIPHERS)
        return True
    if have.sslprofiletype and have.sslprofiletype.upper() != PROFILE_TYPE.upper():
        changes.append(Change(
            kind="sslprofile", name=name, action=Action.CONFLICT,
            summary=f"exists as a {have.sslprofiletype} profile; virtual servers need a {PROFILE_TYPE} one",
            fields={"sslprofiletype": (have.sslprofiletype, PROFILE_TYPE)},
            hint="a profile's type cannot be changed", advice=advice("ns.rename_profile")))
        return False
    flags = have.flags()
    diff = {k: (flags.get(k), v) for k, v in want.items() if flags.get(k) != v}
    if not diff:
        changes.append(Change(kind="sslprofile", name=name, action=Action.UNCHANGED, summary=f"protocols: {on}"))
        return True
    c = Change(kind="sslprofile", name=name, action=Action.UPDATE, summary=f"protocols: only {on}", fields=diff,
               cli=[f"set ssl profile {cli_quote(name)} {_flags_cli(want)}"])
    changes.append(c)
    steps.append(ApplyStep([c], [NitroRequest(method="PUT", resource="sslprofile", name=name,
                                         body={"sslprofile": {"name": name, **want}})]))
    return True


def _profile_ciphers(cur: Current, name: str, group: str, changes: list[Change], steps: list[ApplyStep]) -> None:
    """Bind the group first, then unbind DEFAULT and anything else (never a moment without ciphers)."""
    bound = cur.profile_ciphers
    extra = [g for g in bound if g != group]
    label = f"{name} <- {group}"
    if group in bound and not extra:
        changes.append(Change(kind="sslprofile_sslcipher_binding", name=label, action=Action.UNCHANGED))
        return
    c = Change(kind="sslprofile_sslcipher_binding", name=label,
               action=Action.CREATE if group not in bound else Action.UPDATE,
               summary=f"only {group}" + (f"; unbind {', '.join(extra)}" if extra else ""),
               fields={"ciphers": (list(bound), [group])},
               cli=([f"bind ssl profile {cli_quote(name)} -cipherName {cli_quote(group)} -cipherPriority 1"]
                    if group not in bound else [])
               + [f"unbind ssl profile {cli_quote(name)} -cipherName {cli_quote(g)}" for g in extra])
    changes.append(c)
    reqs: list[NitroRequest] = []
    if group not in bound:
        reqs.append(NitroRequest(method="POST", resource="sslprofile_sslcipher_binding", body={
            "sslprofile_sslcipher_binding": {"name": name, "ciphername": group, "cipherpriority": 1}}))
    reqs += [NitroRequest(method="DELETE", resource="sslprofile_sslcipher_binding", name=name,
                          args={"ciphername": g}) for g in extra]
    steps.append(ApplyStep([c], reqs))


def _profile_bindings(cur: Current, usable: list[str], name: str, changes: list[Change], steps: list[ApplyStep]) -> None:
    """Each vserver uses our profile. One bound to another profile of the ADC's owner is a conflict: that
    choice is not ours to undo; the ADC's default front-end profile is replaced."""
    updates: list[tuple[Change, dict[str, Any]]] = []
    for vs in usable:
        have = cur.vs_profiles.get(vs, "")
        label = f"{vs} <- {name}"
        if have == name:
            changes.append(Change(kind="sslvserver", name=label, action=Action.UNCHANGED, summary="uses the profile"))
            continue
        if have and have != DEFAULT_FRONTEND_PROFILE:
            changes.append(Change(
                kind="sslvserver", name=label, action=Action.CONFLICT,
                summary=f"the vserver uses another SSL profile, {have}",
                fields={"sslprofile": (have, name)},
                hint=f"if the vserver should not use {have}, bind it back to {DEFAULT_FRONTEND_PROFILE} on the ADC instead",
                advice=advice("ns.adopt_profile", have=have)))
            continue
        c = Change(kind="sslvserver", name=label, action=Action.UPDATE,
                   summary="use the SSL profile (protocols and ciphers come from it)",
                   fields={"sslprofile": (have or None, name)},
                   cli=[f"set ssl vserver {cli_quote(vs)} -sslProfile {cli_quote(name)}"])
        changes.append(c)
        updates.append((c, {"vservername": vs, "sslprofile": name}))
    if updates:
        steps.append(ApplyStep([c for c, _ in updates], [batch("sslvserver", [i for _, i in updates], method="PUT")]))
