"""How the wizard behaves: Back keeps everything, quitting asks first, too-small terminals get a
message, keys that survive SSH and tmux, themes, cancel."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from textual.widgets import Input

from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Service, load_plan
from dicomtls.wizard import app as wizard_app
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.screens import STEPS
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import modal_open, on_step, pilot_test, screen_text, text_of, until


def fresh_state(home: Path) -> WizardState:
    return WizardState(plan_path=home / "dicomtls" / "config" / "plan.toml")


@pilot_test
async def test_back_and_next_lose_nothing(home, butterfly_pair) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 1))
        await pilot.press("ctrl+n")  # the found pair is checked, then the PACS step
        await until(pilot, on_step(app, 2))
        host = app.screen.query_one("#svc-host", Input)
        host.focus()
        await pilot.press(*"10.0.0.999")  # not valid yet: Back must keep it anyway
        await pilot.press("ctrl+p")
        await until(pilot, on_step(app, 1))
        assert app.screen.query_one("#cert", Input).value == "~/Downloads/Butterfly_SCP_Cert.pem"
        assert "✓ The certificate and key match" in text_of(app, "#pem-result")  # the check is remembered
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 2))
        assert app.screen.query_one("#svc-host", Input).value == "10.0.0.999"
        app.screen.query_one("#svc-host", Input).value = "127.0.0.1"
        for fid, v in (("svc-port", "104"), ("svc-ae", "QLINK")):
            app.screen.query_one(f"#{fid}", Input).value = v
        await pilot.press("ctrl+n")  # nothing listens there: the test fails, and Next asks
        await until(pilot, lambda: modal_open(app), what="the question")
        await pilot.press("y")
        await until(pilot, on_step(app, 3))
        await pilot.press("down", "down", "down")  # legacy
        assert "(●) Legacy" in screen_text(app)
        assert "TLS 1.0 and 1.1" in text_of(app, "#policy-warning")
        await pilot.press("ctrl+p")
        await until(pilot, on_step(app, 2))
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 3))
        assert "(●) Legacy" in screen_text(app)


@pilot_test
async def test_quit_asks_before_abandoning_unsaved_work(home) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        app.goto(2)
        await until(pilot, on_step(app, 2))
        app.screen.query_one("#svc-host", Input).focus()
        await pilot.press(*"pacs.example")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: modal_open(app), what="the question")
        assert "not saved" in screen_text(app)
        await pilot.press("n")
        await until(pilot, on_step(app, 2), what="back on the step")
        assert app.screen.query_one("#svc-host", Input).value == "pacs.example"
        await pilot.press("ctrl+q")
        await until(pilot, lambda: modal_open(app))
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="the exit")
    assert app.return_value == 1
    assert not (home / "dicomtls" / "config" / "plan.toml").exists()


@pilot_test
async def test_quit_without_changes_does_not_ask(home) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the exit")
    assert app.return_value == 0


@pilot_test
async def test_quit_can_save_the_plan(home) -> None:
    state = fresh_state(home)
    state.pacs_services = [Service(name="PACS", host="10.0.0.5", port=104, ae_title="QLINK")]
    state.service_name = "PACS"
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        app.goto(2)
        await until(pilot, on_step(app, 2))
        app.screen.query_one("#svc-ae", Input).focus()
        await pilot.press("backspace", "X")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: modal_open(app))
        assert "s: Save plan, quit" in screen_text(app)
        await pilot.press("s")
        await until(pilot, lambda: not app.is_running, what="the exit")
    saved = load_plan(home / "dicomtls" / "config" / "plan.toml")
    assert saved.service[0].host == "10.0.0.5"


@pilot_test
async def test_too_small_terminal_says_so(home) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(70, 20)) as pilot:
        await until(pilot, on_step(app, 0))
        text = screen_text(app)
        assert "The terminal is 70x20. The wizard needs at least 80x24" in " ".join(text.split())
        assert "Where is TLS terminated?" not in text
        await until(pilot, lambda: "^q Quit" in footer(app), what="the footer")
        assert "^n Next" not in footer(app)
        await pilot.press("ctrl+n")  # does nothing while the form cannot be seen
        assert app.index == 0
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: "Where is TLS terminated?" in screen_text(app), what="the form at 80x24")
        assert "needs at least" not in screen_text(app)
        await until(pilot, lambda: "^n Next" in footer(app), what="Next back in the footer")


def test_keys_survive_ssh_and_tmux() -> None:
    """No binding on keys terminals mangle: ctrl+enter, ctrl+h (backspace), ctrl+i (tab), ctrl+m/j
    (enter), ctrl+[ (escape), or the tmux prefix ctrl+b."""
    bad = {"ctrl+enter", "ctrl+h", "ctrl+i", "ctrl+m", "ctrl+j", "ctrl+left_square_bracket", "ctrl+b"}
    classes = [WizardApp, *STEPS]
    seen = []
    for cls in classes:
        for b in cls.BINDINGS:
            keys = b.key if hasattr(b, "key") else b[0]
            for k in keys.split(","):
                seen.append(k)
                assert k not in bad, f"{cls.__name__} binds {k}"
    assert {"ctrl+n", "ctrl+p", "ctrl+q"} <= set(seen)


@pilot_test
async def test_footer_shows_the_keys(home) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await until(pilot, lambda: "^q Quit" in footer(app), what="the footer")
        assert "^n Next" in footer(app) and "^p Back" not in footer(app)  # no Back on step 1
        app.goto(2)
        await until(pilot, lambda: "^t Test the PACS" in footer(app), what="the footer")
        assert "^p Back" in footer(app) and "^n Next" in footer(app)


def footer(app) -> str:
    return screen_text(app).rstrip().splitlines()[-1]


@pytest.mark.parametrize("theme", ["ansi-dark", "ansi-light"])
def test_ansi_themes(home, theme) -> None:
    async def go() -> None:
        app = WizardApp(fresh_state(home), theme=theme)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            assert app.theme == theme and app.animation_level == "none"

    import asyncio

    asyncio.run(go())


def test_unknown_theme_is_a_user_error(home) -> None:
    with pytest.raises(UserError) as err:
        wizard_app.run(theme="no-such-theme")
    assert "ansi-dark" in err.value.fix


def test_backend_without_demo_is_a_user_error(home) -> None:
    with pytest.raises(UserError) as err:
        wizard_app.run(backend="netscaler")
    assert "--demo" in err.value.fix


@pilot_test
async def test_cancel_a_hanging_pacs_test(home) -> None:
    """A PACS that accepts TCP and then says nothing: the UI stays live and Esc cancels the test."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        state = fresh_state(home)
        state.pacs_services = [Service(name="PACS", host="127.0.0.1", port=port, ae_title="QLINK")]
        state.service_name = "PACS"
        app = WizardApp(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            app.goto(2)
            await until(pilot, on_step(app, 2))
            await pilot.press("ctrl+t")
            await until(pilot, lambda: app.screen.running, what="the test to start")
            await until(pilot, lambda: app.screen.query_one("#rung-tcp").has_class("-ok"), what="TCP connected")
            assert "Esc cancels" in text_of(app, "#status")
            await until(pilot, lambda: "esc Cancel" in footer(app), what="Esc in the footer")
            await pilot.press("escape")
            await until(pilot, lambda: not app.screen.running, 3, "the cancel")
            assert text_of(app, "#status") == "Cancelled."
            await pilot.press("ctrl+p")  # and the UI still answers
            await until(pilot, on_step(app, 1))
