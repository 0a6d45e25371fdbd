"""Step 8: the proof. A real association and C-ECHO through the new TLS endpoint, calling as BUTTERFLY,
each rung of the ladder ticked or explained."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from dicomtls.engine.plan import Plan
from dicomtls.wizard import worklist_view
from dicomtls.wizard.messages import EchoStep
from dicomtls.wizard.screens.base import JUMP_BINDINGS, StepScreen
from dicomtls.wizard.screens.pacs import echo_verdict
from dicomtls.wizard.widgets import STEP_NAMES, TLS_RUNGS, Ladder

if TYPE_CHECKING:
    from dicomtls.engine.verify import EchoReport, Step

# Which step holds what a failed rung points at (0-based): the place to go and fix it.
FIX_STEP = {"resolve": 4, "tcp": 4, "tls": 1, "associate": 2, "echo": 2, "release": 2}


def echo_target(plan: Plan, role: str) -> tuple[str, int]:
    """Where to test: the virtual server's address (loopback for a listener on every address)."""
    vs = next(v for v in plan.virtual_server if v.role == role)
    host = vs.ip
    if ipaddress.ip_address(host).is_unspecified:
        host = "::1" if ipaddress.ip_address(host).version == 6 else "127.0.0.1"
    return host, vs.port


class EchoScreen(StepScreen):
    KEY = "echo"
    TITLE = "Echo test: C-ECHO through the TLS endpoint, as Butterfly would"
    INDEX = 7
    BINDINGS = [Binding("ctrl+t", "test", "Run again", id="test"), *JUMP_BINDINGS]

    def compose_body(self) -> ComposeResult:
        st = self.state
        plan = st.try_plan()
        vs, svc = st.vserver, st.service
        if plan is None or vs is None or svc is None:
            yield Static("The setup is not complete; go Back.", id="echo-intro")
            return
        host, port = echo_target(plan, st.role)
        yield Static(f"TLS to {host}:{port} ({plan.policy.name}), calling AE {vs.calling_ae}, called AE "
                     f"{svc.ae_title}; the server must present {st.show_path(plan.cert_path)}.", id="echo-intro")
        yield Ladder(worklist_view.rungs(TLS_RUNGS, st.role), id="echo-ladder")
        yield Static("", id="echo-result")

    def on_mount(self) -> None:
        rep = self.state.echo_report
        if not self.query(Ladder):
            return
        if rep is not None and self.state.echo_checked_for is not None and not self.state.stale("echo"):
            for s in rep.steps:
                self.query_one(Ladder).show(s)
            self._verdict(rep)
        else:
            self.action_test()

    def action_test(self) -> None:
        if self.query(Ladder):
            self._run()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _run(self) -> None:
        st = self.state
        plan = st.build_plan()
        vs, svc = st.vserver, st.service
        if vs is None or svc is None:  # (the screen has a Ladder to run only when both are there)
            return
        host, port = echo_target(plan, st.role)
        ladder = self.query_one(Ladder)
        ladder.reset()
        self.query_one("#echo-result", Static).update("")
        inputs = st.echo_inputs()

        def on_step(step: Step) -> None:
            self.post_message(EchoStep("echo", step))

        # Butterfly's certificates are self-signed and used for encryption, not identity, so the
        # chain is not verified; instead the server must present exactly the configured certificate.
        report = await self.guarded(f"C-ECHO through {host}:{port}", self.services.echo, host, port, tls=True,
                                    insecure=True, expect_cert=str(plan.cert_path), calling_ae=vs.calling_ae,
                                    called_ae=svc.ae_title, policy=plan.cipher_policy.profile, timeout=10.0,
                                    on_step=on_step, **worklist_view.query_for(st.role, self.services))
        if report is None:
            return
        for s in report.steps:
            ladder.show(s)
        st.echo_report, st.echo_checked_for = report, inputs
        self._verdict(report)

    def on_echo_step(self, message: EchoStep) -> None:
        if message.ladder == "echo" and self.query(Ladder):
            self.query_one(Ladder).show(message.step)

    def _verdict(self, report: EchoReport) -> None:
        text, cls = echo_verdict(report, "Through TLS, the PACS")
        text = worklist_view.verdict(report, "through TLS", text)
        if report.ok:
            text = Content.assemble(text, "\nButterfly's path works end to end; ctrl+n shows Butterfly's values.")
        else:
            step = FIX_STEP.get(report.failed_step.name if report.failed_step else "", None)
            if step is not None:
                text = Content.assemble(text, f"\nPress {step + 1} to go to step {STEP_NAMES[step]}, ctrl+t to run again.")
        w = self.query_one("#echo-result", Static)
        w.update(text)
        w.set_classes(cls)

    async def commit(self) -> bool:
        st = self.state
        rep = st.echo_report
        if rep is None or self.running:
            self.status("Wait for the echo test (or ctrl+t to run it).", "warn")
            return False
        if rep.ok or st.is_accepted("echo"):
            return True
        return await self.continue_anyway(
            "echo", "The C-ECHO through TLS failed, so Butterfly's studies would not arrive.\n\nFix the rung shown "
            "(a step's number goes to it), or continue anyway to Butterfly's values.", "Echo test failed",
            "the C-ECHO through TLS failed")
