"""What every step screen shares: the frame (step bar, scrolling body, footer), drafts that survive
Back, Next that validates first, and a way to run blocking engine calls in thread workers."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Checkbox, Footer, Input, OptionList, RadioSet, Static
from textual.worker import WorkerCancelled, WorkerFailed

from dicomtls.engine.errors import UserError
from dicomtls.wizard.advice import fix_text
from dicomtls.wizard.screens.modals import ChoiceModal
from dicomtls.wizard.widgets import FormField, StepBar

if TYPE_CHECKING:
    from dicomtls.wizard.app import WizardApp
    from dicomtls.wizard.services import Services
    from dicomtls.wizard.state import WizardState

T = TypeVar("T")


# Screens without text fields (Review, Apply, Echo test) take a step's number to go straight back to
# the step to fix; one footer entry stands for all of them.
JUMP_BINDINGS = [Binding("1", "jump(0)", "Go to step", key_display="1-5", id="jump"),
                 *(Binding(str(n + 1), f"jump({n})", show=False) for n in range(1, 5))]


class TooSmall(Static):
    DEFAULT_CSS = "TooSmall { display: none; }"


class StepScreen(Screen[None]):
    """One step. Subclasses set KEY/TITLE and implement compose_body(), and may override commit()."""

    KEY = "step"
    LIVE_FIELDS: tuple[str, ...] = ()
    TITLE = "Step"
    INDEX = 0
    # Keys every terminal passes through SSH and tmux: ctrl+letter and Escape (see app.py on ESCDELAY).
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
    ]

    running: reactive[bool] = reactive(False, bindings=True)

    def __init__(self) -> None:
        super().__init__(id=f"screen-{self.KEY}")
        self._quiet = False  # checks while typing: no error lines, no focus moves
        self._problems: dict[str, str] = {}  # input id -> the problem a check found, as a sentence
        self._last_focus: Widget | None = None

    # --- shortcuts -------------------------------------------------------------------------------
    @property
    def wizard(self) -> WizardApp:
        from dicomtls.wizard.app import WizardApp  # here: app.py imports the screens

        app = self.app
        if not isinstance(app, WizardApp):
            raise TypeError(f"a step screen runs in the WizardApp, not in {type(app).__name__}")
        return app

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    @property
    def services(self) -> Services:
        return self.wizard.services

    # --- frame -----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StepBar(self.INDEX, id="stepbar")
        with VerticalScroll(id="body"):
            yield Static(Content.styled(self.TITLE, "bold"), id="title")
            yield from self.compose_body()
        yield Static("", id="status")
        yield TooSmall("", id="too-small")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # Textual also calls this for every subclass that has its own on_mount (after it): no super().
        self.wizard.check_size()
        # A steady cursor: blinking redraws twice a second, which is traffic over a slow SSH link
        # (and noise in snapshots).
        for inp in self.query(Input):
            inp.cursor_blink = False
        self.call_after_refresh(self._remember_initial)

    def on_input_changed(self, event: Input.Changed) -> None:
        """An edited field's old error no longer applies; Next checks it again. Every keystroke goes
        into the state at once, so saving, quitting or a hang-up see what is on the screen."""
        self.sync()
        if event.input.id in self.LIVE_FIELDS:
            return  # the screen checks this one as it is typed
        field = next((a for a in event.input.ancestors if isinstance(a, FormField)), None)
        if field is not None and field.has_class("-error"):
            field.set_error(None)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.sync()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.call_after_refresh(self.sync)  # after the screen's own handler has taken the choice

    def sync(self) -> None:
        """The screen's fields into the state (drafts as typed, and the plan's parts where they are
        valid), then show each result against the new values."""
        if not self.is_mounted:
            return
        self.store_draft()
        self.collect(quiet=True)
        self.show_results()

    def show_results(self) -> None:
        """Redraw the step's check results for the values now on screen (stale ones marked)."""

    def collect(self, *, quiet: bool = False) -> str | None:
        """Check this step's fields (no network) and write them into the state. Returns None when
        they are written, else the first problem as a sentence naming the field. `quiet`: while
        typing, so no error lines and no focus moves."""
        return None

    def run_checks(self, quiet: bool, fn: Callable[[], T]) -> T:
        self.store_draft()  # a check's recorded inputs are read from the drafts: they must be current
        self._quiet, self._problems = quiet, {}
        try:
            return fn()
        finally:
            self._quiet = False

    async def continue_anyway(self, check: str, question: str, title: str, recorded: str) -> bool:
        """Ask once whether to go on past a failed check (Review and the runbook then say `recorded`)."""
        key = await self.app.push_screen_wait(ChoiceModal(
            f"{question} Continue anyway?", [("y", "Continue anyway"), ("n", "Stay and fix")], title=title))
        if key != "y":
            return False
        self.state.accept(check, recorded)
        return True

    def first_problem(self) -> str | None:
        return next(iter(self._problems.values()), None)

    # --- focus: always on a field, whatever happened (a resize, a modal, a worker, an error) -------
    def on_descendant_focus(self, event: Any) -> None:
        self._last_focus = event.widget

    def restore_focus(self) -> None:
        focused = self.app.focused
        if focused is not None and focused.screen is self and focused.display and focused.is_attached:
            return
        last = self._last_focus
        if last is not None and last.is_attached and last.focusable and last.visible:
            last.focus()
            return
        self.focus_first()

    def focus_first(self) -> None:
        """The first empty text field, else the first field: where typing is expected."""
        inputs = [i for i in self.query(Input) if i.focusable and i.display and i.parent and i.parent.display]
        target = next((i for i in inputs if not i.value), inputs[0] if inputs else None)
        if target is not None:
            target.focus()
        else:
            self.focus_next()

    def on_resize(self) -> None:
        self.wizard.check_size()

    def _remember_initial(self) -> None:
        self._initial = self._values()

    def _values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for inp in self.query(Input):
            out[f"i:{inp.id}"] = inp.value
        for rs in self.query(RadioSet):
            out[f"r:{rs.id}"] = rs.pressed_index
        return out

    @property
    def touched(self) -> bool:
        """Did the user change a field on this screen since it opened?"""
        initial = getattr(self, "_initial", None)
        return initial is not None and self._values() != initial

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running
        return True


    # --- drafts: nothing typed is lost going Back ----------------------------------------------------
    def draft_value(self, widget_id: str, default: Any) -> Any:
        return self.state.draft(self.KEY).get(widget_id, default)

    def store_draft(self) -> None:
        if self.touched:
            self.state.touched = True
        d = self.state.draft(self.KEY)
        for inp in self.query(Input):
            if inp.id and not inp.password:
                d[inp.id] = inp.value
        for rs in self.query(RadioSet):
            if rs.id and rs.pressed_index >= 0:
                d[rs.id] = rs.pressed_index
        for cb in self.query(Checkbox):
            if cb.id:
                d[cb.id] = cb.value

    def field(self, input_id: str) -> FormField:
        return self.query_one(f"#field-{input_id}", FormField)

    def value(self, input_id: str) -> str:
        return self.query_one(f"#{input_id}", Input).value.strip()

    def check(self, input_id: str, fn: Callable[[str], Any]) -> Any:
        """Run an engine check on a field; show its message under the field. Returns None if bad."""
        value = self.value(input_id)
        try:
            result = fn(value)
        except ValueError as exc:
            self.problem(input_id, _sentence(exc), value)
            return None
        if not self._quiet:
            self.field(input_id).set_error(None)
        return result

    def problem(self, input_id: str, sentence: str, value: str | None = None) -> None:
        """Record a field's problem; show it under the field and focus the first such field unless
        the user is typing."""
        f = self.field(input_id)
        shown = value if value is not None else self.value(input_id)
        self._problems.setdefault(input_id, f"{f.label} = {shown!r}: {sentence}" if shown else f"{f.label} {sentence}")
        if self._quiet:
            return
        f.set_error(f"{f.label} {sentence}")
        if len(self._problems) == 1:
            self.query_one(f"#{input_id}", Input).focus()

    def status(self, text: str | Content = "", kind: str = "") -> None:
        w = self.query_one("#status", Static)
        w.update(text if isinstance(text, Content) else Content(text))
        w.set_classes(kind)

    # --- navigation ------------------------------------------------------------------------------
    async def commit(self) -> bool:
        """Validate this step and write it into the state. False keeps the user here."""
        return True

    def next_index(self) -> int:
        return self.INDEX + 1

    def back_index(self) -> int:
        return self.INDEX - 1

    def request_next(self) -> None:
        if self.running:
            self.status("Still working; press Esc to cancel first.", "warn")
            return
        self._next()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _next(self) -> None:
        self.store_draft()
        if await self.commit():
            self.store_draft()
            self.wizard.goto(self.next_index())

    def action_jump(self, index: int) -> None:
        """Straight back to an earlier step (what was typed and checked is kept, as with Back)."""
        if index >= self.INDEX or self.has_class("-too-small"):
            return
        if self.running:
            self.action_cancel()
        self.wizard.goto(index)

    def action_cancel(self) -> None:
        cancelled = [w for w in self.workers if not w.is_finished]
        for w in cancelled:
            w.cancel()
        self.running = False
        if cancelled:
            self.status("Cancelled.", "warn")

    # --- blocking engine calls -------------------------------------------------------------------
    async def in_thread(self, fn: Callable[..., T], *args: Any, description: str = "", **kw: Any) -> T:
        """Run a blocking call in a thread worker and return its result (or raise its error)."""
        worker = self.run_worker(partial(fn, *args, **kw), thread=True, exit_on_error=False, group="io",
                                 description=description)
        try:
            return await worker.wait()
        except WorkerFailed as failed:
            raise failed.error from None

    async def guarded(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T | None:
        """in_thread, with the busy line while it runs and UserErrors shown as problem + fix."""
        self.running = True
        self.status(f"{what}…  (Esc cancels)", "busy")
        try:
            result = await self.in_thread(fn, *args, description=what, **kw)
        except WorkerCancelled:
            self.status("Cancelled.", "warn")
            return None
        except UserError as exc:
            self.status(error_text(exc.problem, fix_text(exc)), "error")
            return None
        except Exception as exc:  # a bug or an unexpected network error: say it plainly, log the rest
            self.log.error(repr(exc))
            import logging

            logging.getLogger("dicomtls.wizard").exception("%s failed", what)
            self.status(error_text(f"{what} failed: {type(exc).__name__}: {exc}",
                                   "see the log file for details"), "error")
            return None
        finally:
            self.running = False
            self.call_after_refresh(self.restore_focus)
        self.status("")
        return result


def error_text(problem: str, fix: str = "") -> Content:
    """A problem and its fix, as the engine phrased them (the home folder shown as ~)."""
    return Content.assemble(Content.styled("✗ ", "bold"), tidy(problem), *(["\n  fix: ", tidy(fix)] if fix else []))


def tidy(text: str) -> str:
    home = str(Path.home())
    return text.replace(home + "/", "~/") if home not in ("", "/") else text


def _sentence(exc: Exception) -> str:
    msg = str(exc)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg
