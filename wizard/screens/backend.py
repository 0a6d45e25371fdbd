"""Step 3: the PACS behind the terminator, and a plain C-ECHO to it before any TLS exists.

A wrong AE title or port is caught here, where it is cheap, instead of at the end.
"""

from __future__ import annotations

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Static

from engine.plan import DEFAULT_CALLING_AE, DEFAULT_PACS_PORT, Service, check_ae_title, check_host, check_name, check_port
from wizard.messages import EchoStep
from wizard.screens.base import StepScreen, error_text
from wizard.widgets import PLAIN_RUNGS, RUNG_LABELS, FormField, Ladder


def parse_port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a whole number from 1 to 65535") from None
    return check_port(value)


def echo_verdict(report, what: str) -> tuple[Content, str]:
    """One line: the ladder's outcome, and the CSS class that colours it."""
    if report.ok:
        total = sum(s.seconds or 0 for s in report.steps)
        return Content.styled(f"✓ {what} answered C-ECHO: status 0x0000 (success), {total:.2f} s.", "bold"), "ok"
    bad = next((s for s in report.steps if not s.ok), None)
    if bad is None:
        status = f"0x{report.status:04X}" if report.status is not None else "none"
        return error_text(f"{what} did not confirm the C-ECHO (status {status}).", ""), "error"
    return error_text(f"{RUNG_LABELS.get(bad.name, bad.name)} failed: {bad.cause or bad.detail}",
                      bad.next_action), "error"


class BackendScreen(StepScreen):
    KEY = "backend"
    TITLE = "PACS: where the studies go"
    INDEX = 2
    BINDINGS = [Binding("ctrl+t", "test", "Test the PACS", id="test")]

    def compose_body(self) -> ComposeResult:
        st = self.state
        svc = st.service
        where = "this host" if st.backend == "builtin" else "the NetScaler (test from here anyway)"
        yield Static(f"The PACS that receives Butterfly's studies in plain DICOM, as reached from {where}.",
                     id="intro")
        yield FormField("Name", "svc-name", self.val("svc-name", svc.name if svc else "PACS"))
        yield FormField("Host or IP", "svc-host", self.val("svc-host", svc.host if svc else ""),
                        placeholder="10.0.0.5")
        yield FormField("Port", "svc-port", self.val("svc-port", str(svc.port if svc else DEFAULT_PACS_PORT)))
        yield FormField("AE title", "svc-ae", self.val("svc-ae", svc.ae_title if svc else ""),
                        placeholder="the PACS's own AE title, e.g. QLINK")
        shared = st.shared_by()
        if shared:
            yield Static(f"Also used by {', '.join(v.name for v in shared)}: a change here applies to it too.",
                         classes="note")
        with Horizontal(classes="buttons"):
            yield Button("Test the PACS (TCP + plain C-ECHO)  ctrl+t", id="test", compact=True)
        yield Ladder(list(PLAIN_RUNGS), id="pacs-ladder")
        yield Static("", id="pacs-result")

    def on_mount(self) -> None:
        rep = self.state.pacs_report
        ladder = self.query_one(Ladder)
        if rep is not None and self._tested_for == self._current():
            for s in rep.steps:
                ladder.show(s)
            self._verdict(rep)
        else:
            ladder.display = False
        first_empty = next((i for i in self.query(Input) if not i.value), None)
        (first_empty or self.query_one("#svc-name", Input)).focus()

    @property
    def calling_ae(self) -> str:
        vs = self.state.vserver
        return vs.calling_ae if vs else DEFAULT_CALLING_AE

    @property
    def _tested_for(self):
        return self.state.drafts.get("backend-tested")

    def _current(self) -> tuple[str, str, str]:
        return (self.value("svc-host"), self.value("svc-port"), self.value("svc-ae"))

    def validate_fields(self) -> Service | None:
        name = self.check("svc-name", check_name)
        host = self.check("svc-host", lambda v: check_host(v) if v else _missing("the PACS's host name or IP"))
        port = self.check("svc-port", parse_port)
        ae = self.check("svc-ae", lambda v: check_ae_title(v) if v.strip() else
                        _missing("the PACS's own AE title (its administrator knows it)"))
        if None in (name, host, port, ae):
            bad = next(f for f in ("svc-name", "svc-host", "svc-port", "svc-ae") if self.field(f).error)
            self.query_one(f"#{bad}", Input).focus()
            return None
        try:
            return Service(name=name, host=host, port=port, ae_title=ae)
        except ValidationError as err:  # the checks above mirror the model's; this is a backstop
            self.status(str(err), "error")
            return None

    # --- the plain C-ECHO --------------------------------------------------------------------------
    @on(Button.Pressed, "#test")
    def action_test(self) -> None:
        self._test_worker()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _test_worker(self) -> None:
        await self.test_pacs()

    async def test_pacs(self) -> bool:
        svc = self.validate_fields()
        if svc is None:
            return False
        ladder = self.query_one(Ladder)
        ladder.display = True
        ladder.reset()
        self.query_one("#pacs-result", Static).update("")

        def on_step(step) -> None:
            self.post_message(EchoStep("pacs", step))

        report = await self.guarded(f"C-ECHO to {svc.ae_title} at {svc.host}:{svc.port}", self.services.echo,
                                    svc.host, svc.port, tls=False, calling_ae=self.calling_ae,
                                    called_ae=svc.ae_title, timeout=10.0, on_step=on_step)
        if report is None:
            return False
        for s in report.steps:  # the final word, in case a step message is still queued
            ladder.show(s)
        self.state.pacs_report = report
        self.state.drafts["backend-tested"] = self._current()
        self._verdict(report)
        return report.ok

    def _verdict(self, report) -> None:
        text, cls = echo_verdict(report, "The PACS")
        w = self.query_one("#pacs-result", Static)
        w.update(text)
        w.set_classes(cls)

    def on_echo_step(self, message: EchoStep) -> None:
        if message.ladder == "pacs":
            self.query_one(Ladder).show(message.step)

    # --- navigation --------------------------------------------------------------------------------
    async def commit(self) -> bool:
        st = self.state
        svc = self.validate_fields()
        if svc is None:
            return False
        if self._tested_for != self._current():
            # Test once per set of values; a second Next after a failed test goes on (the PACS may be
            # reachable from the NetScaler only).
            if not await self.test_pacs():
                if self.state.pacs_report is None or self._tested_for != self._current():
                    return False  # the test could not run; its error is on the status line
                self.status("The PACS test failed. Correct the values, or press ctrl+n again to go on anyway "
                            "(e.g. the PACS is reachable from the NetScaler only).", "warn")
                return False
        st.set_service(svc, st.service_name)
        return True


def _missing(what: str):
    raise ValueError(f"is empty; give {what}")
