"""A PACS on several servers in the wizard: a saved plan whose service lists two members (two real
pynetdicom Verification SCPs on loopback). The PACS screen names both, its test echoes each, editing
Host/Port changes only the first, and apply keeps both in the saved plan, the runbook lines and the
built-in terminator that the echo goes through. Keyboard only, at 80x24."""

from __future__ import annotations

from dicomtls.engine.demo import DemoPacs
from dicomtls.engine.plan import Member, Service, load_plan, save_plan
from dicomtls.wizard import runbook
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import modal_open, on_step, pilot_test, screen_text, text_of, until

LOOPBACK = "127.0.0.1"


def two_server_plan(demo, second: DemoPacs) -> WizardState:
    """The demo's plan with its PACS on two servers, saved the way a user's plan file would be."""
    plan = demo.plan()
    svc = plan.service[0]
    plan.service = [Service(name=svc.name, ae_title=svc.ae_title,
                            members=[Member(host=LOOPBACK, port=demo.pacs.port), Member(host=LOOPBACK, port=second.port)])]
    save_plan(plan, demo.plan_path)
    state = WizardState.from_plan_file(demo.plan_path)
    state.demo = demo
    return state


async def to_pacs_screen(pilot, app) -> None:
    await until(pilot, on_step(app, 0))
    await pilot.press("ctrl+n")
    await until(pilot, on_step(app, 1), what="the certificates step")
    await pilot.press("ctrl+n")  # checks the pair, then on
    await until(pilot, on_step(app, 2), what="the PACS step")


