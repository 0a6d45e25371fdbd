"""Step 1: what this does, which backend, which role; on a re-run, what is already set up."""

from __future__ import annotations

import os

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Button, Input, RadioSet, Static

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.plan import DEFAULT_PASSWORD_ENV, ROLE_PORTS, NetScaler, Plan
from dicomtls.wizard.advice import render
from dicomtls.wizard.checks import stale_text
from dicomtls.wizard.renewal import CERTIFICATES, ExpiryNote
from dicomtls.wizard.screens.base import StepScreen
from dicomtls.wizard.screens.modals import ChoiceModal
from dicomtls.wizard.state import Role
from dicomtls.wizard.target_facts import short as short_facts
from dicomtls.wizard.widgets import Choice, FormField, fingerprint_lines

INTRO = ("Butterfly Cloud sends studies over DICOM-TLS (TLS 1.2); your PACS speaks plain DICOM. "
         "This wizard sets up the TLS termination in front of it, on this host or on a NetScaler, "
         "shows every change before making it, and proves it with a C-ECHO as BUTTERFLY.")

BACKENDS = ["builtin", "netscaler"]
ROLES: list[Role] = ["store", "worklist"]


def describe(plan: Plan) -> list[str]:
    """One line per virtual server of a saved plan, for the re-run summary."""
    out = []
    for vs in plan.virtual_server:
        svc = plan.service_named(vs.service)
        out.append(f"{vs.role:<8} {vs.name} on {vs.ip}:{vs.port} -> {svc.ae_title} at {svc.where}")
    return out


