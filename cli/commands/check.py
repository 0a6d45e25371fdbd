"""`dicomtls check PLAN`: one line for cron, a systemd timer or a Nagios/Icinga agent.

Output follows the Monitoring Plugins guidelines (https://www.monitoring-plugins.org/doc/guidelines.html):
one status line `DICOMTLS OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata`, exit 0/1/2/3. With
--json, exactly one JSON object, always (also when the plan cannot be read: UNKNOWN, exit 3).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from dicomtls.cli.commands.apply import backend_options
from dicomtls.cli.phrasing import fix_text
from dicomtls.engine.errors import UserError

if TYPE_CHECKING:  # engine.check is loaded when the command runs
    from dicomtls.engine.check import CheckReport, Finding, Perf


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from dicomtls.engine.check import DEFAULT_CRIT_DAYS, DEFAULT_WARN_DAYS

    p = sub.add_parser("check", help="monitoring check: echo through TLS, certificate expiry, PACS health "
                       "(exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    p.add_argument("plan", help="path of the plan TOML file (the applied one in the state dir works too)")
    p.add_argument("--warn-days", type=int, default=DEFAULT_WARN_DAYS, metavar="N",
                   help=f"WARNING when the served certificate has fewer days left (default {DEFAULT_WARN_DAYS})")
    p.add_argument("--crit-days", type=int, default=DEFAULT_CRIT_DAYS, metavar="N",
                   help=f"CRITICAL when it has fewer days left (default {DEFAULT_CRIT_DAYS})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dicomtls.engine.check import CheckReport, Finding, Level, run_check
    from dicomtls.engine.plan import load_plan

    try:
        if args.crit_days < 0 or args.warn_days < args.crit_days:
            raise UserError(f"--warn-days {args.warn_days} / --crit-days {args.crit_days} are not a ladder",
                            "give --warn-days at least --crit-days, both 0 or more (e.g. 30 and 7)")
        plan = load_plan(args.plan)
        report = run_check(plan, backend_options(plan, args), args.warn_days, args.crit_days)
    except UserError as exc:
        report = CheckReport(level=Level.UNKNOWN, warn_days=args.warn_days, crit_days=args.crit_days,
                             findings=[Finding(level=Level.UNKNOWN, code="plan_unusable", subject=args.plan,
                                               detail=f"{exc.problem} (fix: {fix_text(exc)})" if fix_text(exc) else exc.problem)])
    if args.json:
        data = report.model_dump(mode="json")
        data["status"] = report.level.name
        data["line"] = status_line(report)
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(status_line(report))
        for f in _ordered(report.findings)[1:]:  # the rest, one per line (the plugin's long output)
            print(f"{f.level.name}: {_phrase(f)}")
    return int(report.level)


_WORDS = {
    "endpoint_down": "endpoint down",
    "echo_failed": "C-ECHO failed",
    "worklist_not_offered": "worklist not offered",
    "worklist_failed": "worklist query failed",
    "cert_expired": "certificate expired",
    "cert_expiring": "certificate expiring",
    "cert_not_the_plans": "not the plan's certificate",
    "member_down": "PACS down",
    "vserver_down": "vserver not UP",
    "terminator_not_running": "terminator not running",
    "terminator_draining": "terminator draining",
    "backend_unreadable": "cannot read the backend",
    "plan_unusable": "plan",
}


# Causes before their symptoms: a PACS that is down also fails Butterfly's echo.
_CAUSES = ("member_down", "vserver_down", "terminator_not_running", "endpoint_down", "cert_expired")


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.level, _CAUSES.index(f.code) if f.code in _CAUSES else len(_CAUSES)))


def _phrase(f: Finding) -> str:
    words = _WORDS.get(f.code, f.code.replace("_", " "))
    return f"{words}: {f.subject}" + (f" ({f.detail})" if f.detail else "")


def status_line(report: CheckReport) -> str:
    from dicomtls.engine.check import Level

    worst = _ordered(report.findings)
    if worst:
        summary = _phrase(worst[0]) + (f" (+{len(worst) - 1} more)" if len(worst) > 1 else "")
    else:
        parts = [f"{len(report.listeners)} listener(s) answer C-ECHO"]
        parts += [f"{r.name} worklist {r.worklist_items} item(s) today" for r in report.listeners
                  if r.worklist_items is not None]
        days = [r.cert_days_left for r in report.listeners if r.cert_days_left is not None]
        if days:
            parts.append(f"certificate {min(days)} days left")
        if report.members_total:
            parts.append(f"PACS {report.members_up}/{report.members_total} up")
        summary = ", ".join(parts)
    summary = summary.replace("|", "/")  # a pipe starts the perfdata
    perf = " ".join(_perf(p) for p in report.perfdata)
    return f"DICOMTLS {Level(report.level).name} - {summary}" + (f" | {perf}" if perf else "")


def _perf(p: Perf) -> str:
    label = p.label.replace("'", "_").replace("=", "_")
    value = f"{p.value:g}{p.uom}"
    tail = ";".join([p.warn, p.crit, p.min, p.max]).rstrip(";")
    return f"'{label}'={value}" + (f";{tail}" if tail else "")
