"""The facts behind `dicomtls check`: is the endpoint really serving, as Butterfly would see it?

For each virtual server: the ladder through the TLS endpoint as the plan's calling AE (the rungs of
its role, RUNGS below: a worklist listener also runs Butterfly's Modality Worklist query on the same
association), the certificate the endpoint actually serves (days to expiry, and whether
it is the plan's), then the backend's health (PACS members up or down; on NetScaler the vserver,
services and service-group members). Each problem is a Finding with a level and a code; the
verdict is the worst level. The levels and exit codes are the Monitoring Plugins convention
(https://www.monitoring-plugins.org/doc/guidelines.html#AEN78): 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN. The CLI phrases the status line; this module returns facts and codes only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from enum import IntEnum

from pydantic import BaseModel, Field

from dicomtls.engine.addresses import host_port
from dicomtls.engine.backends import BackendOptions, get_backend
from dicomtls.engine.backends.base import Status
from dicomtls.engine.certs import CertError, fingerprint
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, VirtualServer

DEFAULT_WARN_DAYS = 30
DEFAULT_CRIT_DAYS = 7
ECHO_TIMEOUT = 10.0


class Level(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class Finding(BaseModel):
    level: Level
    code: str  # endpoint_down, echo_failed, cert_expiring, cert_expired, cert_not_the_plans, member_down, ...
    subject: str  # what it is about: a listener, a PACS member, a vserver
    detail: str = ""


class Perf(BaseModel):
    """One performance datum: 'label'=value[uom];[warn];[crit];[min];[max]."""

    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: str = ""
    max: str = ""


class ListenerResult(BaseModel):
    name: str
    role: str
    address: str
    calling_ae: str
    called_ae: str
    ok: bool
    failed_step: str | None = None
    seconds: float = 0.0
    cert_fingerprint: str | None = None
    cert_not_after: datetime | None = None
    cert_days_left: int | None = None
    worklist: str | None = None  # worklist listeners: the query's outcome (engine.worklist's code)
    worklist_items: int | None = None  # scheduled procedure steps it returned (0 is a fact, not a failure)


class CheckReport(BaseModel):
    level: Level
    backend: str = ""
    findings: list[Finding] = Field(default_factory=list)
    listeners: list[ListenerResult] = Field(default_factory=list)
    members_up: int = 0
    members_total: int = 0
    perfdata: list[Perf] = Field(default_factory=list)
    warn_days: int = DEFAULT_WARN_DAYS
    crit_days: int = DEFAULT_CRIT_DAYS


# --- rungs per listener role ----------------------------------------------------------------------
# A rung runs against one listener and returns its findings.
Rung = Callable[[Plan, VirtualServer, ListenerResult, "CheckContext"], list[Finding]]


class CheckContext(BaseModel):
    warn_days: int
    crit_days: int
    now: datetime


def connect_host(vs: VirtualServer) -> str:
    """Where to reach a listener from this host: a wildcard listener through loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(vs.ip, vs.ip)


def echo_rung(plan: Plan, vs: VirtualServer, res: ListenerResult, ctx: CheckContext) -> list[Finding]:
    """C-ECHO through the TLS endpoint as the plan's calling AE; reads the certificate it serves."""
    return _ladder(plan, vs, res, ctx, worklist=False)


def worklist_rung(plan: Plan, vs: VirtualServer, res: ListenerResult, ctx: CheckContext) -> list[Finding]:
    """The C-ECHO, then Butterfly's worklist query (modality US, today) on the same association: a PACS whose
    worklist service is down or refuses the caller still answers C-ECHO, and Butterfly would find no patients."""
    return _ladder(plan, vs, res, ctx, worklist=True)


