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
