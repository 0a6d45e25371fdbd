"""Every result on screen belongs to what is on screen now (the wizard's trust contract).

- What is saved is what the screens show: save-and-quit on every step, both backends, the worklist pass.
- A check's result is cleared or marked out of date when one of its inputs changes.
- Next past a failed check asks once; Review lists what was accepted.
- The Butterfly watch does not count the wizard's own C-ECHO.
- Focus survives a resize; typing lands in the field that had it.
"""

from __future__ import annotations

import random

import pytest
from textual.widgets import Input, OptionList

from dicomtls.engine.plan import load_plan
from dicomtls.wizard.app import WizardApp
from tests.wizard.wizard_helpers import demo_state, modal_open, on_step, pilot_test, screen_text, text_of, type_into, until


async def open_step(pilot, app, index: int) -> None:
    await until(pilot, on_step(app, 0))
    app.goto(index)
    await until(pilot, on_step(app, index), what=f"step {index + 1}")


async def save_and_quit(pilot, app) -> None:
    await pilot.press("ctrl+q")
    await until(pilot, lambda: modal_open(app), what="the quit question")
    assert "s: Save plan, quit" in screen_text(app), screen_text(app)
    await pilot.press("s")
    await until(pilot, lambda: not app.is_running, what="the exit")


# --- 1. one source of truth ------------------------------------------------------------------------

EDITS = {  # step -> (field, typed value, how the saved plan shows it)
    1: ("cert-name", "Renamed-Pair", lambda p: p.certificate.name),
    2: ("svc-ae", "NEWAE", lambda p: p.service[0].ae_title),
    4: ("vs-port", "12799", lambda p: p.virtual_server[0].port),
}


@pytest.mark.parametrize("backend", ["builtin", "netscaler"])
@pytest.mark.parametrize("step", sorted(EDITS))
@pilot_test
async def test_save_and_quit_saves_the_field_on_screen(request, backend, step) -> None:
    demo = request.getfixturevalue(f"demo_{backend}")
    app = WizardApp(demo_state(demo))
    field, typed, read = EDITS[step]
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, step)
        await type_into(pilot, app, field, typed)
        await save_and_quit(pilot, app)
    assert str(read(load_plan(demo.plan_path))) == typed


@pytest.mark.parametrize("backend", ["builtin", "netscaler"])
@pilot_test
async def test_save_and_quit_saves_the_cipher_policy_on_screen(request, backend) -> None:
    demo = request.getfixturevalue(f"demo_{backend}")
    app = WizardApp(demo_state(demo))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 3)
        before = app.state.cipher_policy.profile
        await pilot.press("down")
        chosen = app.screen.query_one("#policy", OptionList).highlighted_option.id
        assert chosen != before
        await save_and_quit(pilot, app)
    assert load_plan(demo.plan_path).cipher_policy.profile == chosen


@pilot_test
async def test_save_and_quit_on_the_netscaler_start_screen_keeps_the_user(demo_netscaler) -> None:
    app = WizardApp(demo_state(demo_netscaler))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await type_into(pilot, app, "ns-user", "dicomadmin")
        await save_and_quit(pilot, app)
    assert load_plan(demo_netscaler.plan_path).netscaler.username == "dicomadmin"


@pytest.mark.parametrize("backend", ["builtin", "netscaler"])
@pilot_test
async def test_the_worklist_pass_saves_its_virtual_server_as_typed(request, backend) -> None:
    """The case that was reported: a worklist port typed as 12762 was saved as 2762, or (NetScaler)
    the worklist [[virtual_server]] was not saved at all."""
    demo = request.getfixturevalue(f"demo_{backend}")
    state = demo_state(demo)
    state.role = "worklist"
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        await type_into(pilot, app, "vs-port", "12765")
        await save_and_quit(pilot, app)
    saved = {v.role: v.port for v in load_plan(demo.plan_path).virtual_server}
    assert saved == {"store": demo.ports["store"], "worklist": 12765}


