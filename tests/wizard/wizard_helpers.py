"""Helpers for the wizard's Pilot tests."""

from __future__ import annotations

import asyncio
import functools
import io
import time
from typing import Any, Callable

from rich.console import Console


def pilot_test(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test function on a fresh event loop (keeps pytest fixtures working)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def screen_text(app: Any) -> str:
    """What a person sees: the current screen as plain text (for asserts and failure messages)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll the UI until predicate() is true; fail with the screen's text after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.02)
        try:
            if predicate():
                return
        except Exception:  # a widget not mounted yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}:\n{screen_text(pilot.app)}")


def on_step(app: Any, index: int) -> Callable[[], bool]:
    """Predicate: step `index` is showing and idle (no worker of its own running)."""

    def check() -> bool:
        s = app.screen
        return getattr(app, "index", -1) == index and getattr(s, "INDEX", -1) == index and not s.running \
            and s.is_mounted

    return check


def modal_open(app: Any) -> bool:
    return type(app.screen).__name__ == "ChoiceModal"


def text_of(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).content)


def demo_state(demo: Any) -> Any:
    """A wizard state pre-filled from a demo's starting plan, as `dicomtls --demo` makes it."""
    from dicomtls.wizard.state import WizardState

    state = WizardState(plan_path=demo.plan_path)
    state.load(demo.plan())
    state.demo = demo
    return state


async def type_into(pilot: Any, app: Any, input_id: str, text: str) -> None:
    """Focus the field, clear it and type: long texts are set up to the last character, which is
    typed (pressing every key of a long temp path only makes the test slow)."""
    from textual.widgets import Input

    inp = app.screen.query_one(f"#{input_id}", Input)
    inp.focus()
    inp.value = text[:-12]
    inp.cursor_position = len(inp.value)
    await pilot.press(*text[-12:]) if text else await pilot.pause()


def apply_and_save(demo: Any) -> Any:
    """The store port applied and saved through the engine, as a first wizard run leaves it; returns
    the saved plan as loaded back."""
    from dicomtls.engine.backends import BackendOptions, get_backend
    from dicomtls.engine.plan import load_plan, save_plan

    plan = demo.plan()
    if plan.backend == "netscaler":
        plan.netscaler.fingerprint = demo.nitro.fingerprint
    backend = get_backend(plan, BackendOptions(password=demo.nitro.password if demo.nitro else None))
    try:
        result = backend.apply(plan)
    finally:
        backend.close()
    assert result.ok, result
    save_plan(plan, demo.plan_path)
    return load_plan(demo.plan_path)


def apply_with_the_engine(demo: Any) -> Any:
    """apply_and_save, then a wizard state loaded from the saved plan with the demo attached (and, on
    NetScaler, the demo's stand-in data plane started)."""
    from dicomtls.wizard.state import WizardState

    plan = apply_and_save(demo)
    if plan.backend == "netscaler":
        demo.after_apply(plan)
    state = WizardState.from_plan_file(demo.plan_path)
    state.demo = demo
    return state
