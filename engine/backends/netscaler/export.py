"""The plan as a NetScaler CLI batch or a NITRO request list, for change control (`dicomtls export`).

Offline, from the plan alone: the full create sequence for an ADC that has none of it yet (what
`dicomtls apply` would do on a fresh box; `apply --dry-run` shows what a live ADC actually needs).
The private key's content and any passphrase are never exported, only placeholders.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from engine.backends.netscaler.reconcile import SSL_DIR, Reconciliation, offline_steps
from engine.errors import UserError
from engine.plan import Plan

FORMATS = ("netscaler-cli", "nitro")


def _steps(plan: Plan) -> Reconciliation:
    for vs in plan.virtual_server:
        if ipaddress.ip_address(vs.ip).is_unspecified:
            raise UserError(f"virtual_server {vs.name!r} has ip {vs.ip}: a NetScaler virtual server needs its own VIP",
                            "give the address Butterfly will connect to as virtual_server.ip")
    passphrase = f"<passphrase from ${plan.certificate.passphrase_env}>" if plan.certificate.passphrase_env else None
    return offline_steps(plan, passphrase)


def export_cli(plan: Plan, source: str = "the plan") -> str:
    rec = _steps(plan)
    target = plan.netscaler.url if plan.netscaler else "the ADC"
    lines = [
        f"# dicomtls export --format netscaler-cli: {source}",
        f"# target {target}; cipher policy {plan.policy.name} ({plan.policy.title})",
        "# The full create sequence for an ADC that has none of this yet; `dicomtls apply --dry-run` shows",
        "# what a live ADC needs. First copy the certificate and key files to the ADC, e.g.",
        f"#   scp {plan.certificate.cert} {plan.certificate.key} nsroot@<NSIP>:{SSL_DIR}/",
    ]
    for c in rec.changes:
        if c.cli:
            lines.append("")
            lines.append(f"# {c.kind} {c.name}" + (f": {c.summary}" if c.summary else ""))
            lines.extend(c.cli)
    return "\n".join(lines) + "\n"


def export_nitro(plan: Plan) -> str:
    """A JSON list of the requests, in order, between login and logout (password and key as placeholders)."""
    rec = _steps(plan)
    user = plan.netscaler.username if plan.netscaler else "nsroot"
    env = plan.netscaler.password_env if plan.netscaler else "DICOMTLS_NITRO_PASSWORD"
    out: list[dict[str, Any]] = [{"method": "POST", "url": "/nitro/v1/config/login",
                                  "body": {"login": {"username": user, "password": f"<password from ${env}>"}}}]
    for step in rec.steps:
        for req in step.requests:
            entry: dict[str, Any] = {"method": req.method, "url": req.path, "for": [f"{c.kind} {c.name}"
                                                                                   for c in step.changes]}
            if req.body is not None:
                entry["body"] = req.body
            out.append(entry)
    out.append({"method": "POST", "url": "/nitro/v1/config/logout", "body": {"logout": {}}})
    return json.dumps(out, indent=2) + "\n"


def export(plan: Plan, fmt: str, source: str = "the plan") -> str:
    if fmt == "netscaler-cli":
        return export_cli(plan, source)
    if fmt == "nitro":
        return export_nitro(plan)
    raise UserError(f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