@pilot_test
async def test_a_field_that_cannot_be_saved_is_named_and_nothing_is_saved(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        await type_into(pilot, app, "vs-port", "99999")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: modal_open(app))
        assert "Save plan" not in screen_text(app)
        shown = " ".join(text_of(app, ".question").split())
        assert "Port = '99999'" in shown, shown
        await pilot.press("n")
        await until(pilot, on_step(app, 4))
        assert app.screen.query_one("#vs-port", Input).value == "99999"  # nothing typed is lost
    assert not demo_builtin.plan_path.exists()


# --- 2. results carry their inputs ------------------------------------------------------------------

@pilot_test
async def test_pacs_result_goes_out_of_date_when_the_host_changes(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.query_one("#pacs-result").has_class("ok"), 20, "a green test")
        await type_into(pilot, app, "svc-host", "10.0.0.300")
        await until(pilot, lambda: "out of date" in text_of(app, "#pacs-result"), 5, "the stale mark")
        shown = text_of(app, "#pacs-result")
        assert "✓" not in shown and "Host or IP changed" in shown and "ctrl+t" in shown
        assert not app.screen.query_one("#pacs-ladder").display
        await type_into(pilot, app, "svc-host", "127.0.0.1")  # back to what was tested: the result holds again
        await until(pilot, lambda: app.screen.query_one("#pacs-result").has_class("ok"), 5)


@pilot_test
async def test_pacs_result_goes_out_of_date_when_the_calling_ae_changes(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.query_one("#pacs-result").has_class("ok"), 20, "a green test")
        app.goto(4)
        await until(pilot, on_step(app, 4))
        await type_into(pilot, app, "vs-calling", "OTHERAE")
        app.goto(2)
        await until(pilot, on_step(app, 2))
        shown = text_of(app, "#pacs-result")
        assert "out of date" in shown and "Calling AE changed" in shown and "✓" not in shown


@pilot_test
async def test_pem_result_goes_out_of_date_when_a_path_changes(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "✓ The certificate and key match" in text_of(app, "#pem-result"), 20)
        await type_into(pilot, app, "cert", "")
        await until(pilot, lambda: "out of date" in text_of(app, "#pem-result"), 5, "the stale mark")
        assert "✓" not in text_of(app, "#pem-result") and "Certificate changed" in text_of(app, "#pem-result")


# --- 3. a failed check is a decision -----------------------------------------------------------------

@pilot_test
async def test_next_after_a_failed_pacs_echo_asks_and_review_lists_it(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await type_into(pilot, app, "svc-ae", "WRONG-AE")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app), 20, "the question")
        asked = " ".join(text_of(app, ".question").split())
        assert "The PACS did not answer the C-ECHO" in asked and "Continue anyway?" in asked
        await pilot.press("n")
        await until(pilot, on_step(app, 2))
        await pilot.press("ctrl+n")  # asked again: a 'no' is not an answer for later
        await until(pilot, lambda: modal_open(app), 20)
        await pilot.press("y")
        await until(pilot, on_step(app, 3))
        app.goto(5)
        await until(pilot, lambda: app.index == 5 and "PACS" in text_of(app, "#warnings"), 20, "the review")
        warnings = " ".join(text_of(app, "#warnings").split())
        assert "C-ECHO" in warnings and "continued anyway" in warnings
    assert app.state.accepted_warnings()


# --- 4. the Butterfly watch --------------------------------------------------------------------------

