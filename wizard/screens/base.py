"""What every step screen shares: the frame (step bar, scrolling body, footer), drafts that survive
Back, Next that validates first, and a way to run blocking engine calls in thread workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Input, RadioSet, Static
from textual.worker import WorkerCancelled, WorkerFailed

from engine.errors import UserError
from wizard.advice import fix_text
from wizard.widgets import FormField, StepBar

if TYPE_CHECKING:
    from wizard.app import WizardApp
    from wizard.services import Services
    from wizard.state import WizardState

T = TypeVar("T")


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

    # --- shortcuts -------------------------------------------------------------------------------
    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

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
        """An edited field's old error no longer applies; Next checks it again."""
        if event.input.id in self.LIVE_FIELDS:
            return  # the screen checks this one as it is typed
        field = next((a for a in event.input.ancestors if isinstance(a, FormField)), None)
        if field is not None and field.has_class("-error"):
            field.set_error(None)

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
    def val(self, widget_id: str, default: Any) -> Any:
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
        try:
            result = fn(self.value(input_id))
        except ValueError as exc:
            f = self.field(input_id)
            f.set_error(f"{f.label} {_sentence(exc)}")
            return None
        self.field(input_id).set_error(None)
        return result

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
