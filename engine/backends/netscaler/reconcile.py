"""Reconcile, don't replay: read what the ADC holds, compare with the plan, plan only the writes needed.

The end state is the seed guide's procedure: features LB and SSL; the cert and key in the SSL folder
(of the plan's admin partition, if any) and a cert-key pair; a TCP service per PACS with
monconnectionclose RESET (a service group with one member binding per server where the plan lists
several `members`); the policy's cipher group in order; an SSL_TCP lbvserver per virtual server,
bound to its service or group and the pair; then, in legacy mode, the cipher group bound and DEFAULT
unbound on the vserver with only the policy's protocols on, or, where the ADC runs the Default SSL
Profile, an SSL profile of our own carrying both (reconcile_profile); config saved.

The ADC's release, HA role and SSL mode are read first (adc.py): on a release older than we support,
or on the secondary node of a pair, the result is one conflict saying why, and nothing is written.

Reads are few and bulk: one GET per object type, bindings of all vservers at once (`bulkbindings=yes`,
NITRO 12.0 usecases), `attrs=` projections; file contents are read only when a decision needs them.
Writes of one type go in one array payload where NITRO allows it.

Anything that exists and differs in a way we must not overwrite is a CONFLICT with a hint, never a
silent change: a pair of that name holding another certificate (unless replace_cert), a file of that
name with other content, ip:port taken by another vserver, a service of that name pointing elsewhere,
a service where the plan wants a group (or the reverse), a group member the plan does not list.

Each Change carries its NetScaler CLI lines; each ApplyStep the NITRO requests that make its changes.
`offline_steps` builds the full create sequence from the plan alone, for `dicomtls export`.
"""

from __future__ import annotations

from dicomtls.engine.advice import advice
from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.adc import MIN_RELEASE, release_text
from dicomtls.engine.backends.netscaler.current import Current
from dicomtls.engine.backends.netscaler.local import LocalCert, offline_cert
from dicomtls.engine.backends.netscaler.models import NitroRequest
from dicomtls.engine.backends.netscaler.reconcile_certs import plan_certificate
from dicomtls.engine.backends.netscaler.reconcile_services import plan_services
from dicomtls.engine.backends.netscaler.reconcile_vservers import plan_vservers
from dicomtls.engine.backends.netscaler.steps import (
    BUILTIN_CIPHER_NAMES,
    FEATURES,
    ApplyStep,
    Reconciliation,
    batch,
    cli_quote,
)
from dicomtls.engine.plan import Plan


def reconcile(plan: Plan, cur: Current, local: LocalCert, *, replace_cert: bool = False,
              passphrase: str | None = None, pending_save: bool = False) -> Reconciliation:
    if cur.blocked:
        return Reconciliation([blocked_change(cur)], [])
    changes: list[Change] = []
    steps: list[ApplyStep] = []
    # 1. features
    missing = [f for f in FEATURES if f not in cur.features]
    changes.append(c := Change(
        kind="nsfeature", name=" ".join(FEATURES), action=Action.UPDATE if missing else Action.UNCHANGED,
        summary=f"enable {' and '.join(missing)}" if missing else "LB and SSL enabled",
        fields={"enabled": (sorted(cur.features & set(FEATURES)), list(FEATURES))} if missing else {},
        cli=[f"enable ns feature {' '.join(missing)}"] if missing else []))
    if missing:
        steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="nsfeature", action="enable",
                                             body={"nsfeature": {"feature": missing}})]))
    # 2. certificate files and the cert-key pair
    plan_certificate(plan, cur, local, replace_cert, passphrase, plan.certificate.name, changes, steps)
    # 3. services (the PACS): a TCP service, or a service group where the plan lists several members
    plan_services(plan, cur, changes, steps)
    # 4. the cipher group, ciphers in the policy's order
    _cipher_group(plan, cur, changes, steps)
    # 5-9. the virtual servers and their bindings (and, in profile mode, the SSL profile)
    plan_vservers(plan, cur, plan.certificate.name, plan.cipher_policy.name, changes, steps)
    # 10. save
    if any(c.writes for c in changes) or pending_save:
        changes.append(c := Change(
            kind="nsconfig", name="save", action=Action.UPDATE,
            summary="save the running configuration" if any(c.writes for c in changes)
            else "a previous run stopped before saving: save the running configuration",
            cli=["save ns config"]))
        steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="nsconfig", action="save",
                                             body={"nsconfig": {}})]))
    return Reconciliation(changes, steps)


