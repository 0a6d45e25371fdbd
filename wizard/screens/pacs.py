"""Step 3: the PACS behind the terminator, and a plain C-ECHO to it before any TLS exists.

A wrong AE title or port is caught here, where it is cheap, instead of at the end. A PACS on
several servers (`members` in the plan file) is edited here by its first server only; the others
are kept as they are, listed, and tested one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Static

from dicomtls.engine.addresses import host_port
from dicomtls.engine.plan import (
    DEFAULT_CALLING_AE,
    DEFAULT_PACS_PORT,
    Member,
    Service,
    check_ae_title,
    check_host,
    check_name,
    check_port,
)
from dicomtls.wizard import worklist_view
from dicomtls.wizard.advice import step_action
from dicomtls.wizard.checks import stale_text
from dicomtls.wizard.messages import EchoStep
from dicomtls.wizard.screens.base import StepScreen, error_text
from dicomtls.wizard.widgets import PLAIN_RUNGS, RUNG_LABELS, FormField, Ladder

if TYPE_CHECKING:
    from dicomtls.engine.verify import EchoReport, Step


def parse_port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a whole number from 1 to 65535") from None
    return check_port(value)


def echo_verdict(report: EchoReport, what: str, where: str = "") -> tuple[Content, str]:
    """One line: the ladder's outcome, and the CSS class that colours it. `where` names the server
    in a failure (a PACS on several servers)."""
    if report.ok:
        total = sum(s.seconds or 0 for s in report.steps)
        return Content.styled(f"✓ {what} answered C-ECHO: status 0x0000 (success), {total:.2f} s.", "bold"), "ok"
    bad = next((s for s in report.steps if not s.ok), None)
    if bad is None:
        status = f"0x{report.status:04X}" if report.status is not None else "none"
        return error_text(f"{what} did not confirm the C-ECHO (status {status}).", ""), "error"
    return error_text(f"{where + ': ' if where else ''}{RUNG_LABELS.get(bad.name, bad.name)} failed: "
                      f"{bad.cause or bad.detail}", step_action(bad)), "error"


def members_verdict(results: list[tuple[str, EchoReport]]) -> tuple[Content, str]:
    """One line per server of the PACS; green only when every one answered."""
    lines = [echo_verdict(rep, where, where)[0] for where, rep in results]
    return Content("\n").join(lines), "ok" if all(rep.ok for _, rep in results) else "error"


class PacsScreen(StepScreen):
    KEY = "backend"
    TITLE = "PACS: where the studies go"
    INDEX = 2
    BINDINGS = [Binding("ctrl+t", "test", "Test the PACS", id="test")]

    def compose_body(self) -> ComposeResult:
        st = self.state
        svc = st.service
        first = svc.targets[0] if svc else None  # the one server the fields edit
        where = "this host" if st.backend == "builtin" else "the NetScaler (test from here anyway)"
        yield Static(f"The PACS that receives Butterfly's studies in plain DICOM, as reached from {where}.",
                     id="intro")
        yield FormField("Name", "svc-name", self.draft_value("svc-name", svc.name if svc else "PACS"))
        yield FormField("Host or IP", "svc-host", self.draft_value("svc-host", first.host if first else ""),
                        placeholder="10.0.0.5")
        yield FormField("Port", "svc-port", self.draft_value("svc-port", str(first.port if first else DEFAULT_PACS_PORT)))
        yield FormField("AE title", "svc-ae", self.draft_value("svc-ae", svc.ae_title if svc else ""),
                        placeholder="the PACS's own AE title, e.g. QLINK")
        if self.other_members and first is not None:  # (members after the first: there is a first)
            line = self._members_line(self.draft_value("svc-host", first.host),
                                      self.draft_value("svc-port", str(first.port)))
            yield Static(line, id="members", classes="note")
        shared = st.shared_by()
        if shared:
            yield Static(f"Also used by {', '.join(v.name for v in shared)}: a change here applies to it too.",
                         classes="note")
        with Horizontal(classes="buttons"):
            yield Button("Test the PACS (TCP + plain C-ECHO)  ctrl+t", id="test", compact=True)
        if self.other_members:
            yield Static("", id="pacs-member")
        yield Ladder(worklist_view.rungs(PLAIN_RUNGS, st.role), id="pacs-ladder")
        yield Static("", id="pacs-result")

    def on_mount(self) -> None:
        self.show_results()
        self.focus_first()

    def show_results(self) -> None:
        """The last test's ladder and verdict if it ran on the values now on screen; else say what
        changed since (never a ✓ for other values)."""
        if self.running:
            return  # a test is drawing its ladder
        st = self.state
        ladder = self.query_one(Ladder)
        result = self.query_one("#pacs-result", Static)
        rep = st.pacs_report
        stale = st.stale("pacs")
        for w in self.query("#pacs-member").results(Static):
            w.display = rep is not None and not stale
        if rep is None:
            ladder.display = False
            result.update("")
            result.set_classes("")
        elif stale:
            ladder.display = False
            result.update(stale_text(stale))
            result.set_classes("warn")
        else:
            ladder.display = True
            ladder.reset()
            for s in rep.steps:
                ladder.show(s)
            if self.other_members and st.pacs_reports:
                self._show_members(st.pacs_reports)
            else:
                self._verdict(rep)

    # --- a PACS on several servers ------------------------------------------------------------------
    @property
    def other_members(self) -> list[Member]:
        """The servers after the first, as the plan file lists them: kept, never edited here."""
        svc = self.state.service
        return list(svc.members[1:]) if svc is not None else []

    def _members_line(self, host: str, port: str) -> Content:
        names = [host_port(host.strip() or "?", port.strip() or "?")] + [m.address for m in self.other_members]
        return Content(f"Members from the plan file: {', '.join(names)}; Host and Port edit the first, "
                       "the test checks each.")  # Content, not markup: [::1]:104 is an address

    def on_input_changed(self, event: Input.Changed) -> None:
        # StepScreen's handler (clearing the field's error) runs as well: Textual calls both.
        if event.input.id in ("svc-host", "svc-port"):
            for w in self.query("#members").results(Static):
                w.update(self._members_line(self.value("svc-host"), self.value("svc-port")))

    @property
    def calling_ae(self) -> str:
        vs = self.state.vserver
        return vs.calling_ae if vs else DEFAULT_CALLING_AE

    def validate_fields(self) -> Service | None:
        name = self.check("svc-name", check_name)
        host = self.check("svc-host", lambda v: check_host(v) if v else _missing("the PACS's host name or IP"))
        port = self.check("svc-port", parse_port)
        ae = self.check("svc-ae", lambda v: check_ae_title(v) if v.strip() else
                        _missing("the PACS's own AE title (its administrator knows it)"))
        if None not in (host, port):
            twin = next((m for m in self.other_members if (m.host, m.port) == (host, port)), None)
            if twin is not None:
                self.problem("svc-host", f"and Port are {twin.address}, already another member of this PACS "
                                         "(see below); give the first member's address")
                host = None
        if None in (name, host, port, ae):
            return None
        svc = self.state.service
        # The first member is what the fields say; the others stay (a plan's members are never lost).
        members = [Member(host=host, port=port), *self.other_members] if svc is not None and svc.members else []
        try:
            return Service(name=name, host=host, port=port, ae_title=ae, members=members)
        except ValidationError as err:  # the checks above mirror the model's; this is a backstop
            self.problem("svc-name", str(err))
            return None

    def collect(self, *, quiet: bool = False) -> str | None:
        svc = self.run_checks(quiet, self.validate_fields)
        if svc is None:
            return self.first_problem() or "the PACS step is not complete"
        self.state.set_service(svc, self.state.service_name)
        return None

    # --- the plain C-ECHO --------------------------------------------------------------------------
    @on(Button.Pressed, "#test")
    def action_test(self) -> None:
        self._test_worker()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _test_worker(self) -> None:
        await self.test_pacs()

    async def test_pacs(self) -> bool:
        if self.collect() is not None:
            return False
        svc = self.state.service
        assert svc is not None
        inputs = self.state.pacs_inputs()  # what this test runs on; its result belongs to these
        ladder = self.query_one(Ladder)
        ladder.display = True
        self.query_one("#pacs-result", Static).update("")
        targets = svc.targets
        results: list[tuple[str, EchoReport]] = []
        for i, m in enumerate(targets):
            ladder.reset()
            if len(targets) > 1:
                self.query_one("#pacs-member", Static).update(Content(f"{m.address} ({i + 1} of {len(targets)}):"))
            ladder_name = f"pacs:{i}"
            self._ladder_name = ladder_name  # step messages of an earlier server's test are ignored

            def on_step(step: Step, ladder_name: str = ladder_name) -> None:
                self.post_message(EchoStep(ladder_name, step))

            report = await self.guarded(f"C-ECHO to {svc.ae_title} at {m.address}", self.services.echo,
                                        m.host, m.port, tls=False, calling_ae=self.calling_ae,
                                        called_ae=svc.ae_title, timeout=10.0, on_step=on_step,
                                        **worklist_view.query_for(self.state.role, self.services))
            if report is None:
                self.show_results()
                return False
            for s in report.steps:  # the final word, in case a step message is still queued
                ladder.show(s)
            results.append((m.address, report))
        # The report kept is a failing one if any (its ladder is the one to read), else the last.
        worst = next((r for _, r in results if not r.ok), results[-1][1])
        self.state.pacs_report = worst
        self.state.pacs_reports = results
        self.state.pacs_checked_for = inputs
        self.running = False
        self.show_results()
        return worst.ok

    def _show_members(self, results: list[tuple[str, EchoReport]]) -> None:
        """Each server's verdict; the ladder above is that of the first failing one (or the last)."""
        at = next((i for i, (_, r) in enumerate(results) if not r.ok), len(results) - 1)
        ladder = self.query_one(Ladder)
        ladder.reset()
        for s in results[at][1].steps:
            ladder.show(s)
        self.query_one("#pacs-member", Static).update(Content(f"{results[at][0]} ({at + 1} of {len(results)}):"))
        text, cls = members_verdict(results)
        w = self.query_one("#pacs-result", Static)
        w.update(text)
        w.set_classes(cls)

    def _verdict(self, report: EchoReport) -> None:
        text, cls = echo_verdict(report, "The PACS")
        text = worklist_view.verdict(report, "in the PACS's worklist", text)
        w = self.query_one("#pacs-result", Static)
        w.update(text)
        w.set_classes(cls)

    def on_echo_step(self, message: EchoStep) -> None:
        if message.ladder == getattr(self, "_ladder_name", None):
            self.query_one(Ladder).show(message.step)

    # --- navigation --------------------------------------------------------------------------------
    async def commit(self) -> bool:
        st = self.state
        if self.collect() is not None:
            return False
        if st.pacs_report is None or st.stale("pacs"):
            await self.test_pacs()
            if st.pacs_report is None or st.stale("pacs"):
                return False  # the test could not run (bad values, cancelled); its error is shown
        if st.pacs_report.ok or st.is_accepted("pacs"):
            return True
        bad = st.pacs_report.failed_step
        why = f"\n{RUNG_LABELS.get(bad.name, bad.name)} failed: {bad.cause or bad.detail}" if bad else ""
        return await self.continue_anyway(
            "pacs", f"The PACS did not answer the C-ECHO.{why}\n\nCorrect the values, or continue anyway (for "
            "example when the PACS is reachable from the NetScaler only).", "PACS test failed",
            "the PACS did not answer the plain C-ECHO")


def _missing(what: str) -> NoReturn:
    raise ValueError(f"is empty; give {what}")
