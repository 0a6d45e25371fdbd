"""The wizard's state: the plan being edited, in parts, plus what this run learned along the way.

The Plan model validates cross-references (a virtual server's service must exist, a NetScaler plan
needs a [netscaler] table), so it cannot be edited half-way. The state therefore keeps the plan's
parts, each validated by its own screen, and builds a Plan from them when one is needed (review,
apply, save). Raw field text is kept per screen as well, so going Back never loses what was typed,
even when it is not valid yet.

Secrets (the NetScaler password, a key passphrase) live only in this object, in memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from dicomtls.engine.plan import (
    DEFAULT_CALLING_AE,
    DEFAULT_VSERVER_NAMES,
    ROLE_PORTS,
    Builtin,
    Certificate,
    CipherPolicy,
    NetScaler,
    Plan,
    Service,
    VirtualServer,
    dump_plan,
    load_plan,
    save_plan,
)
from dicomtls.engine.plan_errors import PlanError, plan_error
from dicomtls.wizard.checks import Accepted, changed

if TYPE_CHECKING:  # the results' types; their modules are loaded when a check runs
    from dicomtls.engine.backends.base import ApplyResult, Diff, TargetFacts
    from dicomtls.engine.certs import PemReport
    from dicomtls.engine.demo import Demo
    from dicomtls.engine.terminator.runner import TerminatorHandle
    from dicomtls.engine.verify import EchoReport

Role = Literal["store", "worklist"]  # a pass's role, as VirtualServer.role
ROLES: tuple[Role, ...] = ("store", "worklist")


@dataclass
class WizardState:
    plan_path: Path
    backend: str = "builtin"
    role: Role = "store"
    certificate: Certificate = field(default_factory=Certificate)
    cipher_policy: CipherPolicy = field(default_factory=CipherPolicy)
    pacs_services: list[Service] = field(default_factory=list)
    virtual_servers: list[VirtualServer] = field(default_factory=list)
    netscaler: NetScaler | None = None
    builtin: Builtin = field(default_factory=Builtin)
    # The service the current pass forwards to (its name in `services`).
    service_name: str | None = None
    # "Replace the certificate" on a re-run: Certificates, Review, Apply only (wizard/renewal.py).
    renewal: bool = False

    # What is on disk: the plan text as saved (None: nothing saved yet) and the loaded plan.
    saved_text: str | None = None
    existing: Plan | None = None

    # Raw field values per screen ("start", "certificates", ...): restored when a screen is rebuilt.
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)

    # In memory only, never saved or logged.
    password: str | None = None
    passphrase: str | None = None

    # Results of this run, shown again when a screen is revisited.
    # Each check's result comes with the inputs it ran on ({label: value}, see wizard/checks.py):
    # a result whose inputs differ from the screens' is out of date and is never shown as a ✓.
    pem: PemReport | None = None  # of the last good check
    pem_checked_for: dict[str, str] | None = None
    pem_failure: tuple[str, str] | None = None  # (problem, fix) of the last check, when it failed
    pem_failure_code: str | None = None
    nitro_fingerprint: str | None = None  # management certificate seen on connect
    nitro_ok: bool = False  # logged in with the password
    nitro_checked_for: dict[str, str] | None = None
    cipher_groups: list[str] = field(default_factory=list)  # existing groups on the ADC
    nitro_facts: TargetFacts | None = None  # release, HA role, SSL mode, read at login
    pacs_report: EchoReport | None = None  # of the plain C-ECHO to the PACS (a failing one first)
    pacs_reports: list[tuple[str, EchoReport]] = field(default_factory=list)  # (address, report) per member tested
    pacs_checked_for: dict[str, str] | None = None
    echo_checked_for: dict[str, str] | None = None
    # Checks the operator chose to go past (failed or untested), by check name.
    accepted: dict[str, Accepted] = field(default_factory=dict)
    diff: Diff | None = None  # the Diff last computed
    diff_for: str | None = None  # the plan text it was computed for
    apply_result: ApplyResult | None = None
    applied_for: str | None = None  # the plan text last applied successfully
    echo_report: EchoReport | None = None
    runbook_path: Path | None = None

    # Demo: the running rehearsal environment, if any.
    demo: Demo | None = None
    # A terminator this wizard started in its own process, if any.
    terminator: TerminatorHandle | None = None

    # Unsaved work: something typed differs from what a screen showed, or the plan differs from the
    # one this run started with (see dirty).
    touched: bool = False
    baseline: str | None = None

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_plan_file(cls, plan_path: Path) -> WizardState:
        """A state pre-filled from the saved plan, or a fresh one when there is none yet."""
        state = cls(plan_path=plan_path)
        if plan_path.exists():
            plan = load_plan(plan_path)
            state.load(plan)
            state.existing = plan
            state.saved_text = dump_plan(plan)
        return state

    def load(self, plan: Plan) -> None:
        """Take every part from `plan` (absolute paths, so the plan file may move)."""
        self.backend = plan.backend
        self.certificate = plan.certificate.model_copy(update={"cert": str(plan.cert_path),
                                                               "key": str(plan.key_path)})
        self.cipher_policy = plan.cipher_policy.model_copy()
        self.pacs_services = [s.model_copy() for s in plan.service]
        self.virtual_servers = [v.model_copy() for v in plan.virtual_server]
        self.netscaler = plan.netscaler.model_copy() if plan.netscaler else None
        self.builtin = plan.builtin.model_copy()
        vs = self.vserver_for(self.role) or (self.virtual_servers[0] if self.virtual_servers else None)
        if vs is not None:
            self.role = vs.role
            self.service_name = vs.service
        elif self.pacs_services:
            self.service_name = self.pacs_services[0].name

    # --- the parts the current pass edits ------------------------------------------------------
    def vserver_for(self, role: str) -> VirtualServer | None:
        return next((v for v in self.virtual_servers if v.role == role), None)

    @property
    def vserver(self) -> VirtualServer | None:
        return self.vserver_for(self.role)

    @property
    def service(self) -> Service | None:
        return next((s for s in self.pacs_services if s.name == self.service_name), None)

    def set_service(self, svc: Service, previous_name: str | None) -> None:
        """Replace the service this pass edits (renaming follows into the virtual servers)."""
        idx = next((i for i, s in enumerate(self.pacs_services) if s.name == (previous_name or svc.name)), None)
        if idx is None:
            idx = next((i for i, s in enumerate(self.pacs_services) if s.name == svc.name), None)
        if idx is None:
            self.pacs_services.append(svc)
        else:
            old = self.pacs_services[idx].name
            self.pacs_services[idx] = svc
            if old != svc.name:
                self.virtual_servers = [v.model_copy(update={"service": svc.name}) if v.service == old else v
                                        for v in self.virtual_servers]
        self.service_name = svc.name

    def set_vserver(self, vs: VirtualServer) -> None:
        idx = next((i for i, v in enumerate(self.virtual_servers) if v.role == vs.role), None)
        if idx is None:
            self.virtual_servers.append(vs)
        else:
            self.virtual_servers[idx] = vs

    def shared_by(self) -> list[VirtualServer]:
        """Other passes' virtual servers that forward to the service this pass edits."""
        return [v for v in self.virtual_servers if v.service == self.service_name and v.role != self.role]

    def default_vserver(self, role: str | None = None) -> dict[str, Any]:
        role = role or self.role
        ip = "0.0.0.0" if self.backend == "builtin" else ""
        other = next((v for v in self.virtual_servers if v.role != role), None)
        if other is not None:
            ip = other.ip  # one address, two ports: the usual layout (one NetScaler VIP; one DMZ address)
        port = self.demo.ports[role] if self.demo is not None else ROLE_PORTS[role]
        return {"name": DEFAULT_VSERVER_NAMES[role], "ip": ip, "port": port, "role": role,
                "calling_ae": other.calling_ae if other else DEFAULT_CALLING_AE}

    # --- the whole plan ------------------------------------------------------------------------
    def plan_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "backend": self.backend,
            "certificate": self.certificate.model_dump(exclude_none=True),
            "cipher_policy": self.cipher_policy.model_dump(),
            "service": [s.model_dump() for s in self.pacs_services],
            "virtual_server": [v.model_dump() for v in self.virtual_servers],
            "builtin": self.builtin.model_dump(exclude_none=True),
        }
        if self.backend == "netscaler" and self.netscaler is not None:
            data["netscaler"] = self.netscaler.model_dump(exclude_none=True)
        return data

    def build_plan(self) -> Plan:
        """The plan from the parts; PlanError (problems as sentences) if they do not fit together."""
        try:
            plan = Plan.model_validate(self.plan_data())
        except ValidationError as err:
            raise plan_error("the setup", err) from None
        return plan.with_base_dir(self.plan_path.parent)

    def try_plan(self) -> Plan | None:
        try:
            return self.build_plan()
        except PlanError:
            return None

    def plan_text(self) -> str | None:
        plan = self.try_plan()
        return dump_plan(plan) if plan is not None else None

    def mark_clean(self) -> None:
        """What is on screen now counts as saved (the start of a run, or after saving)."""
        self.touched = False
        self.baseline = self.plan_text()

    @property
    def dirty(self) -> bool:
        """True when quitting now would lose something the user entered and has not saved."""
        text = self.plan_text()
        return self.touched or (text != self.baseline and text != self.saved_text)

    def save(self) -> Path:
        plan = self.build_plan()
        path = save_plan(plan, self.plan_path)
        self.saved_text = dump_plan(plan)
        self.existing = plan
        self.mark_clean()
        return path

    # --- what each check runs on, as the screens hold it now ----------------------------------------
    def raw(self, screen: str, widget_id: str, fallback: str) -> str:
        """A field's text as typed (the screens keep every keystroke in their drafts), else `fallback`."""
        return str(self.drafts.get(screen, {}).get(widget_id, fallback)).strip()

    def pem_inputs(self) -> dict[str, str]:
        c = self.certificate
        secret = hashlib.sha256((self.passphrase or "").encode()).hexdigest()[:12]  # memory only
        return {"Certificate": _abs(self.raw("certificates", "cert", c.cert)),
                "Private key": _abs(self.raw("certificates", "key", c.key)), "Passphrase": secret}

    def pacs_inputs(self) -> dict[str, str]:
        svc, vs = self.service, self.vserver
        first = svc.targets[0] if svc is not None else None
        calling = vs.calling_ae if vs is not None else DEFAULT_CALLING_AE
        return {"Host or IP": self.raw("backend", "svc-host", first.host if first else ""),
                "Port": self.raw("backend", "svc-port", str(first.port) if first else ""),
                "AE title": self.raw("backend", "svc-ae", svc.ae_title if svc else ""),
                "Calling AE": self.raw("virtual_server", f"{self.role}-calling", calling),
                "Other servers": ", ".join(m.address for m in (svc.members[1:] if svc else []))}

    def nitro_inputs(self) -> dict[str, str]:
        ns = self.netscaler
        secret = hashlib.sha256((self.password or "").encode()).hexdigest()[:12]  # memory only
        return {"NITRO URL": self.raw("start", "ns-url", ns.url if ns else "").rstrip("/"),
                "User": self.raw("start", "ns-user", ns.username if ns else ""), "Password": secret}

    def echo_inputs(self) -> dict[str, str]:
        return {"the setup": self.plan_text() or ""}

    def stale(self, check: str) -> list[str]:
        """Labels of the inputs that changed since `check` ran (empty: still current, or never run)."""
        recorded = getattr(self, f"{check}_checked_for")
        return changed(recorded, getattr(self, f"{check}_inputs")())

    def accept(self, check: str, reason: str) -> None:
        self.accepted[check] = Accepted(check, reason, tuple(getattr(self, f"{check}_inputs")().items()))

    def is_accepted(self, check: str) -> bool:
        a = self.accepted.get(check)
        return a is not None and a.holds_for(getattr(self, f"{check}_inputs")())

    def accepted_warnings(self) -> list[str]:
        return [a.line() for name, a in self.accepted.items() if self.is_accepted(name)]

    def check_warnings(self) -> list[str]:
        """Every check before Review that did not pass for the values on the screens: for the top of
        Review and the runbook. Accepted ones say so."""
        out: list[str] = []
        if self.pem is None or self.stale("pem"):
            out.append("The certificate pair was not checked for these files (step Certificates, ctrl+t).")
        if self.backend == "netscaler" and (not self.nitro_ok or self.stale("nitro")):
            out.append("Not logged in to NITRO with these values (step Start, ctrl+t).")
        pacs = self.pacs_report
        if self.is_accepted("pacs"):
            out.append(self.accepted["pacs"].line())
        elif pacs is None:
            out.append("The PACS has not been tested with a plain C-ECHO (step PACS, ctrl+t).")
        elif self.stale("pacs"):
            out.append(f"The PACS test is out of date: {', '.join(self.stale('pacs'))} changed (step PACS, ctrl+t).")
        elif not pacs.ok:
            out.append("The PACS did not answer the plain C-ECHO (step PACS).")
        return out

    def runbook_warnings(self) -> list[str]:
        """check_warnings, plus the echo through TLS (the runbook is written after it)."""
        out = self.check_warnings()
        if self.is_accepted("echo"):
            out.append(self.accepted["echo"].line())
        elif self.echo_report is None or self.stale("echo"):
            out.append("The C-ECHO through TLS was not run for this setup (step Echo test, ctrl+t).")
        return out

    # --- helpers for screens -------------------------------------------------------------------
    def draft(self, screen: str) -> dict[str, Any]:
        return self.drafts.setdefault(screen, {})

    def show_path(self, p: str | os.PathLike[str] | None) -> str:
        """A path as people read it: the home folder as ~ (also keeps snapshots free of temp names)."""
        if not p:
            return ""
        s = str(p)
        home = str(Path.home())
        if home not in ("", "/") and (s == home or s.startswith(home + os.sep)):
            return "~" + s[len(home):]
        return s


def _abs(p: str) -> str:
    return str(Path(p).expanduser().resolve()) if p else ""