def blocked_change(cur: Current) -> Change:
    """Why nothing is written on this ADC: a release older than we support, or an HA secondary (writes
    belong on the primary; a secondary refuses them, NITRO 368 "Operation permitted only on primary node")."""
    if cur.too_old:
        return Change(
            kind="nsversion", name=release_text(cur.release), action=Action.CONFLICT,
            summary=f"this ADC runs release {release_text(cur.release)} ({cur.release_text}); this tool supports "
                    f"{release_text(MIN_RELEASE)} and later",
            fields={"release": (release_text(cur.release), f">= {release_text(MIN_RELEASE)}")},
            advice=advice("ns.firmware_too_old", release=release_text(MIN_RELEASE)))
    return Change(
        kind="hanode", name="0", action=Action.CONFLICT,
        summary=f"this node is the secondary of an HA pair; the primary is {cur.ha.primary or 'the other node'}",
        fields={"state": ("Secondary", "Primary")},
        advice=advice("ns.not_primary", primary=cur.ha.primary or "its NSIP"))


def _cipher_group(plan: Plan, cur: Current, changes: list[Change], steps: list[ApplyStep]) -> None:
    policy, group = plan.policy, plan.cipher_policy.name
    ciphers = policy.netscaler_ciphers
    if group.upper() in BUILTIN_CIPHER_NAMES:
        changes.append(Change(
            kind="sslcipher", name=group, action=Action.CONFLICT, summary="a built-in cipher alias",
            hint="built-in aliases cannot be changed", advice=advice("ns.rename_cipher_group")))
    elif cur.group is None:
        changes.append(c := Change(
            kind="sslcipher", name=group, action=Action.CREATE,
            summary=f"cipher group with {len(ciphers)} suites ({policy.name})", fields={"ciphers": ([], ciphers)},
            cli=[f"add ssl cipher {cli_quote(group)}"] + [f"bind ssl cipher {cli_quote(group)} -cipherName {n} "
                                                          f"-cipherPriority {i}" for i, n in enumerate(ciphers, 1)]))
        steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="sslcipher",
                                             body={"sslcipher": {"ciphergroupname": group}}),
                                _cipher_binds(group, ciphers, 0)]))
    elif cur.group != ciphers:
        keep = 0
        while keep < min(len(cur.group), len(ciphers)) and cur.group[keep] == ciphers[keep]:
            keep += 1
        drop = cur.group[keep:]
        changes.append(c := Change(
            kind="sslcipher", name=group, action=Action.UPDATE, summary=f"set the suites to {policy.name}'s, in order",
            fields={"ciphers": (cur.group, ciphers)},
            cli=[f"unbind ssl cipher {cli_quote(group)} -cipherName {n}" for n in drop]
            + [f"bind ssl cipher {cli_quote(group)} -cipherName {n} -cipherPriority {i}"
               for i, n in enumerate(ciphers[keep:], keep + 1)]))
        reqs = [NitroRequest(method="DELETE", resource="sslcipher_sslciphersuite_binding", name=group,
                             args={"ciphername": n}) for n in drop]
        if ciphers[keep:]:
            reqs.append(_cipher_binds(group, ciphers[keep:], keep))
        steps.append(ApplyStep([c], reqs))
    else:
        changes.append(Change(kind="sslcipher", name=group, action=Action.UNCHANGED,
                              summary=f"{len(ciphers)} suites in order ({policy.name})"))


def _cipher_binds(group: str, names: list[str], offset: int) -> NitroRequest:
    return batch("sslcipher_sslciphersuite_binding",
                 [{"ciphergroupname": group, "ciphername": n, "cipherpriority": offset + i}
                  for i, n in enumerate(names, 1)])


def offline_steps(plan: Plan, passphrase: str | None = None, *, release: tuple[int, int] | None = None,
                  ssl_mode: str = "legacy") -> Reconciliation:
    """The full create sequence against an empty ADC of that release and SSL mode, from the plan alone
    (for export)."""
    cur = Current(release=release, ssl_mode=ssl_mode, partition=plan.netscaler.partition if plan.netscaler else None)
    return reconcile(plan, cur, offline_cert(plan), passphrase=passphrase)
