"""Step 6: every change the backend will make; nothing is written before the user confirms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from dicomtls.engine.addresses import host_port
from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.base import Action, Diff
from dicomtls.engine.plan import ROLE_PORTS, Plan, dump_plan
from dicomtls.engine.plan_errors import PlanError
from dicomtls.wizard import target_facts
from dicomtls.wizard.advice import change_fix, fix_text, plan_problem
from dicomtls.wizard.renewal import CERTIFICATES
from dicomtls.wizard.screens.base import JUMP_BINDINGS, StepScreen, error_text, tidy
from dicomtls.wizard.screens.modals import ChoiceModal
from dicomtls.wizard.widgets import wrap_indent

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.UNCHANGED: "=", Action.CONFLICT: "!"}
STYLE = {Action.CREATE: "bold", Action.UPDATE: "bold", Action.UNCHANGED: "dim", Action.CONFLICT: "bold reverse"}


def diff_text(diff: Diff) -> Content:
    """The change list: one line per object, then its field changes and CLI lines, indented."""
    lines: list[Content] = [Content(tidy(f"On {diff.target}:"))]
    if target_facts.describe(diff.facts):
        lines.append(Content(wrap_indent(f"({target_facts.describe(diff.facts)})", "  ")))
    for c in diff.changes:
        head = f"{SYMBOL[c.action]} {c.action.value:<9} {c.kind} {c.name}"
        lines.append(Content.styled(head, STYLE[c.action]))
        if c.summary:
            lines.append(Content(wrap_indent(tidy(c.summary), "      ")))
        for field, (old, new) in c.fields.items():
            lines.append(Content(wrap_indent(f"{field}: {_short(old)} -> {_short(new)}", "      ")))
        if c.hint or c.advice:
            lines.append(Content(wrap_indent(f"fix: {change_fix(c)}", "      ")))
        if c.writes:
            for cli in c.cli:
                lines.append(Content.styled(wrap_indent(f"> {cli}", "      "), "italic"))
    n = diff.counts()
    lines.append(Content(""))
    lines.append(Content.styled(f"{n['create']} to create, {n['update']} to update, {n['unchanged']} unchanged, "
                                f"{n['conflict']} conflict(s)", "bold"))
    return Content("\n").join(lines)


def _short(v: object) -> str:
    s = "(none)" if v is None else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def plan_notes(plan: Plan, demo_ports: dict[str, int] | None) -> list[str]:
    """The plan's non-fatal advice, in the wizard's words (steps, not plan-file keys)."""
    out = []
    for vs in plan.virtual_server:
        usual = ROLE_PORTS[vs.role]
        if vs.port != usual and not (demo_ports and demo_ports.get(vs.role) == vs.port):
            out.append(f"{vs.name} listens on {vs.port}, not the {vs.role} role's usual {usual}: give Butterfly "
                       f"Cloud {vs.port} (step Virtual server).")
    if plan.policy.warning:
        out.append(f"Cipher policy {plan.policy.name}: {plan.policy.warning}")
    if plan.netscaler and plan.netscaler.url.startswith("http://"):
        out.append("The NITRO URL uses http://: the NetScaler password crosses the network in clear text (step Start).")
    return out


def plan_summary(plan: Plan, show_path: Callable[[Path], str]) -> list[str]:
    """Everything the plan will hold, one line per part (the change list shows only what differs)."""
    c = plan.certificate
    lines = [f"Pair      {c.name}: {show_path(plan.cert_path)}" + (" (encrypted key)" if c.passphrase_env else ""),
             f"Ciphers   {plan.cipher_policy.name} ({plan.policy.name})"]
    for svc in plan.service:
        lines.append(f"PACS      {svc.name}: {svc.ae_title} at {svc.where}")
    for vs in plan.virtual_server:
        lines.append(f"{vs.role.capitalize():<9} {vs.name} on {host_port(vs.ip, vs.port)} -> {vs.service}, "
                     f"calling AE {vs.calling_ae}")
        if plan.backend == "builtin":
            aes = ", ".join(vs.allowed_calling_aes) or "any"
            clients = ", ".join(vs.allowed_clients) or "any"
            lines.append(f"{'':<10}allowed calling AEs: {aes}; allowed clients: {clients}")
    return lines


class ReviewScreen(StepScreen):
    KEY = "review"
    TITLE = "Review: what will change (nothing is written yet)"
    INDEX = 5
    BINDINGS = [Binding("ctrl+r", "refresh", "Read again", id="refresh"), *JUMP_BINDINGS]

    def back_index(self) -> int:
        return CERTIFICATES if self.state.renewal else self.INDEX - 1

    def compose_body(self) -> ComposeResult:
        yield Static("", id="warnings", classes="warn")
        yield Static("", id="summary")
        yield Static("", id="diff")
        yield Static("", id="review-verdict")

    def on_mount(self) -> None:
        st = self.state
        try:
            plan = st.build_plan()
        except PlanError as err:
            self.query_one("#diff", Static).update(error_text("The setup is not complete:\n" +
                                                               "\n".join(f"  - {plan_problem(p)}" for p in err.items),
                                                               fix_text(err) + " (keys 1-5 jump to the steps)"))
            return
        warnings = self.query_one("#warnings", Static)
        notes = st.check_warnings() + plan_notes(plan, st.demo.ports if st.demo is not None else None)
        warnings.update(Content("\n".join(wrap_indent(f"! {w}", "  ") for w in notes)))
        warnings.display = bool(notes)
        summary = plan_summary(plan, st.show_path)
        self.query_one("#summary", Static).update(Content("\n".join(
            ["The plan:", *(wrap_indent(line, "  ", hang=" " * 12) for line in summary), ""])))
        if st.diff is not None and st.diff_for == dump_plan(plan):
            self.show_diff(st.diff)
        else:
            self.action_refresh()

    def action_refresh(self) -> None:
        self._read()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _read(self) -> None:
        st = self.state
        plan = st.build_plan()
        self.query_one("#diff", Static).update("Reading the current state…")

        def diff_now() -> Diff:
            backend = self.services.backend(plan, BackendOptions(password=st.password, passphrase=st.passphrase,
                                                                    replace_cert=st.renewal))
            try:
                return backend.diff(plan)
            finally:
                backend.close()

        diff = await self.guarded(f"Reading the {st.backend} backend", diff_now)
        if diff is None:
            self.query_one("#diff", Static).update("Could not read the backend; ctrl+r tries again.")
            return
        st.diff, st.diff_for = diff, dump_plan(plan)
        self.show_diff(diff)

    def show_diff(self, diff: Diff) -> None:
        self.query_one("#diff", Static).update(diff_text(diff))
        v = self.query_one("#review-verdict", Static)
        if diff.conflicts:
            v.update(error_text(f"{len(diff.conflicts)} conflict(s): nothing can be applied until they are resolved.",
                                "go Back to the step that names the object, or change it on the backend"))
            v.set_classes("error")
        elif diff.is_noop:
            v.update("Nothing to change: the backend already matches. ctrl+n saves the plan and goes on.")
            v.set_classes("ok")
        else:
            v.update(f"ctrl+n asks once more, then applies these {len(diff.writes)} change(s).")
            v.set_classes("")

    async def commit(self) -> bool:
        st = self.state
        plan = st.try_plan()
        if plan is None or st.diff is None or st.diff_for != dump_plan(plan):
            self.status("The change list is not ready yet; wait for it, or press ctrl+r.", "warn")
            return False
        diff: Diff = st.diff
        if diff.conflicts:
            self.status("Resolve the conflicts first (see above).", "error")
            return False
        if diff.is_noop:
            return True
        key = await self.app.push_screen_wait(ChoiceModal(
            f"Apply {len(diff.writes)} change(s) on {diff.target}?\nThe plan is saved to "
            f"{st.show_path(st.plan_path)} when they succeed.",
            [("y", "Apply"), ("n", "Not yet")], title="Confirm"))
        return key == "y"
