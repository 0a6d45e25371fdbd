"""Step 9: the values to enter in Butterfly Cloud, the firewall rule, and a live line that turns green
when Butterfly's own C-ECHO arrives (built-in terminator), or when the NetScaler vserver's counters show
a connection from outside (wizard.adc_live). The whole setup can be saved as a runbook."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Input, Static

from dicomtls.engine.plan import check_host
from dicomtls.wizard import adc_live, runbook
from dicomtls.wizard.messages import AssociationSeen, CountersMoved
from dicomtls.wizard.screens.base import StepScreen
from dicomtls.wizard.screens.echo import echo_target
from dicomtls.wizard.widgets import FormField

RUNBOOK_NAME = "dicomtls-runbook.md"


class ButterflyScreen(StepScreen):
    KEY = "butterfly"
    LIVE_FIELDS = ("public-host",)  # checked as it is typed (_fill)
    TITLE = "Butterfly Cloud: enter these values"
    INDEX = 8
    BINDINGS = [
        Binding("ctrl+s", "save_runbook", "Runbook", id="save-runbook"),
        Binding("ctrl+t", "play_butterfly", "Test C-ECHO", id="play"),
        Binding("ctrl+o", "add_worklist", "Add worklist", id="add-worklist"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.opened = dt.datetime.now(dt.UTC)
        self._unwatch: Callable[[], None] | None = None

    def compose_body(self) -> ComposeResult:
        st = self.state
        vs = st.vserver
        default_host = vs.ip if vs and not ipaddress.ip_address(vs.ip).is_unspecified else ""
        yield Static("Organization Settings → Connectivity → DICOM in Butterfly Cloud:", id="where")
        yield FormField("Public host", "public-host", self.draft_value("public-host", default_host),
                        placeholder="the public IP Butterfly connects to")
        yield Static("", id="values")
        yield Static("", id="firewall")
        yield Static("Download the PEM pair (Butterfly_SCP_Cert.pem, Butterfly_SCP_key.pem) on that page; "
                     "it is the pair this setup uses.", id="reminder", classes="note")
        if st.backend in ("builtin", "netscaler"):
            yield Static("", id="live")
        yield Static("", id="runbook-result")

    def on_mount(self) -> None:
        self._fill()
        if self.state.backend == "builtin":
            self._waiting()
            self._start_watch()
        elif self.state.backend == "netscaler" and self.state.vserver is not None:
            adc_live.waiting(self.query_one("#live", Static), self.state.vserver)
            self._unwatch = adc_live.start(self)
        self.query_one("#public-host", Input).focus()

    def on_counters_moved(self, message: CountersMoved) -> None:
        adc_live.show(self.query_one("#live", Static), message)

    def on_unmount(self) -> None:
        if self._unwatch is not None:
            self._unwatch()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "play_butterfly":
            return self.state.demo is not None and self.state.backend == "builtin"
        if action == "add_worklist":  # the store pass is applied and saved; the worklist one is not there yet
            st = self.state
            return (not self.running and st.role == "store" and st.vserver_for("worklist") is None
                    and st.apply_result is not None and st.apply_result.ok)
        return super().check_action(action, parameters)

    def action_add_worklist(self) -> None:
        if self.check_action("add_worklist", ()):
            self.wizard.worklist_pass()

    @property
    def public_host(self) -> str:
        v = self.value("public-host")
        try:
            return check_host(v) if v else ""
        except ValueError:
            return ""

    @on(Input.Changed, "#public-host")
    def _fill(self) -> None:
        st = self.state
        plan, vs = st.try_plan(), st.vserver
        if plan is None or vs is None:
            self.query_one("#values", Static).update("The setup is not complete; go Back.")
            return
        v = self.value("public-host")
        self.field("public-host").set_error(None)
        if v:
            try:
                check_host(v)
            except ValueError as exc:
                self.field("public-host").set_error(f"Public host {exc}")
        rows = runbook.butterfly_values(plan, vs, self.public_host)
        self.query_one("#values", Static).update(Content("\n".join(f"  {k:<16} {val}" for k, val in rows)))
        self.query_one("#firewall", Static).update(
            Content("Firewall:\n" + "\n".join(f"  {line}" for line in runbook.firewall_rule(plan, vs, self.public_host))))

    # --- the live line (built-in terminator) -----------------------------------------------------------
    def _waiting(self) -> None:
        vs = self.state.vserver
        live = self.query_one("#live", Static)
        live.update(Content(f"… Waiting for Butterfly's C-ECHO (calling AE {vs.calling_ae if vs else '?'}) on port "
                            f"{vs.port if vs else '?'}; start a connection test in Butterfly Cloud."))
        live.set_classes("busy")

    def _start_watch(self) -> None:
        plan = self.state.try_plan()
        if plan is None:
            return

        def seen(rec: dict[str, Any]) -> None:
            self.post_message(AssociationSeen(rec))

        try:
            self._unwatch = self.services.watch_associations(
                self.state, plan, seen,
                run=lambda follow: self.run_worker(follow, thread=True, group="watch", exit_on_error=False))
        except Exception as exc:  # no log to watch (the terminator is not running here)
            live = self.query_one("#live", Static)
            live.update(Content(f"Cannot watch the terminator's association log: {exc}"))
            live.set_classes("warn")

    def on_association_seen(self, message: AssociationSeen) -> None:
        """Green for an admitted association calling as BUTTERFLY; otherwise say what arrived and why
        it does not count (a refused association, or another calling AE: a typo in Butterfly Cloud)."""
        rec, vs = message.record, self.state.vserver
        if vs is None or rec.get("event") != "association" or rec.get("listener") not in (None, vs.name):
            return
        calling = str(rec.get("calling_ae") or "").strip()
        if not calling:
            return  # closed before it said who it is (a port probe, a TLS failure)
        when = _clock(rec.get("ts"))
        peer = str(rec.get("client") or "")
        source = f" from {peer}" if peer else ""
        live = self.query_one("#live", Static)
        outcome = str(rec.get("outcome") or "")
        admitted = outcome.startswith("released") if outcome else "bytes_to_client" in rec
        if peer and self.services.is_own(peer):
            # This wizard's own C-ECHO (ctrl+t, or the echo step): it proves the path, not Butterfly.
            if not live.has_class("ok"):
                done = "reached the PACS" if admitted else f"ended: {outcome or rec.get('end') or '?'}"
                live.update(Content(f"· {when} self-test: this wizard's own C-ECHO{source} {done}. Still waiting "
                                    f"for Butterfly's own (calling AE {vs.calling_ae}) on port {vs.port}."))
                live.set_classes("busy")
            return
        if calling == vs.calling_ae and outcome.startswith("rejected_by_pacs"):
            live.update(Content(f"✗ {when} {calling}{source} got through TLS, but the PACS rejected the association "
                                f"({outcome.split()[-1]}): check the SCP AET in Butterfly Cloud and that the PACS "
                                f"accepts calling AE {calling}."))
            live.set_classes("error")
        elif calling == vs.calling_ae and admitted:
            live.update(Content.styled(f"✓ {when} An association from {calling}{source} reached the PACS: "
                                       "Butterfly is connected.", "bold"))
            live.set_classes("ok")
        elif calling == vs.calling_ae:
            live.update(Content(f"✗ {when} {calling}{source} arrived but did not complete: "
                                f"{rec.get('detail') or outcome or rec.get('end')}"))
            live.set_classes("error")
        elif not live.has_class("ok"):
            live.update(Content(f"! {when} An association from {calling!r}{source} arrived, not {vs.calling_ae}: "
                                "check the SCU calling AET in Butterfly Cloud."))
            live.set_classes("warn")

    def action_play_butterfly(self) -> None:
        if self.check_action("play_butterfly", ()):
            self._play()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _play(self) -> None:
        """Demo only: stand in for Butterfly and call in as BUTTERFLY."""
        st = self.state
        plan = st.build_plan()
        vs, svc = st.vserver, st.service
        if vs is None or svc is None:  # (set on the earlier steps; the key is offered in the demo only)
            return
        host, port = echo_target(plan, st.role)
        await self.guarded("Sending a C-ECHO as Butterfly would", self.services.echo, host, port, tls=True,
                           insecure=True, calling_ae=vs.calling_ae, called_ae=svc.ae_title,
                           policy=plan.cipher_policy.profile, timeout=10.0)

    # --- runbook ---------------------------------------------------------------------------------------
    def action_save_runbook(self) -> None:
        self._save()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _save(self) -> None:
        st = self.state
        plan = st.try_plan()
        if plan is None:
            return
        hosts = dict(st.draft(self.KEY).get("hosts", {}))
        hosts[st.role] = self.public_host
        st.draft(self.KEY)["hosts"] = hosts
        text = runbook.render(plan, st.show_path(st.plan_path), hosts, pem=st.pem, diff=st.diff,
                              echo={st.role: st.echo_report} if st.echo_report and not st.stale("echo") else None,
                              now=self.services.now(), warnings=st.runbook_warnings())
        path = Path(st.plan_path).parent / RUNBOOK_NAME
        done = await self.guarded("Saving the runbook", _write, path, text)
        if done is not None:
            st.runbook_path = path
            self.query_one("#runbook-result", Static).update(Content(f"✓ Saved the runbook to {st.show_path(path)}."))

    async def commit(self) -> bool:
        st = self.state
        lines = [f"Set up: {st.role} on port {st.vserver.port if st.vserver else '?'}; "
                 f"plan {st.plan_path}"]
        if st.runbook_path:
            lines.append(f"Runbook: {st.runbook_path}")
        self.app.exit(0, message="\n".join(lines))
        return False


def _write(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def _clock(ts: object) -> str:
    """HH:MM:SS (UTC) of a log record's ISO timestamp."""
    try:
        return dt.datetime.fromisoformat(str(ts)).strftime("%H:%M:%S")
    except ValueError:
        return dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
