"""The wizard: nine screens in the guide's order, Back and Next, over one engine.

Keys (all pass through SSH and tmux; no ctrl+enter, no ctrl+h, nothing on the tmux prefix ctrl+b):
  ctrl+n Next   ctrl+p Back   ctrl+q Quit (asks before abandoning unsaved work)
  Tab / Shift+Tab move between fields; Enter presses a button; in a list, arrows move and
  Enter/Space picks (in the cipher list the highlighted policy is the choice); → accepts a path
  completion; PageUp/PageDown scroll a long page (the change list)
  ctrl+t the step's test or check, ctrl+g generate a test pair, ctrl+o add the worklist port,
  ctrl+r retry, ctrl+s save the runbook; y / n answer a question
  Esc cancels running work (and closes a question).

Over slow links (SSH to a jump host), an arrow key's escape sequence can arrive split and be read
as a lone Esc. Textual waits ESCDELAY milliseconds (default 100) for the rest of a sequence; raise
it if keys misfire, e.g. `ESCDELAY=300 dicomtls`. Other knobs: TEXTUAL_THEME / --theme ansi-dark or
ansi-light for terminals with poor colour, NO_COLOR=1, TEXTUAL_FPS=10 to cut traffic.

The layout is made for 80x24 and says so plainly when the terminal is smaller. Animations are off
and the cursor does not blink (both redraw the screen, which is traffic over SSH).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.theme import BUILTIN_THEMES

from dicomtls.engine import paths
from dicomtls.engine.errors import UserError
from dicomtls.wizard.advice import fix_text
from dicomtls.wizard.screens import STEPS
from dicomtls.wizard.screens.modals import ChoiceModal
from dicomtls.wizard.screens.start import StartScreen
from dicomtls.wizard.services import Services
from dicomtls.wizard.state import WizardState

if TYPE_CHECKING:
    from dicomtls.wizard.screens.base import StepScreen

log = logging.getLogger("dicomtls.wizard")

MIN_WIDTH, MIN_HEIGHT = 80, 24


class WizardApp(App[int], inherit_bindings=False):
    CSS_PATH = "app.tcss"
    TITLE = "dicomtls"
    ENABLE_COMMAND_PALETTE = False  # frees ctrl+p for Back; every action has a key in the footer
    BINDINGS = [
        Binding("ctrl+p", "back", "Back", id="back"),
        Binding("ctrl+n", "next", "Next", id="next"),
        Binding("ctrl+q", "quit_wizard", "Quit", id="quit", priority=True),
        Binding("ctrl+c", "help_quit", show=False, system=True),
        # Focus moves in the App's own queue, before the next key is handed to a field: a non-priority
        # Tab would move it only after bubbling up, and the keys typed after it would land in the old field.
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def __init__(self, state: WizardState, services: Services | None = None, *, theme: str | None = None) -> None:
        super().__init__()
        self.state = state
        self.services = services or Services()
        self.animation_level = "none"
        self.index = -1
        if theme:
            self.theme = theme

    # --- screens ---------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.state.mark_clean()
        if self.state.demo is not None:
            # A dropped SSH session sends SIGHUP, whose default ends the process without `finally`:
            # the demo's PACS and terminator would outlive it. Leave through the normal exit instead
            # (asyncio's handler wakes the loop; a plain signal.signal one would not).
            loop = asyncio.get_running_loop()
            for sig, code in ((signal.SIGHUP, 129), (signal.SIGTERM, 143)):
                loop.add_signal_handler(sig, self.exit, code)
        self.goto(0)

    def goto(self, index: int) -> StepScreen:
        """Show step `index` (a new screen, filled from the state and its drafts); returns it."""
        index = max(0, min(index, len(STEPS) - 1))
        current = self.step_screen
        if current is not None:
            current.store_draft()
            if index == self.index and current.INDEX == index:
                return current
        screen = STEPS[index]()
        first = self.index < 0
        self.index = index
        if first:
            self.push_screen(screen)
        else:
            self.switch_screen(screen)
        return screen

    def worklist_pass(self) -> None:
        """After the store pass: the short worklist pass in the same session, exactly as a re-run with
        the saved plan would go (Start's "add the worklist port"), keeping what is only in memory (the
        NITRO login, the key's passphrase, the demo) so nothing is asked twice."""
        old = self.state
        new = WizardState.from_plan_file(old.plan_path)
        for name in ("demo", "terminator", "password", "passphrase", "nitro_fingerprint", "nitro_ok",
                     "nitro_checked_for", "cipher_groups", "nitro_facts", "pem", "pem_checked_for"):
            setattr(new, name, getattr(old, name))
        self.state = new
        start = self.goto(0)
        assert isinstance(start, StartScreen)  # step 0
        start.call_after_refresh(start.action_add_worklist)

    @property
    def step_screen(self) -> StepScreen | None:
        from dicomtls.wizard.screens.base import StepScreen

        for s in reversed(self.screen_stack):
            if isinstance(s, StepScreen):
                return s
        return None

    def action_next(self) -> None:
        screen = self.step_screen
        if screen is not None and screen is self.screen:
            screen.request_next()

    async def action_back(self) -> None:  # async like the App action it overrides (Textual awaits either)
        screen = self.step_screen
        if screen is None or screen is not self.screen or self.index == 0:
            return
        if screen.running:
            screen.action_cancel()
        self.goto(screen.back_index())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("back", "next") and self.has_class("-too-small"):
            return False  # nothing moves while the form cannot be seen
        if action == "back":
            return self.index > 0
        return True

    # --- quitting --------------------------------------------------------------------------------
    async def action_quit_wizard(self) -> None:
        self._ask_quit()

    def _ask_quit(self) -> None:
        screen = self.step_screen
        problem = None
        if screen is not None:
            if screen.touched:
                self.state.touched = True
            screen.store_draft()
            problem = screen.collect()  # what is on screen is what would be saved, or why it cannot be
        if not self.state.dirty:
            self.exit(0)
            return
        if problem is None:
            try:
                self.state.build_plan()
            except UserError as err:
                problem = "; ".join(getattr(err, "problems", None) or [err.problem])
        can_save = problem is None

        def answer(key: str | None) -> None:
            if key == "y":
                self.exit(1, message="Quit without saving: nothing was written to the plan file.")
            elif key == "s":
                try:
                    path = self.state.save()
                except UserError as exc:
                    self.notify(f"{exc.problem}\n{fix_text(exc)}", severity="error")
                    return
                self.exit(1, message=f"Saved the plan (not applied) to {path}.")

        choices = [("s", "Save plan, quit")] if can_save else []
        choices += [("y", "Quit, abandon"), ("n", "Stay")]
        why = ("\nSaving writes the plan file only; nothing is applied." if can_save else
               f"\nIt cannot be saved as it is: {problem}.\nStay to correct it, or quit without saving.")
        self.push_screen(ChoiceModal("The setup has changes that are not saved. Quit anyway?" + why,
                                     choices, title="Quit"), answer)

    # --- terminal size ---------------------------------------------------------------------------
    def on_resize(self) -> None:
        self.check_size()

    def check_size(self) -> None:
        w, h = self.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        if small != self.has_class("-too-small"):
            self.set_class(small, "-too-small")
            self.refresh_bindings()
        screen = self.step_screen
        if not small and screen is not None and screen is self.screen:
            # Hiding the form (too small) took the focus away, and a resize may move it: give it back
            # to the field that had it, so the next keystrokes land where the user expects.
            self.call_after_refresh(screen.restore_focus)
        if small:
            from dicomtls.wizard.screens.base import TooSmall

            for t in self.screen.query(TooSmall):
                t.update(f"The terminal is {w}x{h}. The wizard needs at least {MIN_WIDTH}x{MIN_HEIGHT}: "
                         "enlarge the window or use a smaller font. (ctrl+q quits.)")


def run(plan_path: str | None = None, demo: bool = False, backend: str | None = None, theme: str | None = None,
        fresh: bool = False) -> int:
    """Start the wizard; returns the exit code for cli.main. Messages go to the terminal after it closes."""
    if theme and theme not in BUILTIN_THEMES:
        raise UserError(f"unknown theme {theme!r}", f"use one of: {', '.join(sorted(BUILTIN_THEMES))}")
    if fresh and not demo:
        raise UserError("--fresh only works with --demo", "add --demo to start the rehearsal over")
    if fresh and plan_path:
        raise UserError("--fresh empties the demo folder, and --plan names a plan outside it",
                        "drop --plan to start over in the demo folder, or drop --fresh to go on with that plan")
    demo_env = None
    if demo:
        from dicomtls.engine.demo import Demo
        from dicomtls.wizard.rehearsal import demo_state

        demo_env = Demo.start(backend or "builtin", plan_path=Path(plan_path) if plan_path else None, fresh=fresh)
        try:
            try:  # the demo's own log file, next to its plan and runbook
                from dicomtls.engine.logs import setup_file_logging

                setup_file_logging()
            except OSError:
                pass
            state = demo_state(demo_env)
        except BaseException:  # e.g. a saved plan that cannot be used: stop the PACS and simulator again
            demo_env.stop()
            raise
    else:
        if backend:
            raise UserError("--backend only works with --demo", "drop --backend: the wizard asks for the backend "
                            "on its first screen, or add --demo for a rehearsal")
        path = Path(plan_path).expanduser() if plan_path else paths.default_plan_path()
        state = WizardState.from_plan_file(path)
    app = WizardApp(state, theme=theme or os.environ.get("TEXTUAL_THEME") or None)
    try:
        code = app.run()
    finally:
        if demo_env is not None:
            demo_env.stop()
    if demo_env is not None:
        print(f"Demo files (plan, test pair, runbook, logs) are in {demo_env.home}; run the demo again to go "
              "on from this plan (e.g. add the worklist port), or with --fresh to start over.")
    if app.return_code:  # Textual's own failure (it has printed the traceback)
        return 70
    return int(code or 0)