@pilot_test
async def test_butterfly_watch_ignores_the_wizards_own_echo_and_reports_a_real_one(demo_builtin) -> None:
    from dicomtls.engine.verify import echo
    from tests.wizard.wizard_helpers import apply_with_the_engine

    demo = demo_builtin
    state = apply_with_the_engine(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 8)
        await until(pilot, lambda: "^t Test C-ECHO" in screen_text(app), what="the demo's key")
        await pilot.press("ctrl+t")  # the wizard's own test: a self-test, never "Butterfly is connected"
        await until(pilot, lambda: "self-test" in text_of(app, "#live"), 20, "the self-test line")
        assert not app.screen.query_one("#live").has_class("ok")
        assert "Butterfly is connected" not in text_of(app, "#live")
        vs = state.vserver
        rep = await app.screen.in_thread(echo, "127.0.0.1", vs.port, tls=True, insecure=True, calling_ae="BUTTERFLY",
                                         called_ae=state.service.ae_title, timeout=10.0)
        assert rep.ok, rep
        await until(pilot, lambda: app.screen.query_one("#live").has_class("ok"), 20, "the green line")
        live = text_of(app, "#live")
        assert "Butterfly is connected" in live and "from 127.0.0.1:" in live


# --- 5. focus ----------------------------------------------------------------------------------------

@pilot_test
async def test_focus_survives_a_resize_and_typing_lands_in_the_field(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        host = app.screen.query_one("#svc-host", Input)
        host.focus()
        await pilot.resize_terminal(70, 20)
        await until(pilot, lambda: app.has_class("-too-small"))
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: not app.has_class("-too-small"))
        await until(pilot, lambda: app.focused is host, 5, "focus back on the host field")
        before = host.value
        await pilot.press("end", "9")
        assert host.value == before + "9"


@pilot_test
async def test_focus_is_on_a_field_after_a_modal_closes(demo_builtin) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        await type_into(pilot, app, "vs-port", "1234")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: modal_open(app))
        await pilot.press("n")
        await until(pilot, on_step(app, 4))
        assert isinstance(app.focused, Input)
        await pilot.press("5")
        assert app.screen.query_one("#vs-port", Input).value == "12345"


# --- property: what is saved equals what the screens show ---------------------------------------------

FIELDS = {1: ["cert-name"], 2: ["svc-name", "svc-ae", "svc-port"], 4: ["vs-name", "vs-port", "vs-calling"]}
GOOD = {"cert-name": ["Pair-A", "Pair-B"], "svc-name": ["PACS-A", "PACS-B"], "svc-ae": ["AE-ONE", "AE-TWO"],
        "svc-port": ["104", "11112"], "vs-name": ["VS-A", "VS-B"], "vs-port": ["12801", "12802"],
        "vs-calling": ["CALL-A", "CALL-B"]}


def plan_fields(plan) -> dict[str, str]:
    svc, vs = plan.service[0], plan.virtual_server[0]
    return {"cert-name": plan.certificate.name, "svc-name": svc.name, "svc-ae": svc.ae_title,
            "svc-port": str(svc.port), "vs-name": vs.name, "vs-port": str(vs.port), "vs-calling": vs.calling_ae}


@pytest.mark.parametrize("seed", range(4))
@pilot_test
async def test_random_edits_and_moves_save_what_the_screens_show(demo_builtin, seed) -> None:
    rnd = random.Random(seed)
    state = demo_state(demo_builtin)
    app = WizardApp(state)
    shown: dict[str, str] = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        for _ in range(12):
            step = rnd.choice(sorted(FIELDS))
            app.goto(step)
            await until(pilot, on_step(app, step))
            for fid in FIELDS[step]:  # what the screen shows now, edited or not
                shown[fid] = app.screen.query_one(f"#{fid}", Input).value
            fid = rnd.choice(FIELDS[step])
            value = rnd.choice(GOOD[fid])
            await type_into(pilot, app, fid, value)
            shown[fid] = value
            if rnd.random() < 0.3:
                await pilot.resize_terminal(70, 20)
                await pilot.resize_terminal(80, 24)
        await save_and_quit(pilot, app)
    saved = plan_fields(load_plan(demo_builtin.plan_path))
    assert {k: saved[k] for k in shown} == shown


