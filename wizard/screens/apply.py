"""Step 7: make the reviewed changes, one step at a time, with a live line and a log.

A failure shows the backend's message and its fix, and ctrl+r retries (apply is idempotent: the
retry does only what is still missing). On success the plan is saved.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static
from textual.worker import get_current_worker

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.base import ApplyResult, Progress
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import dump_plan
from dicomtls.wizard import target_facts
from dicomtls.wizard.advice import fix_text
from dicomtls.wizard.messages import ApplyDone, ApplyProgress
from dicomtls.wizard.screens.base import StepScreen, error_text, tidy
from dicomtls.wizard.widgets import wrap_indent

MARK = {"start": "…", "done": "✓", "failed": "✗", "info": "·"}


class Cancelled(Exception):
    pass


def made_text(diff: Any, result: ApplyResult) -> str:
    """What apply did, counted as Review counted it (changes to objects), else by its steps."""
    if diff is not None:
        n = diff.counts()
        if not diff.writes:
            return "nothing needed changing"
        parts = [f"{n[k]} {word}" for k, word in (("create", "created"), ("update", "updated")) if n[k]]
        return f"the {len(diff.writes)} change(s) from Review ({', '.join(parts)})"
    return f"{len(result.done)} step(s) completed"


class ApplyScreen(StepScreen):
    KEY = "apply"
    TITLE = "Apply: making the changes"
    INDEX = 6
    BINDINGS = [Binding("ctrl+r", "retry", "Retry", id="retry")]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="apply-status")
        with VerticalScroll(id="apply-log"):  # a plain wrapped text that follows its end, like a log
            yield Static("", id="apply-log-text")
        yield Static("", id="apply-result")

    def on_mount(self) -> None:
        st = self.state
        plan = st.try_plan()
        if plan is not None and st.applied_for == dump_plan(plan) and st.apply_result is not None:
            self._show_log()
            self._finish(st.apply_result, st.draft(self.KEY).get("saved", ""), st.draft(self.KEY).get("note", ""))
        else:
            self.start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            r = self.state.apply_result
            return not self.running and r is not None and not r.ok
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        if not self.running:
            self.start()

    def start(self) -> None:
        self.state.draft(self.KEY)["log"] = []
        self._show_log()
        self.running = True
        self.refresh_bindings()
        self.query_one("#apply-result", Static).update("")
        self.query_one("#apply-status", Static).update("Starting…")
        self._apply()

    @work(thread=True, exclusive=True, group="apply", exit_on_error=False)
    def _apply(self) -> None:
        st = self.state
        worker = get_current_worker()
        plan = st.build_plan()

        messages: list[str] = []

        def progress(p: Progress) -> None:
            if worker.is_cancelled:
                raise Cancelled()  # stops between steps; a later run completes the rest
            messages.append(p.message)
            self.post_message(ApplyProgress(p))

        saved, note = "", ""
        diff = None
        try:
            backend = self.services.backend(plan, BackendOptions(password=st.password, passphrase=st.passphrase,
                                                                    replace_cert=st.renewal))
            try:
                diff = st.diff if st.diff is not None and st.diff_for == dump_plan(plan) else backend.diff(plan)
                result = backend.apply(plan, diff, progress)
            finally:
                backend.close()
            if result.ok:
                saved = str(st.save())
                if st.demo is not None:
                    note = st.demo.after_apply(plan) or ""
                elif plan.backend == "builtin" and any(m.startswith("started pid") for m in messages):
                    note = (f"The terminator runs in the background. To keep it across reboots: "
                            f"sudo dicomtls install-service {st.show_path(saved)}")
        except Cancelled:
            result = ApplyResult(ok=False, error="cancelled between steps",
                                 fix="ctrl+r runs apply again; it does only what is still missing")
        except UserError as exc:
            result = ApplyResult(ok=False, error=exc.problem, fix=exc.fix, advice=exc.advice)
        except Exception as exc:  # unexpected: say it, keep the traceback in the log file
            import logging

            logging.getLogger("dicomtls.wizard").exception("apply failed")
            result = ApplyResult(ok=False, error=f"{type(exc).__name__}: {exc}", fix="see the log file; ctrl+r retries")
        self.post_message(ApplyDone(result, saved, note, diff))

    def on_apply_progress(self, message: ApplyProgress) -> None:
        p = message.progress
        line = tidy(f"{MARK.get(p.state, '·')} {p.step}" + (f": {p.message}" if p.message else ""))
        self.query_one("#apply-status", Static).update(Content(line))
        if p.state != "start":
            self.state.draft(self.KEY).setdefault("log", []).append(line)
            self._show_log()

    def _show_log(self) -> None:
        lines = self.state.draft(self.KEY).get("log", [])
        self.query_one("#apply-log-text", Static).update(Content("\n".join(wrap_indent(x, "", 74) for x in lines)))
        self.query_one("#apply-log", VerticalScroll).scroll_end(animate=False)

    def on_apply_done(self, message: ApplyDone) -> None:
        self.running = False
        st = self.state
        st.apply_result = message.result
        if not message.result.ok:
            st.diff, st.diff_for = None, None  # part was done: a retry (or Review) reads the backend afresh
        if message.result.ok:
            st.applied_for = st.saved_text
            st.draft(self.KEY).update(saved=message.saved_to, note=message.note,
                                      made=made_text(message.diff, message.result))
        self._finish(message.result, message.saved_to, message.note)
        self.refresh_bindings()

    def _finish(self, result: ApplyResult, saved: str, note: str) -> None:
        status = self.query_one("#apply-status", Static)
        out = self.query_one("#apply-result", Static)
        if result.ok:
            made = self.state.draft(self.KEY).get("made") or made_text(None, result)
            status.update(Content.styled(f"✓ Done: {made}.", "bold"))
            status.set_classes("ok")
            text = f"Saved the plan to {self.state.show_path(saved)}." if saved else ""
            if note:
                text += f"\n{note}"
            if target_facts.sync_line(result):
                text += f"\n{target_facts.sync_line(result)}"
            out.update(Content(text + "\nctrl+n runs the echo test through the new TLS endpoint."))
            out.set_classes("")
        else:
            status.update(Content.styled("✗ Apply stopped.", "bold"))
            status.set_classes("error")
            parts = [error_text(result.error, fix_text(result))]
            if result.done:
                parts.append(Content("Done: " + ", ".join(result.done)))
            if result.not_done:
                parts.append(Content("Not done yet: " + ", ".join(result.not_done)))
            parts.append(Content("ctrl+r retries; ctrl+p goes back to change the setup."))
            out.update(Content("\n").join(parts))
            out.set_classes("error")

    async def commit(self) -> bool:
        r = self.state.apply_result
        if self.running:
            self.status("Still applying; wait, or Esc to stop between steps.", "warn")
            return False
        if r is None or not r.ok:
            self.status("Apply has not succeeded; ctrl+r retries.", "error")
            return False
        return True
