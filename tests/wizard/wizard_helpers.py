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


async def walk_to_review(pilot, app) -> None:
    """Steps 2-5 with ctrl+n; each step validates (pair check, PACS echo, conflicts) before moving on."""
    for i in range(1, 5):
        await until(pilot, on_step(app, i), what=f"step {i + 1}")
        await pilot.press("ctrl+n")
    await until(pilot, lambda: app.index == 5 and app.state.diff is not None, what="the change list")


async def connect_and_pin(pilot, app, key: str = "ctrl+n") -> None:
    """NetScaler, on Start: connect (ctrl+n goes on once connected, ctrl+t only connects) and pin the
    management certificate the first connection shows."""
    await until(pilot, on_step(app, 0))
    await pilot.press(key)
    await until(pilot, lambda: modal_open(app), what="the pinning question")
    await pilot.press("y")


async def pin_and_walk_to_review(pilot, app) -> None:
    """NetScaler: connect from Start, pin the management certificate, then steps 2-5 to the Review."""
    await connect_and_pin(pilot, app)
    await walk_to_review(pilot, app)


async def apply_echo_finish(pilot, app, state) -> None:
    await pilot.press("ctrl+n")
    await until(pilot, lambda: modal_open(app), what="the confirmation")
    assert "Apply" in screen_text(app)
    await pilot.press("y")
    await until(pilot, lambda: app.index == 6 and state.apply_result is not None, 60, "apply")
    assert state.apply_result.ok, screen_text(app)
    assert "Saved the plan" in text_of(app, "#apply-result")
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.index == 7 and state.echo_report is not None, 30, "the echo ladder")
    await until(pilot, lambda: app.screen.query_one("#echo-result").has_class("ok"), 5, "a green result")
    rungs = [s.name for s in state.echo_report.steps]
    if state.role == "worklist":  # the worklist pass also proves the worklist: the demo PACS's 3 steps
        assert rungs == ["resolve", "tcp", "tls", "associate", "echo", "worklist", "release"]
        assert state.echo_report.worklist.count == 3
        assert "3 scheduled procedure steps found through TLS" in text_of(app, "#echo-result")
        assert "DEMO-ACC-0001" in text_of(app, "#echo-result") and "Fictitious" not in screen_text(app)
    else:
        assert rungs == ["resolve", "tcp", "tls", "associate", "echo", "release"]
    assert all(s.ok for s in state.echo_report.steps)
    assert state.echo_report.calling_ae == "BUTTERFLY"
    assert all(w.has_class("-ok") for w in app.screen.query(".rung")), screen_text(app)


async def retry_completes(pilot, app, state, demo, failed) -> None:
    """ctrl+r after a failed apply: it succeeds, the plan is saved, and the echo goes green."""
    await pilot.press("ctrl+r")
    await until(pilot, lambda: state.apply_result is not failed and state.apply_result is not None, 60, "retry")
    assert state.apply_result.ok, text_of(app, "#apply-result")
    assert demo.plan_path.exists()
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.index == 7 and state.echo_report is not None, 30, "the echo ladder")
    assert state.echo_report.ok