@pytest.mark.parametrize("field, typed, label", [("svc-port", "1", "Port"), ("svc-ae", "X", "AE title")])
@pilot_test
async def test_pacs_result_goes_out_of_date_for_each_of_its_inputs(demo_builtin, field, typed, label) -> None:
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.query_one("#pacs-result").has_class("ok"), 20, "a green test")
        inp = app.screen.query_one(f"#{field}", Input)
        inp.focus()
        await pilot.press("end", *typed)
        await until(pilot, lambda: f"{label} changed" in text_of(app, "#pacs-result"), 5, "the stale mark")
        assert "✓" not in text_of(app, "#pacs-result")
        app.goto(5)  # Review says it too
        await until(pilot, lambda: app.index == 5 and "out of date" in text_of(app, "#warnings"), 20)
        assert f"{label} changed" in text_of(app, "#warnings")


@pilot_test
async def test_nitro_login_goes_out_of_date_when_the_user_changes(demo_netscaler) -> None:
    app = WizardApp(demo_state(demo_netscaler))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: modal_open(app), 20, "the pinning question")
        await pilot.press("y")
        await until(pilot, lambda: "✓ Connected" in text_of(app, "#ns-result"), 20, "the login")
        await type_into(pilot, app, "ns-user", "someoneelse")
        await until(pilot, lambda: "out of date" in text_of(app, "#ns-result"), 5, "the stale mark")
        assert "User changed" in text_of(app, "#ns-result") and "✓" not in text_of(app, "#ns-result")


@pilot_test
async def test_a_key_that_is_not_encrypted_drops_the_passphrase(demo_builtin) -> None:
    state = demo_state(demo_builtin)
    state.certificate = state.certificate.model_copy(update={"passphrase_env": "DICOMTLS_KEY_PASSPHRASE"})
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        assert app.screen.query_one("#field-passphrase").display  # the plan said the key was encrypted
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "✓ The certificate and key match" in text_of(app, "#pem-result"), 20)
        assert not app.screen.query_one("#field-passphrase").display
        assert app.state.certificate.passphrase_env is None
        await save_and_quit(pilot, app)
    assert load_plan(demo_builtin.plan_path).certificate.passphrase_env is None


@pilot_test
async def test_the_runbook_records_a_skipped_check(demo_builtin) -> None:
    from tests.wizard.wizard_helpers import apply_with_the_engine

    state = apply_with_the_engine(demo_builtin)
    state.accept("pacs", "the PACS did not answer the plain C-ECHO")
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 8)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: state.runbook_path is not None and state.runbook_path.exists(), 20)
    text = state.runbook_path.read_text()
    assert "## Checks skipped or not passed" in text
    assert "The PACS did not answer the plain C-ECHO; you continued anyway" in text
    assert "The C-ECHO through TLS was not run for this setup" in text


def _burst(widget, keys: list[str]) -> None:
    """Keys as a terminal delivers a burst (a paste, a fast typist over SSH): all queued at once, none
    waiting for the one before to be handled."""
    from textual import events

    for key in keys:
        char = key if len(key) == 1 else ("\x7f" if key == "backspace" else None)
        widget.post_message(events.Key(key, char))


@pilot_test
async def test_a_burst_of_edits_and_characters_lands_in_order(demo_builtin) -> None:
    """Six backspaces then "12761" in one burst: the field holds 12761, the plan's port too. (Textual runs
    an Input's own bindings only after the key bubbled to the App, so the backspaces used to land after
    some of the characters: 12761 became 1276 or less.) End, then characters, in one burst as well."""
    app = WizardApp(demo_state(demo_builtin))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        port = app.screen.query_one("#vs-port", Input)
        port.focus()
        await pilot.pause()
        _burst(port, ["backspace"] * 6 + list("12761"))
        await until(pilot, lambda: port.value == "12761" or len(port.value) >= 5, 5, "the burst")
        await pilot.pause()
        assert port.value == "12761"
        assert app.state.vserver.port == 12761
        name = app.screen.query_one("#vs-name", Input)
        name.focus()
        await pilot.pause()
        _burst(name, ["home", *"X-", "end", *"-Y"])
        await until(pilot, lambda: name.value.endswith("-Y"), 5, "the second burst")
        await pilot.pause()
        assert name.value == "X-Butterfly-DICOM-TLS-Y"