def _ladder(plan: Plan, vs: VirtualServer, res: ListenerResult, ctx: CheckContext, worklist: bool) -> list[Finding]:
    from dicomtls.engine.verify import echo  # pynetdicom loads only when a check runs
    from dicomtls.engine.worklist import make_query

    report = echo(connect_host(vs), vs.port, tls=True, insecure=True, calling_ae=vs.calling_ae,
                  called_ae=res.called_ae, timeout=ECHO_TIMEOUT, policy=plan.cipher_policy.profile,
                  worklist=make_query() if worklist else None)
    failed = report.failed_step
    if failed is not None and failed.name == "worklist" and report.worklist is not None \
            and report.worklist.code == "no_items":
        failed = None  # nothing scheduled (a night, a weekend) is a count for the perfdata, not a failure
    res.ok = failed is None
    res.seconds = round(sum(s.seconds for s in report.steps), 3)
    res.cert_fingerprint = report.server_fingerprint
    res.cert_not_after = report.server_not_after
    if report.worklist is not None:
        res.worklist = report.worklist.code
        if report.worklist.code in ("found", "no_items"):  # a count only where the worklist answered
            res.worklist_items = report.worklist.count
    out: list[Finding] = []
    if failed is not None and failed.name == "worklist":
        code = "worklist_not_offered" if res.worklist == "not_offered" else "worklist_failed"
        out.append(Finding(level=Level.CRITICAL, code=code, subject=f"{vs.name} {res.address}",
                           detail=f"{failed.detail}"))
    elif failed is not None:
        code = "endpoint_down" if failed.name in ("resolve", "tcp") else "echo_failed"
        res.failed_step = failed.name
        out.append(Finding(level=Level.CRITICAL, code=code, subject=f"{vs.name} {res.address}",
                           detail=f"{failed.name}: {failed.detail}"))
    if res.cert_not_after is not None:
        res.cert_days_left = math.floor((res.cert_not_after - ctx.now).total_seconds() / 86400)
        out += _expiry(vs, res, ctx)
    return out


RUNGS: dict[str, list[Rung]] = {"store": [echo_rung], "worklist": [worklist_rung]}


def _expiry(vs: VirtualServer, res: ListenerResult, ctx: CheckContext) -> list[Finding]:
    days = res.cert_days_left
    assert days is not None
    subject = f"{vs.name} certificate"
    detail = f"expires {res.cert_not_after:%Y-%m-%d} ({days} days)"
    if days < 0:
        return [Finding(level=Level.CRITICAL, code="cert_expired", subject=subject, detail=detail)]
    # Below the threshold alerts, as the plugin range "N:" does.
    if days < ctx.crit_days:
        return [Finding(level=Level.CRITICAL, code="cert_expiring", subject=subject, detail=detail)]
    if days < ctx.warn_days:
        return [Finding(level=Level.WARNING, code="cert_expiring", subject=subject, detail=detail)]
    return []


# --- the whole check ------------------------------------------------------------------------------

def run_check(plan: Plan, options: BackendOptions | None = None, warn_days: int = DEFAULT_WARN_DAYS,
              crit_days: int = DEFAULT_CRIT_DAYS, now: datetime | None = None) -> CheckReport:
    ctx = CheckContext(warn_days=warn_days, crit_days=crit_days, now=now or datetime.now(timezone.utc))
    report = CheckReport(level=Level.OK, backend=plan.backend, warn_days=warn_days, crit_days=crit_days)
    services = {s.name: s for s in plan.service}
    for vs in plan.virtual_server:
        svc = services.get(vs.service)
        res = ListenerResult(name=vs.name, role=vs.role, address=host_port(connect_host(vs), vs.port),
                             calling_ae=vs.calling_ae, called_ae=svc.ae_title if svc else "ANY-SCP", ok=False)
        for rung in RUNGS.get(vs.role, [echo_rung]):
            report.findings += rung(plan, vs, res, ctx)
        report.listeners.append(res)
    report.findings += _plans_certificate(plan, report.listeners)
    report.findings += _backend_health(plan, options, report)
    report.level = max((f.level for f in report.findings), default=Level.OK)
    report.perfdata = _perfdata(report)
    return report


