"""The whole wizard, keyboard only, at 80x24, against real parts: the demo PACS (pynetdicom), the
NITRO simulator over HTTPS, the built-in terminator. The echo screen must end green."""

from __future__ import annotations

import tomllib

from dicomtls.engine.plan import load_plan
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.state import WizardState
from dicomtls.wizard.widgets import RUNG_LABELS
from tests.wizard.wizard_helpers import (
    apply_and_save,
    apply_echo_finish,
    demo_state,
    modal_open,
    on_step,
    pilot_test,
    pin_and_walk_to_review,
    retry_completes,
    screen_text,
    text_of,
    until,
    walk_to_review,
)


@pilot_test
async def test_netscaler_demo_end_to_end(demo_netscaler) -> None:
    demo = demo_netscaler
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        assert "NITRO URL" in screen_text(app)
        await pilot.press("ctrl+n")  # connects: the management certificate is shown for pinning
        await until(pilot, lambda: modal_open(app), what="the pinning question")
        shown = screen_text(app)
        fp = demo.nitro.fingerprint.upper().removeprefix("SHA256:")
        assert fp[:47] in shown, shown  # the first 16 bytes, on one line of the question
        await pilot.press("y")
        await walk_to_review(pilot, app)
        diff = state.diff
        assert diff.backend == "netscaler" and not diff.conflicts
        listing = text_of(app, "#diff")
        assert "+ create    lbvserver Butterfly-DICOM-TLS" in listing
        assert "> add ssl certKey Butterfly-Cert-Key-Pair" in listing
        assert demo.nitro.state.writes == 0  # nothing is written before the confirmation
        await apply_echo_finish(pilot, app, state)
        assert demo.nitro.state.writes > 0
        assert "Butterfly-DICOM-TLS" in demo.nitro.state.lbvservers
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 8), what="the Butterfly screen")
        values = text_of(app, "#values")
        assert "TLS              Active" in values and "SCU calling AET  BUTTERFLY" in values
        assert f"Port             {demo.ports['store']}" in values and "SCP AET          DEMO-PACS" in values
        await pilot.press("ctrl+s")
        await until(pilot, lambda: state.runbook_path is not None and state.runbook_path.exists())
        await pilot.press("ctrl+n")
        await until(pilot, lambda: not app.is_running, what="the app to finish")
    assert app.return_code == 0
    saved = load_plan(demo.plan_path)
    assert saved.backend == "netscaler" and saved.netscaler is not None
    assert saved.netscaler.fingerprint and saved.netscaler.fingerprint.upper().endswith(fp[-20:])
    raw = tomllib.loads(demo.plan_path.read_text())
    assert "password" not in raw["netscaler"] and demo.nitro.password not in demo.plan_path.read_text()
    runbook = state.runbook_path.read_text()
    assert "| SCU calling AET | BUTTERFLY |" in runbook and "add ssl certKey" in runbook
    # The PACS saw the wizard's plain test and the echo through TLS, both calling as BUTTERFLY.
    assert demo.pacs.echoes.count("BUTTERFLY") >= 2


first_pass_with_the_engine = apply_and_save  # the store port set up and saved, as a first run leaves it


async def add_worklist_port(pilot, app, state, demo) -> None:
    """Re-run: Start offers the short path, which goes straight to the worklist virtual server."""
    await until(pilot, on_step(app, 0))
    start = screen_text(app)
    assert "Already set up" in start and f"store    Butterfly-DICOM-TLS on 127.0.0.1:{demo.ports['store']}" in start
    assert "Add the worklist port" in start
    await pilot.press("ctrl+o")
    await until(pilot, on_step(app, 4), what="the virtual server step, directly")
    form = {i.id: i.value for i in app.screen.query("Input")}
    assert form["vs-name"] == "Butterfly-DICOM-TLS-MWL" and form["vs-port"] == str(demo.ports["worklist"])
    assert form["vs-calling"] == "BUTTERFLY"
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.index == 5 and state.diff is not None, what="the change list")


@pilot_test
async def test_netscaler_rerun_adds_only_the_worklist_vserver(demo_netscaler) -> None:
    demo = demo_netscaler
    first_pass_with_the_engine(demo)
    writes_after_first = demo.nitro.state.writes
    state = WizardState.from_plan_file(demo.plan_path)
    state.demo = demo
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await add_worklist_port(pilot, app, state, demo)
        writes = state.diff.writes
        assert writes, "the worklist vserver is new"
        for c in writes:  # only the new vserver and its bindings, plus the final save
            assert "Butterfly-DICOM-TLS-MWL" in c.name or c.kind == "nsconfig", (c.kind, c.name, c.action)
        unchanged = {(c.kind, c.name) for c in state.diff.changes if c.action == "unchanged"}
        assert ("sslcertkey", "Butterfly-Cert-Key-Pair") in unchanged
        assert ("lbvserver", "Butterfly-DICOM-TLS") in unchanged
        assert demo.nitro.state.writes == writes_after_first
        await apply_echo_finish(pilot, app, state)
        assert state.echo_report.port == demo.ports["worklist"]
    saved = load_plan(demo.plan_path)
    assert sorted(v.role for v in saved.virtual_server) == ["store", "worklist"]
    assert set(demo.nitro.state.lbvservers) == {"Butterfly-DICOM-TLS", "Butterfly-DICOM-TLS-MWL"}


