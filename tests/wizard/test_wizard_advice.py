"""The engine's advice on the wizard's screens, in the wizard's words (its steps, fields and keys):
never a command-line option or a plan-file key. Real parts: the demo PACS, the pair check, the
built-in backend's diff against a port another program holds."""

from __future__ import annotations

import re
import socket

from test_wizard_flow import demo_state
from test_wizard_validation import type_into
from wizard_helpers import on_step, pilot_test, screen_text, text_of, until

from wizard.app import WizardApp

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
PLAN_WORDS = re.compile(r"\[\[?\w+\]\]?|\b(certificate|service|virtual_server|netscaler)\.\w+|\bae_title\b")


def words(app, selector: str) -> str:
    return " ".join(text_of(app, selector).split())


def assert_wizard_words(text: str) -> None:
    assert not OPTION.search(text), text
    assert not PLAN_WORDS.search(text), text


@pilot_test
async def test_a_rejected_called_ae_names_the_pacs_step_s_field(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        app.goto(2)
        await until(pilot, on_step(app, 2))
        await type_into(pilot, app, "svc-ae", "NOT-THE-PACS")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.state.pacs_report is not None and on_step(app, 2)(), what="the echo")
        result = words(app, "#pacs-result")
        assert "'NOT-THE-PACS'" in result
        assert "fix: enter the PACS's own AE title on the PACS step (ask its administrator)" in result
        rung = words(app, "#rung-associate")
        assert "do: enter the PACS's own AE title on the PACS step" in rung
        assert_wizard_words(result + rung)
        assert_wizard_words(screen_text(app))


@pilot_test
async def test_a_swapped_pair_says_which_field_gets_which_file(demo_builtin) -> None:
    demo = demo_builtin
    app = WizardApp(demo_state(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        app.goto(1)
        await until(pilot, on_step(app, 1))
        await type_into(pilot, app, "cert", str(demo.key))
        await type_into(pilot, app, "key", str(demo.cert))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "swap them" in words(app, "#pem-result"), what="the pair check's advice")
        result = words(app, "#pem-result")
        assert "the Certificate field gets" in result and "the Private key field" in result
        assert "CERT=" not in result and "KEY=" not in result
        assert_wizard_words(result)


@pilot_test
async def test_a_port_in_use_is_fixed_on_the_virtual_server_step(demo_builtin) -> None:
    """Another program holds the store port: the diff's conflict, in the wizard's words."""
    demo = demo_builtin
    app = WizardApp(demo_state(demo))
    with socket.socket() as held:
        held.bind(("127.0.0.1", demo.ports["store"]))
        held.listen()
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            app.goto(4)
            await until(pilot, on_step(app, 4))
            await pilot.press("ctrl+n")
            await until(pilot, lambda: "in use by another program" in " ".join(screen_text(app).split()),
                        what="the conflict")
            assert app.index == 4
            text = " ".join(screen_text(app).split())
            assert "give another Port on the Virtual server step" in text, text
            assert_wizard_words(text)
