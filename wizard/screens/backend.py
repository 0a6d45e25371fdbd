"""Step 3: the PACS behind the terminator, and a plain C-ECHO to it before any TLS exists.

A wrong AE title or port is caught here, where it is cheap, instead of at the end. A PACS on
several servers (`members` in the plan file) is edited here by its first server only; the others
are kept as they are, listed, and tested one by one.
"""

from __future__ import annotations

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Static

from engine.plan import (DEFAULT_CALLING_AE, DEFAULT_PACS_PORT, Member, Service, check_ae_title, check_host, check_name,
                         check_port, host_port)
from wizard.messages import EchoStep
from wizard.screens.base import StepScreen, error_text
from wizard import worklist_view
from wizard.widgets import PLAIN_RUNGS, RUNG_LABELS, FormField, Ladder


def parse_port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a whole number from 1 to 65535") from None
    return check_port(value)


def echo_verdict(report, what: str, where: str = "") -> tuple[Content, str]:
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
                      f"{bad.cause or bad.detail}", bad.next_action), "error"


def members_verdict(results: list[tuple[str, object]]) -> tuple[Content, str]:
    """One line per server of the PACS; green only when every one answered."""
    lines = [echo_verdict(rep, where, where)[0] for where, rep in results]
    return Content("\n").join(lines), "ok" if all(rep.ok for _, rep in results) else "error"


class BackendScreen(StepScreen):
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
        yield FormField("Name", "svc-name", self.val("svc-name", svc.name if svc else "PACS"))
        yield FormField("Host or IP", "svc-host", self.val("svc-host", first.host if first else ""),
                        placeholder="10.0.0.5")
        yield FormField("Port", "svc-port", self.val("svc-port", str(first.port if first else DEFAULT_PACS_PORT)))
        yield FormField("AE title", "svc-ae", self.val("svc-ae", svc.ae_title if svc else ""),
                        placeholder="the PACS's own AE title, e.g. QLINK")
        if self.other_members:
            yield Static(self._members_line(self.val("svc-host", first.host), self.val("svc-port", str(first.port))),
                         id="members", classes="note")
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
        rep = self.state.pacs_report
        ladder = self.query_one(Ladder)
        if rep is not None and self._tested_for == self._current():
            for s in rep.steps:
                ladder.show(s)
            if self.other_members and self.state.pacs_reports:
                self._show_members(self.state.pacs_reports)
            else:
                self._verdict(rep)
        else:
            ladder.display = False
        first_empty = next((i for i in self.query(Input) if not i.value), None)
        (first_empty or self.query_one("#svc-name", Input)).focus()

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
        if None not in (host, port):
            twin = next((m for m in self.other_members if (m.host, m.port) == (host, port)), None)
            if twin is not None:
                self.field("svc-host").set_error(f"Host or IP and Port are {twin.address}, already another member "
                                                 "of this PACS (see below); give the first member's address")
                host = None
        if None in (name, host, port, ae):
            bad = next(f for f in ("svc-name", "svc-host", "svc-port", "svc-ae") if self.field(f).error)
            self.query_one(f"#{bad}", Input).focus()
            return None
        svc = self.state.service
        # The first member is what the fields say; the others stay (a plan's members are never lost).
        members = [Member(host=host, port=port), *self.other_members] if svc is not None and svc.members else []
        try:
            return Service(name=name, host=host, port=port, ae_title=ae, members=members)
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
        self.query_one("#pacs-result", Static).update("")
        targets = svc.targets
        results: list[tuple[str, object]] = []
        for i, m in enumerate(targets):
            ladder.reset()
            if len(targets) > 1:
                self.query_one("#pacs-member", Static).update(Content(f"{m.address} ({i + 1} of {len(targets)}):"))
            ladder_name = f"pacs:{i}"
            self._ladder_name = ladder_name  # step messages of an earlier server's test are ignored

            def on_step(step, ladder_name=ladder_name) -> None:
                self.post_message(EchoStep(ladder_name, step))

            report = await self.guarded(f"C-ECHO to {svc.ae_title} at {m.address}", self.services.echo,
                                        m.host, m.port, tls=False, calling_ae=self.calling_ae,
                                        called_ae=svc.ae_title, timeout=10.0, on_step=on_step,
                                        **worklist_view.query_for(self.state.role, self.services))
            if report is None:
                return False
            for s in report.steps:  # the final word, in case a step message is still queued
                ladder.show(s)
            results.append((m.address, report))
        # The report kept is a failing one if any (its ladder is the one to read), else the last.
        worst = next((r for _, r in results if not r.ok), results[-1][1])
        self.state.pacs_report = worst
        self.state.pacs_reports = results
        self.state.drafts["backend-tested"] = self._current()
        if len(results) > 1:
            self._show_members(results)
        else:
            self._verdict(worst)
        return worst.ok

    def _show_members(self, results: list[tuple[str, object]]) -> None:
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

    def _verdict(self, report) -> None:
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
