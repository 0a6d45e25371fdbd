"""The plan as a NetScaler CLI batch or a NITRO request list, for change control (`dicomtls export`).

Offline, from the plan alone: the full create sequence for an ADC that has none of it yet (what
`dicomtls apply` would do on a fresh box; `apply --dry-run` shows what a live ADC actually needs),
for the release and SSL mode given (no tls13 attribute before 12.1; an SSL profile where the ADC
runs the Default SSL Profile).
The private key's content and any passphrase are never exported, only placeholders.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from dicomtls.engine.backends.netscaler.adc import LATEST_RELEASE, MIN_RELEASE, release_text
from dicomtls.engine.backends.netscaler.reconcile import offline_steps
from dicomtls.engine.backends.netscaler.steps import Reconciliation, ssl_dir
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan

FORMATS = ("netscaler-cli", "nitro")


def _steps(plan: Plan, release: tuple[int, int] | None = None, ssl_mode: str = "legacy") -> Reconciliation:
    for vs in plan.virtual_server:
        if ipaddress.ip_address(vs.ip).is_unspecified:
            raise UserError(f"virtual_server {vs.name!r} has ip {vs.ip}: a NetScaler virtual server needs its own VIP",
                            "give the address Butterfly will connect to as virtual_server.ip")
    passphrase = f"<passphrase from ${plan.certificate.passphrase_env}>" if plan.certificate.passphrase_env else None
    if release is not None and release < MIN_RELEASE:
        raise UserError(f"release {release_text(release)} is older than this tool supports",
                        f"this tool supports {release_text(MIN_RELEASE)} and later (the ADC's `show ns version`)")
    rec = offline_steps(plan, passphrase, release=release, ssl_mode=ssl_mode)
    if rec.conflicts:  # e.g. TLS 1.3 asked of a legacy-mode or 12.0 ADC: nothing to export
        c = rec.conflicts[0]
        raise UserError(f"{c.kind} {c.name}: {c.summary}", c.hint)
    return rec


def export_cli(plan: Plan, source: str = "the plan", release: tuple[int, int] | None = None,
               ssl_mode: str = "legacy") -> str:
    rec = _steps(plan, release, ssl_mode)
    target = plan.netscaler.url if plan.netscaler else "the ADC"
    lines = [
        f"# dicomtls export --format netscaler-cli: {source}",
        f"# target {target}; cipher policy {plan.policy.name} ({plan.policy.title})",
        f"# for release {release_text(release) or f'{release_text(LATEST_RELEASE)} (latest)'}, "
        + ("Default SSL Profile enabled: protocols and ciphers in the SSL profile "
           f"{plan.netscaler.ssl_profile if plan.netscaler else ''}" if ssl_mode == "profile"
           else "Default SSL Profile off (legacy): protocols and ciphers on each virtual server")
        + (f"; admin partition {plan.netscaler.partition} (switch partition {plan.netscaler.partition} first)"
           if plan.netscaler and plan.netscaler.partition else ""),
        "# The full create sequence for an ADC that has none of this yet; `dicomtls apply --dry-run` shows",
        "# what a live ADC needs. First copy the certificate and key files to the ADC, e.g.",
        f"#   scp {plan.certificate.cert} {plan.certificate.key} nsroot@<NSIP>:"
        f"{ssl_dir(plan.netscaler.partition if plan.netscaler else None)}/",
    ]
    for c in rec.changes:
        if c.cli:
            lines.append("")
            lines.append(f"# {c.kind} {c.name}" + (f": {c.summary}" if c.summary else ""))
            lines.extend(c.cli)
    return "\n".join(lines) + "\n"


def export_nitro(plan: Plan, release: tuple[int, int] | None = None, ssl_mode: str = "legacy") -> str:
    """A JSON list of the requests, in order, between login and logout (password and key as placeholders)."""
    rec = _steps(plan, release, ssl_mode)
    user = plan.netscaler.username if plan.netscaler else "nsroot"
    env = plan.netscaler.password_env if plan.netscaler else "DICOMTLS_NITRO_PASSWORD"
    out: list[dict[str, Any]] = [{"method": "POST", "url": "/nitro/v1/config/login",
                                  "body": {"login": {"username": user, "password": f"<password from ${env}>"}}}]
    if plan.netscaler and plan.netscaler.partition:
        out.append({"method": "POST", "url": "/nitro/v1/config/nspartition?action=Switch",
                    "body": {"nspartition": {"partitionname": plan.netscaler.partition}}})
    for step in rec.steps:
        for req in step.requests:
            entry: dict[str, Any] = {"method": req.method, "url": req.path, "for": [f"{c.kind} {c.name}"
                                                                                   for c in step.changes]}
            if req.body is not None:
                entry["body"] = req.body
            out.append(entry)
    out.append({"method": "POST", "url": "/nitro/v1/config/logout", "body": {"logout": {}}})
    return json.dumps(out, indent=2) + "\n"


def export(plan: Plan, fmt: str, source: str = "the plan", *, release: tuple[int, int] | None = None,
           ssl_mode: str = "legacy") -> str:
    if fmt == "netscaler-cli":
        return export_cli(plan, source, release, ssl_mode)
    if fmt == "nitro":
        return export_nitro(plan, release, ssl_mode)
    raise UserError(f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