@pilot_test
async def test_builtin_demo_end_to_end(demo_builtin) -> None:
    """Built-in terminator: the real apply starts `dicomtls serve`; the echo goes through it to the
    pynetdicom PACS; Butterfly's C-ECHO (played by the demo) turns the live line green."""
    demo = demo_builtin
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+n")
        await walk_to_review(pilot, app)
        listing = text_of(app, "#diff")
        assert "+ create    listener Butterfly-DICOM-TLS" in listing
        assert "+ create    process dicomtls serve" in listing
        assert demo.serve_pid() is None  # nothing runs before the confirmation
        await apply_echo_finish(pilot, app, state)
        pid = demo.serve_pid()
        assert pid is not None and f"(pid {pid})" in state.drafts["apply"]["note"]
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 8), what="the Butterfly screen")
        assert "Waiting for Butterfly's C-ECHO (calling AE BUTTERFLY)" in text_of(app, "#live")
        await until(pilot, lambda: "^t Test C-ECHO" in screen_text(app), what="the demo's key")
        await pilot.press("ctrl+t")  # the wizard's own C-ECHO: shown as a self-test, never as Butterfly
        await until(pilot, lambda: "self-test" in text_of(app, "#live"), 20, "the self-test line")
        assert "reached the PACS" in text_of(app, "#live") and not app.screen.query_one("#live").has_class("ok")
    saved = load_plan(demo.plan_path)
    assert saved.backend == "builtin" and [v.port for v in saved.virtual_server] == [demo.ports["store"]]
    assert demo.pacs.echoes.count("BUTTERFLY") >= 3  # the PACS test, the echo test, the played C-ECHO


@pilot_test
async def test_builtin_rerun_adds_only_the_worklist_listener(demo_builtin) -> None:
    demo = demo_builtin
    first_pass_with_the_engine(demo)
    pid = demo.serve_pid()
    assert pid is not None
    state = WizardState.from_plan_file(demo.plan_path)
    state.demo = demo
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await add_worklist_port(pilot, app, state, demo)
        writes = state.diff.writes
        assert {(c.kind, c.name, c.action.value) for c in writes} == {
            ("listener", "Butterfly-DICOM-TLS-MWL", "create"), ("process", "dicomtls serve", "update")}
        unchanged = {(c.kind, c.name) for c in state.diff.changes if c.action == "unchanged"}
        assert {("certificate", "Butterfly-Cert-Key-Pair"), ("listener", "Butterfly-DICOM-TLS")} <= unchanged
        await apply_echo_finish(pilot, app, state)
        assert state.echo_report.port == demo.ports["worklist"]
        assert demo.serve_pid() == pid  # reloaded in place (SIGHUP), not restarted
    saved = load_plan(demo.plan_path)
    assert sorted((v.role, v.port) for v in saved.virtual_server) == [
        ("store", demo.ports["store"]), ("worklist", demo.ports["worklist"])]


@pilot_test
async def test_echo_screen_explains_the_failing_rung(demo_builtin) -> None:
    """The terminator is up but the PACS behind it is down: the ladder stops at the association and
    says why; ctrl+n asks once more before going on without a green echo."""
    demo = demo_builtin
    first_pass_with_the_engine(demo)
    demo.pacs.stop()
    state = WizardState.from_plan_file(demo.plan_path)
    state.demo = demo
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        app.goto(7)
        await until(pilot, lambda: app.index == 7 and state.echo_report is not None, 30, "the echo ladder")
        rep = state.echo_report
        assert not rep.ok
        bad = rep.failed_step
        assert bad is not None and bad.name in ("associate", "echo") and bad.cause and bad.next_action
        assert app.screen.query_one("#rung-tls").has_class("-ok")  # TLS worked: the fault is behind it
        assert app.screen.query_one(f"#rung-{bad.name}").has_class("-bad")
        rung = text_of(app, f"#rung-{bad.name}")
        assert "why: " in rung and "do:  " in rung
        result = app.screen.query_one("#echo-result")
        assert result.has_class("error")
        assert f"{RUNG_LABELS[bad.name]} failed: {bad.cause}" in " ".join(text_of(app, "#echo-result").split())
        assert "Press 3 to go to step PACS" in " ".join(text_of(app, "#echo-result").split())
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app), what="the question")
        assert "The C-ECHO through TLS failed" in text_of(app, ".question")
        await pilot.press("n")
        await until(pilot, on_step(app, 7))
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app), what="the question, again")
        await pilot.press("y")
        await until(pilot, on_step(app, 8), what="the Butterfly screen after continuing anyway")


@pilot_test
async def test_apply_failure_shows_the_message_and_retry_completes(demo_netscaler) -> None:
    """The ADC dies half-way through apply: the screen shows NITRO's failure with its fix and what
    is not done; once the ADC is back, ctrl+r finishes the rest and the echo goes green."""
    demo = demo_netscaler
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await pin_and_walk_to_review(pilot, app)
        demo.nitro.state.faults.die_after_writes = 4  # the 4th write is made, then the ADC goes away
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app))
        await pilot.press("y")
        await until(pilot, lambda: app.index == 6 and state.apply_result is not None, 60, "apply to stop")
        result = state.apply_result
        assert not result.ok and result.error and result.not_done
        shown = " ".join(text_of(app, "#apply-result").split())
        assert shown.startswith("✗") and "fix:" in shown and "Not done yet:" in shown
        assert app.screen.query_one("#apply-result").has_class("error")
        assert not demo.plan_path.exists()  # the plan is saved only after a successful apply
        await until(pilot, lambda: "^r Retry" in screen_text(app), what="the retry key")
        await pilot.press("ctrl+n")  # Next is refused until apply succeeds
        await until(pilot, lambda: "Apply has not succeeded" in text_of(app, "#status"))
        assert demo.nitro.wait_dead()
        demo.nitro.restart()
        await retry_completes(pilot, app, state, demo, result)
    assert set(demo.nitro.state.lbvservers) == {"Butterfly-DICOM-TLS"}