class StartScreen(StepScreen):
    KEY = "start"
    TITLE = "Terminate Butterfly's DICOM-TLS in front of your PACS"
    INDEX = 0
    BINDINGS = [
        Binding("ctrl+t", "connect", "Connect", id="connect"),
        Binding("ctrl+o", "add_worklist", "Add worklist port", id="add-worklist"),
    ]

    def compose_body(self) -> ComposeResult:
        st = self.state
        yield Static(INTRO, id="intro")
        if st.demo is not None:
            yield Static(Content.from_markup(
                "[b]Rehearsal[/b]: a test certificate, a demo PACS and "
                + ("the NITRO simulator" if st.backend == "netscaler" else "the built-in terminator")
                + " on loopback; nothing outside the demo folder is touched. The fields are pre-filled: "
                  "press ctrl+n to walk through."), id="demo-note", classes="note")
        if st.existing is not None:
            lines = describe(st.existing)
            text = Content.assemble(Content.styled("Already set up", "bold"),
                                    f" (plan {st.show_path(st.plan_path)}, {st.existing.backend}):\n",
                                    "\n".join(f"  {line}" for line in lines) or "  no virtual server yet")
            yield Static(text, id="existing", classes="note")
            yield ExpiryNote(st.existing, id="expiry", classes="note")
            if st.vserver_for("worklist") is None and st.vserver_for("store") is not None:
                yield Button(f"Add the worklist port ({self._port('worklist')})  ctrl+o", id="add-worklist",
                             compact=True)
            yield Button("Replace the certificate", id="replace-cert", compact=True)
        yield Static(Content.styled("Where is TLS terminated?", "bold"), classes="question")
        with RadioSet(id="backend", compact=True):
            idx = self.draft_value("backend", BACKENDS.index(st.backend))
            yield Choice("Built-in terminator on this host", value=idx == 0)
            yield Choice("NetScaler (Citrix ADC) over its NITRO API", value=idx == 1)
        ns = st.netscaler
        with Vertical(id="ns"):
            yield FormField("NITRO URL", "ns-url", self.draft_value("ns-url", ns.url if ns else ""),
                            placeholder="https://192.0.2.10")
            yield FormField("User", "ns-user", self.draft_value("ns-user", ns.username if ns else "nsroot"))
            env = ns.password_env if ns else DEFAULT_PASSWORD_ENV
            yield FormField("Password", "ns-password", st.password or os.environ.get(env, ""), password=True,
                            hint=f"kept in memory only; or set ${env} before starting")
            yield Static(self._ns_text(), id="ns-result")
        yield Static(Content.styled("Which port does this pass set up?", "bold"), classes="question")
        with RadioSet(id="role", compact=True):
            idx = self.draft_value("role", ROLES.index(st.role))
            yield Choice(f"Store: Butterfly sends studies ({self._port('store')})", value=idx == 0)
            yield Choice(f"Worklist: Butterfly queries the worklist ({self._port('worklist')})", value=idx == 1)

    def _port(self, role: str) -> str:
        demo = self.state.demo
        if demo is not None and demo.ports.get(role, ROLE_PORTS[role]) != ROLE_PORTS[role]:
            return f"demo port {demo.ports[role]}; real: {ROLE_PORTS[role]}"
        return f"port {ROLE_PORTS[role]}"

    def on_mount(self) -> None:
        self._show_ns()
        self.query_one("#backend", RadioSet).focus()

    def _ns_text(self) -> Content:
        st = self.state
        fp = st.netscaler.fingerprint if st.netscaler is not None else None
        pinned = f"management certificate pinned:\n{fingerprint_lines(fp, '  ')}" if fp else ""
        if st.nitro_ok and st.netscaler is not None and not st.stale("nitro"):
            facts = f" to {short_facts(st.nitro_facts)}" if st.nitro_facts is not None else ""
            return Content.assemble(Content.styled(f"✓ Connected{facts}", "bold"), "; ",
                                    pinned or "management certificate not verified (http://)")
        if fp:
            return Content(pinned[0].upper() + pinned[1:])
        return Content("ctrl+t connects: the management certificate is shown and pinned on first connect.")

    @property
    def backend_choice(self) -> str:
        return BACKENDS[max(0, self.query_one("#backend", RadioSet).pressed_index)]

    @property
    def role_choice(self) -> Role:
        if self.role_override:
            return self.role_override
        return ROLES[max(0, self.query_one("#role", RadioSet).pressed_index)]

    role_override: Role | None = None

    def store_draft(self) -> None:
        super().store_draft()
        if self.role_override:  # the radio button's change may not have been processed yet
            self.state.draft(self.KEY)["role"] = ROLES.index(self.role_override)

    @on(RadioSet.Changed, "#backend")
    def _show_ns(self) -> None:
        self.query_one("#ns").display = self.backend_choice == "netscaler"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "connect":
            return self.is_mounted and self.backend_choice == "netscaler"
        if action == "add_worklist":
            return bool(self.query("#add-worklist"))
        return super().check_action(action, parameters)

    # --- NetScaler connection ----------------------------------------------------------------------
    def action_connect(self) -> None:
        self._connect_worker()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _connect_worker(self) -> None:
        await self.connect()

    def _netscaler(self) -> NetScaler | None:
        """The [netscaler] part from the fields (the pinned certificate kept while the URL is the same)."""
        url, user = self.value("ns-url"), self.value("ns-user")
        prev = self.state.netscaler
        same = prev is not None and prev.url == url.rstrip("/")
        try:
            return NetScaler(url=url, username=user or "nsroot",
                             password_env=prev.password_env if prev else DEFAULT_PASSWORD_ENV,
                             ca_file=prev.ca_file if same and prev else None,
                             fingerprint=prev.fingerprint if same and prev else None)
        except ValidationError as err:
            self.problem("ns-url", err.errors()[0]["msg"].removeprefix("Value error, "))
            return None

    def collect(self, *, quiet: bool = False) -> str | None:
        return self.run_checks(quiet, self._collect)

    def _collect(self) -> str | None:
        st = self.state
        backend = self.backend_choice
        if backend != st.backend:
            st.diff = None
        st.backend = backend
        self.set_role(self.role_choice)
        if backend == "netscaler":
            ns = self._netscaler()
            if ns is not None:
                st.netscaler = ns
            st.password = self.query_one("#ns-password", Input).value or None  # memory only
        return self.first_problem()

    async def connect(self) -> bool:
        """Check the fields, pin the management certificate on first connect, log in."""
        st = self.state
        if self.collect() is not None:
            return False
        password = self.query_one("#ns-password", Input).value
        ns = st.netscaler
        assert ns is not None
        inputs = st.nitro_inputs()
        if not password:
            self.field("ns-password").set_error(f"Type the password (or set ${ns.password_env} and start again)")
            self.query_one("#ns-password").focus()
            return False
        self.field("ns-password").set_error(None)
        result = self.query_one("#ns-result", Static)
        if ns.url.startswith("https://") and not ns.ca_file:
            fetched = await self.guarded("Reading the management certificate", self.services.fetch_fingerprint, ns.url)
            if fetched is None:
                return False
            seen = NetScaler(url=ns.url, fingerprint=fetched).fingerprint
            assert seen is not None  # the validator turns a fingerprint into its canonical form, never None
            if ns.fingerprint != seen:
                if not await self._pin(ns, seen):
                    result.update("Not connected: the certificate was not pinned.")
                    return False
                ns = ns.model_copy(update={"fingerprint": seen})
        st.netscaler = ns
        st.password = password
        conn = await self.guarded("Logging in to NITRO", self.services.nitro_connect, ns,
                                  BackendOptions(password=password))
        st.nitro_checked_for = inputs
        if conn is None:
            st.nitro_ok = False
            self.field("ns-password").set_error("NITRO did not accept the login; check the user and password")
            return False
        st.cipher_groups, st.nitro_facts = conn.cipher_groups, conn.facts
        if conn.refusal is not None:  # the HA secondary: said here, before five steps are filled in for nothing
            st.nitro_ok = False
            self.field("ns-url").set_error(f"This is the SECONDARY node of an HA pair: {render(conn.refusal)}")
            result.update("Not this node: configuration is made on the primary.")
            self.query_one("#ns-url").focus()
            return False
        self.field("ns-url").set_error(None)
        st.nitro_ok = True
        result.update(self._ns_text())
        return True

    async def _pin(self, ns: NetScaler, seen: str) -> bool:
        """Ask before pinning a management certificate: on the first connection, or when it is not the pinned
        one any more (a renewal on purpose, or someone in the middle: the operator compares on the console)."""
        compare = ("Compare it with the ADC's own (its console: show ssl certKey ns-server-certificate).")
        if ns.fingerprint:
            text = (f"The management certificate of {ns.url} CHANGED.\nPinned:\n{fingerprint_lines(ns.fingerprint, '  ')}"
                    f"\nNow:\n{fingerprint_lines(seen, '  ')}\n\n{compare} If it was renewed on purpose, pin the new "
                    "one; otherwise do not connect: someone may be in the middle.")
            choices, title = [("n", "Do not connect"), ("y", "Pin the new one")], "The certificate changed"
        else:
            text = (f"First connection to {ns.url}.\nIts management certificate's SHA-256 fingerprint is\n\n"
                    f"{fingerprint_lines(seen, '  ')}\n\n{compare} Pin it? Every later connection must then "
                    "present this certificate.")
            choices, title = [("y", "Pin it"), ("n", "Do not connect")], "Pin the management certificate"
        return await self.app.push_screen_wait(ChoiceModal(text, choices, title=title)) == "y"

    # --- navigation --------------------------------------------------------------------------------
    async def commit(self) -> bool:
        st = self.state
        if self.collect() is not None:
            return False
        if st.backend == "netscaler" and (not st.nitro_ok or st.nitro_checked_for is None or st.stale("nitro")):
            if not await self.connect():
                return False
        return True

    def show_results(self) -> None:
        st = self.state
        if st.backend != "netscaler":
            return
        stale = st.stale("nitro")
        result = self.query_one("#ns-result", Static)
        if st.nitro_ok and stale:
            result.update(stale_text(stale, again="connect again"))
            result.set_classes("warn")
        else:
            result.update(self._ns_text())
            result.set_classes("")

    def set_role(self, role: Role) -> None:
        st = self.state
        st.role = role
        vs = st.vserver_for(role)
        if vs is not None:
            st.service_name = vs.service
        elif st.service_name is None and st.pacs_services:
            st.service_name = st.pacs_services[0].name

    def action_add_worklist(self) -> None:
        self._add_worklist()

    @on(Button.Pressed, "#add-worklist")
    def _add_worklist_button(self) -> None:
        self._add_worklist()

    @on(Button.Pressed, "#replace-cert")
    def _replace_cert_button(self) -> None:
        self._replace_cert()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _replace_cert(self) -> None:
        """The renewal path: the new pair, then Review and Apply; nothing else is asked again."""
        self.store_draft()
        if await self.commit():
            self.state.renewal = True
            self.wizard.goto(CERTIFICATES)

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _add_worklist(self) -> None:
        """The short path: everything else is set up already, so go straight to the virtual server."""
        self.role_override = "worklist"
        self.query_one("#role", RadioSet).query(Choice)[1].value = True
        self.store_draft()
        if await self.commit():
            self.wizard.goto(4)
        self.role_override = None