def _plans_certificate(plan: Plan, listeners: list[ListenerResult]) -> list[Finding]:
    """The endpoint should serve the plan's certificate: another one means an apply is pending (or
    someone else answers on that port)."""
    try:
        want = fingerprint(plan.cert_path.read_bytes())
    except (OSError, CertError):
        return []  # the plan's file is not readable here (e.g. on another host): nothing to compare
    return [Finding(level=Level.WARNING, code="cert_not_the_plans", subject=f"{r.name} certificate",
                    detail=f"serves SHA-256 {r.cert_fingerprint[:23]}..., the plan has {want[:23]}...")
            for r in listeners if r.cert_fingerprint and r.cert_fingerprint != want]


_BAD_PROCESS = {"STOPPED", "NOT ANSWERING"}
_MEMBER_KINDS = {"service", "servicegroupmember"}


def _backend_health(plan: Plan, options: BackendOptions | None, report: CheckReport) -> list[Finding]:
    try:
        backend = get_backend(plan, options)
        try:
            st = backend.status(plan)
        finally:
            backend.close()
    except UserError as exc:
        return [Finding(level=Level.UNKNOWN, code="backend_unreadable", subject=plan.backend, detail=exc.problem)]
    except Exception as exc:  # a backend we cannot read says nothing about the endpoint: UNKNOWN, not a crash
        return [Finding(level=Level.UNKNOWN, code="backend_unreadable", subject=plan.backend,
                        detail=f"{type(exc).__name__}: {exc}")]
    return _judge_status(st, report)


def _judge_status(st: Status, report: CheckReport) -> list[Finding]:
    out: list[Finding] = []
    for item in st.items:
        state = item.state.upper()
        if item.kind == "process" and state in _BAD_PROCESS:
            out.append(Finding(level=Level.CRITICAL, code="terminator_not_running", subject=item.name,
                               detail=state.lower()))
        elif item.kind == "process" and state == "DRAINING":
            out.append(Finding(level=Level.WARNING, code="terminator_draining", subject=item.name))
        elif item.kind == "lbvserver" and state != "UP":
            out.append(Finding(level=Level.CRITICAL, code="vserver_down", subject=item.name, detail=state.lower()))
        elif item.kind in _MEMBER_KINDS:
            report.members_total += 1
            if state == "UP":
                report.members_up += 1
            elif state != "UNKNOWN":  # UNKNOWN: not probed yet, neither up nor a failure
                where = item.detail.get("address") or item.detail.get("where") or ""
                name = item.name if not where or where in item.name else f"{item.name} {where}"
                out.append(Finding(level=Level.CRITICAL, code="member_down", subject=name,
                                   detail=str(item.detail.get("detail") or state.lower())))
    return out


def _perfdata(report: CheckReport) -> list[Perf]:
    perf: list[Perf] = []
    for r in report.listeners:
        perf.append(Perf(label=f"{r.name}_echo", value=r.seconds, uom="s", min="0"))
        if r.worklist_items is not None:
            perf.append(Perf(label=f"{r.name}_worklist_items", value=r.worklist_items, min="0"))
        if r.cert_days_left is not None:
            perf.append(Perf(label=f"{r.name}_cert_days", value=r.cert_days_left, warn=f"{report.warn_days}:",
                             crit=f"{report.crit_days}:"))
    if report.members_total:
        perf.append(Perf(label="pacs_members_up", value=report.members_up, crit=f"{report.members_total}:",
                         min="0", max=str(report.members_total)))
    return perf


# --- the installed certificate, for a re-run of the wizard ------------------------------------------

class InstalledCert(BaseModel):
    path: str
    not_after: datetime
    days_left: int


def installed_certificate(plan: Plan, now: datetime | None = None) -> InstalledCert | None:
    """The certificate a saved plan put in service: the built-in terminator's installed copy (state
    dir), else the plan's own file (what was sent to the NetScaler). None if neither is readable."""
    from cryptography import x509

    from dicomtls.engine.terminator.config import StateFiles, state_dir_for

    now = now or datetime.now(timezone.utc)
    candidates = [StateFiles(state_dir_for(plan)).cert] if plan.backend == "builtin" else []
    candidates.append(plan.cert_path)
    for path in candidates:
        try:
            leaf = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        not_after = leaf.not_valid_after_utc
        return InstalledCert(path=str(path), not_after=not_after,
                             days_left=math.floor((not_after - now).total_seconds() / 86400))
    return None