@pilot_test
async def test_two_servers_are_shown_tested_applied_and_kept(demo_builtin) -> None:
    demo = demo_builtin
    second = DemoPacs()
    try:
        state = two_server_plan(demo, second)
        first, other = f"{LOOPBACK}:{demo.pacs.port}", f"{LOOPBACK}:{second.port}"
        app = WizardApp(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await to_pacs_screen(pilot, app)
            assert " ".join(text_of(app, "#members").split()) == (
                f"Members from the plan file: {first}, {other}; Host and Port edit the first, the test checks "
                "each.")
            assert app.screen.query_one("#svc-port").value == str(demo.pacs.port)  # the fields: the first
            await pilot.press("ctrl+t")
            await until(pilot, lambda: len(state.pacs_reports) == 2 and not app.screen.running, 30, "both echoes")
            assert [(where, rep.ok) for where, rep in state.pacs_reports] == [(first, True), (other, True)]
            assert demo.pacs.echoes == ["BUTTERFLY"] and second.echoes == ["BUTTERFLY"]  # one C-ECHO each
            result = text_of(app, "#pacs-result").splitlines()
            assert [line.split(" answered")[0] for line in result] == [f"✓ {first}", f"✓ {other}"]
            assert app.screen.query_one("#pacs-result").has_class("ok")

            for i in range(2, 5):  # PACS (tested already), cipher policy, virtual server
                await until(pilot, on_step(app, i), what=f"step {i + 1}")
                await pilot.press("ctrl+n")
            await until(pilot, lambda: app.index == 5 and state.diff is not None, what="the change list")
            assert f"PACS DEMO-PACS at {first}, {other}" in " ".join(text_of(app, "#diff").split())
            assert len(demo.pacs.echoes) == 1 and len(second.echoes) == 1  # Next did not test again
            before = demo.plan_path.stat().st_mtime_ns
            await pilot.press("ctrl+n")
            await until(pilot, lambda: modal_open(app), what="the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: app.index == 6 and state.apply_result is not None, 60, "apply")
            assert state.apply_result.ok, screen_text(app)
            assert "Saved the plan" in text_of(app, "#apply-result")
            assert demo.plan_path.stat().st_mtime_ns != before  # written again by the wizard
            saved = load_plan(demo.plan_path)
            assert [m.address for m in saved.service[0].targets] == [first, other]

            await pilot.press("ctrl+n")  # the echo through the terminator that apply started
            await until(pilot, lambda: app.index == 7 and state.echo_report is not None, 30, "the echo ladder")
            assert state.echo_report.ok, screen_text(app)
            assert len(demo.pacs.echoes) + len(second.echoes) == 3  # it reached one of the two servers
            await pilot.press("ctrl+n")
            await until(pilot, on_step(app, 8), what="the Butterfly screen")
            assert f"inside:  TCP from this host to the PACS {first}, {other}" in text_of(app, "#firewall")
        text = runbook.render(saved, "plan.toml", {})
        assert f"DEMO-PACS at {first}, {other}; calling AE BUTTERFLY" in text
    finally:
        second.stop()


@pilot_test
async def test_editing_changes_the_first_server_only_and_a_failing_one_is_named(demo_builtin) -> None:
    demo = demo_builtin
    second, third = DemoPacs(), DemoPacs()
    running = [second, third]
    try:
        state = two_server_plan(demo, second)
        app = WizardApp(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await to_pacs_screen(pilot, app)
            port = app.screen.query_one("#svc-port")
            port.value = str(second.port)  # the address of the other member: refused, with the reason
            await pilot.press("ctrl+t")
            await until(pilot, lambda: "already another member" in text_of(app, "#field-svc-host .field-error"),
                        what="the duplicate message")
            assert second.echoes == [] and state.pacs_reports == []  # nothing was sent
            port.value = str(third.port)
            await until(pilot, lambda: f"file: {LOOPBACK}:{third.port}, {LOOPBACK}:{second.port};"
                        in " ".join(text_of(app, "#members").split()), what="the line to follow the fields")
            running.remove(second)
            second.stop()  # the other server goes away: its line says so, the first one's is green
            await pilot.press("ctrl+t")
            await until(pilot, lambda: len(state.pacs_reports) == 2 and not app.screen.running, 30, "both tests")
            lines = text_of(app, "#pacs-result").splitlines()
            assert lines[0].startswith(f"✓ {LOOPBACK}:{third.port} answered C-ECHO")
            assert lines[1].startswith(f"✗ {LOOPBACK}:{second.port}: TCP connection failed")
            assert app.screen.query_one("#pacs-result").has_class("error")
            assert text_of(app, "#pacs-member") == f"{LOOPBACK}:{second.port} (2 of 2):"  # its ladder is shown
            assert app.screen.query_one("#rung-tcp").has_class("-bad")
            await pilot.press("ctrl+n")  # tested already with these values: Next asks once, as for one server
            await until(pilot, lambda: modal_open(app), what="the question")
            assert "did not answer the C-ECHO" in text_of(app, ".question")
            await pilot.press("y")
            await until(pilot, on_step(app, 3), what="the cipher policy step")
            assert [m.address for m in state.service.targets] == [f"{LOOPBACK}:{third.port}",
                                                                   f"{LOOPBACK}:{second.port}"]
            assert (state.service.host, state.service.port) == (LOOPBACK, third.port)
            assert demo.pacs.echoes == []  # the replaced first server was never tested
    finally:
        for p in running:
            p.stop()


def runbook_plan():
    from dicomtls.engine.plan import Plan

    return Plan.model_validate({
        "certificate": {"cert": "/etc/dicomtls/c.pem", "key": "/etc/dicomtls/k.pem"},
        "service": [{"name": "Qlink", "ae_title": "QLINK",
                     "members": [{"host": "10.0.0.5"}, {"host": "10.0.0.6", "port": 4104}]}],
        "virtual_server": [{"name": "Butterfly-DICOM-TLS", "port": 2761, "service": "Qlink"}]})


def test_the_runbook_names_every_server() -> None:
    plan = runbook_plan()
    assert runbook.firewall_rule(plan, plan.virtual_server[0], "198.51.100.7")[1] == \
        "inside:  TCP from this host to the PACS 10.0.0.5:104, 10.0.0.6:4104"
    text = runbook.render(plan, "plan.toml", {})
    assert "plain DICOM to `Qlink` QLINK at 10.0.0.5:104, 10.0.0.6:4104; calling AE BUTTERFLY" in text


def test_rerun_summary_names_the_group() -> None:
    from dicomtls.wizard.screens.start import describe

    plan = runbook_plan()
    assert describe(plan) == ["store    Butterfly-DICOM-TLS on 0.0.0.0:2761 -> QLINK at 10.0.0.5:104 +1 more"]
