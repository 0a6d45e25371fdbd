"""Step 5: the TLS endpoint Butterfly connects to; conflicts (port in use, name taken) found here."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Input, Static

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.base import Diff
from dicomtls.engine.plan import ROLE_PORTS, Plan, VirtualServer, check_ae_title, check_ip, check_name, dump_plan
from dicomtls.engine.plan_errors import PlanError
from dicomtls.wizard.advice import change_fix, plan_problem
from dicomtls.wizard.screens.base import StepScreen
from dicomtls.wizard.screens.pacs import parse_port
from dicomtls.wizard.widgets import FormField


def port_hint(role: str, port: int, demo: bool) -> str:
    """One phrasing of a role's port for every screen: the real one, and the demo's own when rehearsing."""
    real = ROLE_PORTS[role]
    return f"the demo uses {port}; a real setup uses {real}" if demo and port != real else f"{role} usually uses {real}"


def split_list(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


class VirtualServerScreen(StepScreen):
    KEY = "virtual_server"
    TITLE = "Virtual server: the TLS endpoint Butterfly connects to"
    INDEX = 4

    def draft_key(self, name: str) -> str:
        return f"{self.state.role}-{name}"  # store and worklist passes keep separate drafts

    def compose_body(self) -> ComposeResult:
        st = self.state
        vs = st.vserver
        d = st.default_vserver()
        cur = vs.model_dump() if vs else d
        svc = st.service
        target = f"{svc.ae_title} at {svc.where}" if svc else "the PACS"
        builtin = st.backend == "builtin"
        yield Static(f"Role {st.role}: TLS in on this endpoint, plain DICOM out to {target}.", id="intro")
        yield FormField("Name", "vs-name", self.draft_value(self.draft_key("name"), cur["name"]))
        ip_hint = "0.0.0.0 = every address of this host" if builtin else \
            "the VIP Butterfly connects to (its public IP, or the address it is NATed to)"
        yield FormField("IP address", "vs-ip", self.draft_value(self.draft_key("ip"), cur["ip"]), hint=ip_hint,
                        placeholder="0.0.0.0" if builtin else "192.0.2.20")
        yield FormField("Port", "vs-port", self.draft_value(self.draft_key("port"), str(cur["port"])),
                        hint=port_hint(st.role, d["port"], st.demo is not None))
        yield FormField("Calling AE", "vs-calling", self.draft_value(self.draft_key("calling"), cur["calling_ae"]),
                        hint="the AE title Butterfly calls as (its SCU calling AET)")
        if builtin:
            yield FormField("Allowed AEs", "vs-allowed-aes",
                            self.draft_value(self.draft_key("allowed-aes"), ", ".join(vs.allowed_calling_aes) if vs else ""),
                            placeholder="optional, e.g. BUTTERFLY (others are rejected)")
            yield FormField("Allowed clients", "vs-allowed-clients",
                            self.draft_value(self.draft_key("allowed-clients"),
                                     ", ".join(vs.allowed_clients) if vs else ""),
                            placeholder="optional, e.g. 203.0.113.0/24 (others are closed)")
        yield Static("", id="vs-problems")

    def store_draft(self) -> None:
        if self.touched:
            self.state.touched = True
        d = self.state.draft(self.KEY)
        for inp in self.query(Input):
            if inp.id:
                d[self.draft_key(inp.id.removeprefix("vs-"))] = inp.value

    def draft_value(self, widget_id: str, default: Any) -> Any:  # drafts are keyed by role
        return self.state.draft(self.KEY).get(widget_id, default)

    def on_mount(self) -> None:
        first_empty = next((i for i in self.query(Input) if not i.value and i.id in ("vs-name", "vs-ip")), None)
        (first_empty or self.query_one("#vs-name", Input)).focus()

    def collect(self, *, quiet: bool = False) -> str | None:
        vs = self.run_checks(quiet, self.validate_fields)
        if vs is None:
            return self.first_problem() or "the virtual server step is not complete"
        self.state.set_vserver(vs)
        return None

    def validate_fields(self) -> VirtualServer | None:
        st = self.state
        name = self.check("vs-name", check_name)
        ip = self.check("vs-ip", lambda v: check_ip(v or "0.0.0.0") if st.backend == "builtin" else check_ip(v))
        if ip is not None and st.backend == "netscaler" and ipaddress.ip_address(ip).is_unspecified:
            self.problem("vs-ip", "is every address; a NetScaler virtual server needs its own VIP, not 0.0.0.0")
            ip = None
        port = self.check("vs-port", parse_port)
        calling = self.check("vs-calling", check_ae_title)
        aes: list[str] | None = []
        clients: list[str] | None = []
        if st.backend == "builtin":
            aes = self.check("vs-allowed-aes", lambda v: [check_ae_title(a) for a in split_list(v)])
            clients = self.check("vs-allowed-clients", _check_clients)
        if None in (name, ip, port, calling, aes, clients):
            return None
        try:
            return VirtualServer(name=name, ip=ip, port=port, role=st.role, service=st.service_name or "",
                                 calling_ae=calling, allowed_calling_aes=aes or [], allowed_clients=clients or [])
        except ValidationError as err:
            self.problem("vs-name", str(err))
            return None

    def problems(self, lines: list[str]) -> None:
        w = self.query_one("#vs-problems", Static)
        if lines:
            w.update(Content.assemble(Content.styled("✗ Conflicts to resolve first:\n", "bold"),
                                      "\n".join(f"  - {line}" for line in lines)))
            w.set_classes("error")
        else:
            w.update("")

    async def commit(self) -> bool:
        st = self.state
        if self.collect() is not None:
            return False
        try:
            plan = st.build_plan()
        except PlanError as err:
            self.problems([plan_problem(p) for p in err.items])
            return False
        problems: list[str] = []
        # The backend finds the conflicts (a port another program holds, a name taken on the ADC):
        # its diff is the one place that knows what exists.
        diff = await self.guarded(f"Reading the current state of the {st.backend} backend", self._diff, plan)
        if diff is None:
            return False
        problems += [f"{c.kind} {c.name}: {change_fix(c) or c.summary}" for c in diff.conflicts]
        st.diff, st.diff_for = diff, dump_plan(plan)
        self.problems(problems)
        return not problems

    def _diff(self, plan: Plan) -> Diff:
        st = self.state
        backend = self.services.backend(plan, BackendOptions(password=st.password, passphrase=st.passphrase))
        try:
            return backend.diff(plan)
        finally:
            backend.close()


def _check_clients(text: str) -> list[str]:
    out = []
    for c in split_list(text):
        try:
            out.append(str(ipaddress.ip_network(c, strict=False)))
        except ValueError:
            raise ValueError(f"{c!r} is not an address or CIDR block like 203.0.113.0/24") from None
    return out
