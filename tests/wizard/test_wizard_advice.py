"""The engine's advice on the wizard's screens, in the wizard's words (its steps, fields and keys):
never a command-line option or a plan-file key. Real parts: the demo PACS, the pair check, the
built-in backend's diff against a port another program holds."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dicomtls.engine.backends.netscaler.client import normalize_fingerprint
from dicomtls.engine.plan import NetScaler
from dicomtls.wizard.app import WizardApp
from tests.support.words import OPTION, PLAN_KEYS, cli_words
from tests.wizard.wizard_helpers import demo_state, modal_open, on_step, pilot_test, screen_text, text_of, type_into, until

WIZARD = Path(__file__).resolve().parents[2] / "wizard"
# app.py's own command line (--demo, --fresh) and the runbook, a document of CLI commands for later, are the
# two places where the wizard speaks of the command line on purpose.
ON_SCREEN = sorted(str(p.relative_to(WIZARD)) for p in WIZARD.rglob("*.py") if p.name not in ("app.py", "runbook.py"))


def words(app, selector: str) -> str:
    return " ".join(text_of(app, selector).split())


def assert_wizard_words(text: str) -> None:
    assert not OPTION.search(text), text
    assert not [p.pattern for p in PLAN_KEYS if p.search(text)], text


@pytest.mark.parametrize("module", ON_SCREEN)
def test_the_wizard_s_own_words_name_no_option_and_no_plan_key(module) -> None:
    assert cli_words(WIZARD / module) == []


@pilot_test
async def test_a_changed_management_certificate_asks_before_pinning_the_new_one(demo_netscaler) -> None:
    """The pinned fingerprint is not the ADC's any more: the Start step says both, connects only if the
    operator pins the new one, and never tells them to edit the plan file."""
    state = demo_state(demo_netscaler)
    state.netscaler = NetScaler.model_validate({**state.netscaler.model_dump(), "fingerprint": "ab" * 32})
    old = state.netscaler.fingerprint
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: modal_open(app), 20, "the question")
        question = " ".join(screen_text(app).split())
        assert "changed" in question and "ab:ab" in question.lower()
        assert_wizard_words(question)
        await pilot.press("n")
        await until(pilot, lambda: "Not connected" in text_of(app, "#ns-result"), 5, "the refusal")
        assert state.netscaler.fingerprint == old and not state.nitro_ok
        await pilot.press("ctrl+t")
        await until(pilot, lambda: modal_open(app), 20, "the question again")
        await pilot.press("y")
        await until(pilot, lambda: "✓ Connected" in text_of(app, "#ns-result"), 20, "the login")
        assert normalize_fingerprint(state.netscaler.fingerprint) == normalize_fingerprint(demo_netscaler.nitro.fingerprint)


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


BAD_SETUPS = {  # a plan's parts that do not fit together, and the step and field the wizard must name
    "two virtual servers on one port": (
        lambda d: d["virtual_server"].append({**d["virtual_server"][0], "name": "MWL", "role": "worklist"}),
        "Port on the Virtual server step (virtual server 2)"),
    "a name used twice": (lambda d: d["service"].append(dict(d["service"][0])), "Name on the PACS step"),
    "a NetScaler VIP of 0.0.0.0": (
        lambda d: d.update(backend="netscaler", netscaler={"url": "https://192.0.2.10", "username": "nsroot"}),
        "IP address on the Virtual server step"),
    "an AE title too long": (lambda d: d["service"][0].update(ae_title="Q" * 17), "AE title on the PACS step"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETUPS))
def test_a_setup_that_does_not_fit_together_names_the_step_and_field(demo_builtin, case) -> None:
    """The Plan's own cross-checks (engine.plan_errors) come with the key they are at; the wizard says the step
    and field instead, with the engine's reason, and no plan key."""
    from dicomtls.engine.plan_errors import PlanError
    from dicomtls.wizard.advice import fix_text, plan_problem

    state = demo_state(demo_builtin)
    data = state.plan_data()
    data["virtual_server"][0]["ip"] = "0.0.0.0"
    change, where = BAD_SETUPS[case]
    change(data)
    state.plan_data = lambda: data  # the parts as the screens would hand them over
    with pytest.raises(PlanError) as info:
        state.build_plan()
    said = [plan_problem(p) for p in info.value.items]
    assert any(line.startswith(where) for line in said), said
    for line in said + [fix_text(info.value)]:
        assert_wizard_words(line)
