"""The setup as a Markdown runbook: what was configured, what to enter in Butterfly Cloud, how to
check and redo it. Pure text from the plan and this run's results, so it is easy to test."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from dicomtls.engine.plan import Plan, VirtualServer


def pacs_servers(plan: Plan, name: str) -> str:
    """Where the PACS listens: its address, or every member's (a PACS on several servers)."""
    return ", ".join(m.address for m in plan.service_named(name).targets)


def butterfly_values(plan: Plan, vs: VirtualServer, public_host: str) -> list[tuple[str, str]]:
    """The fields of Organization Settings -> Connectivity, in the order Butterfly shows them."""
    svc = plan.service_named(vs.service)
    return [
        ("Host", public_host or "<the public IP Butterfly connects to>"),
        ("Port", str(vs.port)),
        ("TLS", "Active"),
        ("SCU calling AET", vs.calling_ae),
        ("SCP AET", svc.ae_title),
    ]


def firewall_rule(plan: Plan, vs: VirtualServer, public_host: str) -> list[str]:
    """The two openings the path needs: Butterfly Cloud in to the endpoint, the endpoint on to the PACS."""
    svc = plan.service_named(vs.service)
    specific = not ipaddress.ip_address(vs.ip).is_unspecified
    target = f"{public_host or '<public IP>'}:{vs.port}"
    if specific and public_host != vs.ip:
        target += f" (NAT to {vs.ip}:{vs.port})"
    elif not specific:
        target += " (NAT to this host)" if public_host else ""
    where = "this host" if plan.backend == "builtin" else "the NetScaler's SNIP"
    return [f"inbound: TCP from Butterfly Cloud to {target}",
            f"inside:  TCP from {where} to the PACS {pacs_servers(plan, svc.name)}"]


def render(plan: Plan, plan_path: str, public_hosts: dict[str, str], *, pem: Any = None, diff: Any = None,
           echo: dict[str, Any] | None = None, now: dt.datetime | None = None,
           warnings: list[str] | None = None) -> str:
    """The runbook. public_hosts: role -> the address Butterfly is given. warnings: checks that were
    skipped, failed or out of date when it was written (each says so; the reader must know)."""
    now = now or dt.datetime.now(dt.UTC)
    out = [f"# DICOM-TLS termination runbook ({plan.backend})", "",
           f"Written by `dicomtls` on {now:%Y-%m-%d %H:%M} UTC. Plan file: `{plan_path}` (no secrets in it).", ""]
    if warnings:
        out += ["## Checks skipped or not passed", ""] + [f"- {w}" for w in warnings] + [""]
    out += _setup(plan, pem)
    if diff is not None:
        out += _changes(diff)
    out += _butterfly(plan, plan_path, public_hosts)
    if echo:
        out += ["## Echo test results", ""]
        for role, rep in echo.items():
            out.append(f"- {role}: {'passed' if rep.ok else 'FAILED'}")
            for s in rep.steps:
                out.append(f"  - {'ok ' if s.ok else 'BAD'} {s.name}: {s.detail}" + ("" if s.ok else f" ({s.cause})"))
        out.append("")
    return "\n".join(out + _commands(plan, plan_path))


def _setup(plan: Plan, pem: Any) -> list[str]:
    """The certificate, the cipher policy, the virtual servers and the NetScaler, as configured."""
    out = ["## Certificate", "", f"- pair `{plan.certificate.name}`: `{plan.cert_path}` + `{plan.key_path}`"]
    if pem is not None:
        out += [f"- subject {pem.subject}; expires {pem.not_after:%Y-%m-%d}; SHA-256 `{pem.fingerprint_sha256}`",
                f"- key {pem.key_type} {pem.key_bits}"]
    pol = plan.policy
    out += ["", "## Cipher policy", "", f"- `{pol.name}`: {pol.title} (group `{plan.cipher_policy.name}`)",
            f"- {pol.description}", "", "## Virtual servers", ""]
    for vs in plan.virtual_server:
        svc = plan.service_named(vs.service)
        out.append(f"- **{vs.role}** `{vs.name}`: TLS on {vs.ip}:{vs.port} -> plain DICOM to `{svc.name}` "
                   f"{svc.ae_title} at {pacs_servers(plan, svc.name)}; calling AE {vs.calling_ae}")
        if vs.allowed_calling_aes:
            out.append(f"  - allowed calling AEs: {', '.join(vs.allowed_calling_aes)}")
        if vs.allowed_clients:
            out.append(f"  - allowed clients: {', '.join(vs.allowed_clients)}")
    ns = plan.netscaler
    if ns is not None:
        out += ["", f"NetScaler: {ns.url} as {ns.username} (password from `${ns.password_env}`)" +
                (f"; management certificate pinned {ns.fingerprint}" if ns.fingerprint else "")]
    return out


def _changes(diff: Any) -> list[str]:
    out = ["", "## Changes made", ""]
    for c in diff.changes:
        out.append(f"- {c.action.value} {c.kind} `{c.name}`" + (f": {c.summary}" if c.summary else ""))
    cli = [line for c in diff.changes if c.writes for line in c.cli]
    if cli:
        out += ["", "NetScaler CLI equivalent:", "", "```", *cli, "```"]
    return out


def _butterfly(plan: Plan, plan_path: str, public_hosts: dict[str, str]) -> list[str]:
    """What to type into Butterfly Cloud, and the firewall rules, per virtual server."""
    out = ["", "## Butterfly Cloud: Organization Settings -> Connectivity", ""]
    for vs in plan.virtual_server:
        host = public_hosts.get(vs.role, "")
        out += [f"### {vs.role} ({vs.name})", "", "| field | value |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in butterfly_values(plan, vs, host)]
        out += ["", "Firewall:", *(f"- {line}" for line in firewall_rule(plan, vs, host)), ""]
    return out + ["Download the PEM pair (Butterfly_SCP_Cert.pem, Butterfly_SCP_key.pem) from that page; it is the "
                  "pair configured above. If it is ever regenerated there, install the new one with "
                  f"`dicomtls apply {plan_path} --replace-cert`.", ""]


def _commands(plan: Plan, plan_path: str) -> list[str]:
    """The commands for the year after: status, a dry run, an echo per port, the service."""
    out = ["## Commands", "", "```sh",
           f"dicomtls status {plan_path}            # live state",
           f"dicomtls apply {plan_path} --dry-run   # what would change (nothing, when in sync)"]
    for vs in plan.virtual_server:
        svc = plan.service_named(vs.service)
        host = "127.0.0.1" if vs.ip in ("0.0.0.0", "::") else vs.ip
        out.append(f"dicomtls echo {host} {vs.port} --tls --insecure --expect-cert {plan.cert_path} "
                   f"--calling-ae {vs.calling_ae} --called-ae {svc.ae_title}")
    if plan.backend == "builtin":
        out += [f"dicomtls serve {plan_path}               # run the terminator in the foreground",
                f"sudo dicomtls install-service {plan_path}  # or as a systemd service"]
    return out + ["dicomtls                                   # the wizard again (e.g. to add the worklist port)",
                  "```", ""]
