"""On a worklist pass, the PACS step's plain test runs Butterfly's worklist query too (before any TLS
exists) and shows what came back, or why nothing did, in the wizard's words."""

from __future__ import annotations

import re

from dicomtls.wizard.app import WizardApp
from tests.support.peers import pynetdicom_scp
from tests.wizard.wizard_helpers import demo_state, on_step, pilot_test, screen_text, text_of, until


async def _to_the_pacs_step(pilot, app, role: str = "worklist") -> None:
    await until(pilot, on_step(app, 0))
    app.state.role = role
    for i in (0, 1):
        await until(pilot, on_step(app, i), what=f"step {i + 1}")
        await pilot.press("ctrl+n")
    await until(pilot, on_step(app, 2), what="the PACS step")


@pilot_test
async def test_pacs_test_on_a_worklist_pass_lists_the_worklist(demo_builtin) -> None:
    state = demo_state(demo_builtin)
    state.role = "worklist"
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_the_pacs_step(pilot, app)
        assert app.screen.query_one("#rung-worklist")  # the ladder shows the rung before it runs
        await pilot.press("ctrl+t")
        await until(pilot, lambda: state.pacs_report is not None, 20, "the PACS test")
        rep = state.pacs_report
        assert rep.ok and not rep.tls, rep.failed_step
        assert [s.name for s in rep.steps][-2:] == ["worklist", "release"]
        assert rep.worklist.count == 3 and rep.worklist.names_shown is False
        result = text_of(app, "#pacs-result")
        assert "3 scheduled procedure steps found in the PACS's worklist (modality US, " in result
        assert "DEMO-ACC-0001" in result and "F***^D***" in result and "Fictitious" not in screen_text(app)
    assert demo_builtin.pacs.finds == 1


@pilot_test
async def test_store_pass_does_not_query_the_worklist(demo_builtin) -> None:
    state = demo_state(demo_builtin)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_the_pacs_step(pilot, app, role="store")
        assert not app.screen.query("#rung-worklist")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: state.pacs_report is not None, 20, "the PACS test")
        assert state.pacs_report.ok and state.pacs_report.worklist is None
    assert demo_builtin.pacs.finds == 0


@pilot_test
async def test_a_pacs_without_a_worklist_is_explained_without_cli_options(demo_builtin) -> None:
    state = demo_state(demo_builtin)
    state.role = "worklist"
    app = WizardApp(state)
    with pynetdicom_scp("ECHOONLY") as peer:  # answers C-ECHO, offers no worklist
        async with app.run_test(size=(80, 24)) as pilot:
            await _to_the_pacs_step(pilot, app)
            app.screen.query_one("#svc-port").value = str(peer.port)
            app.screen.query_one("#svc-ae").value = "ECHOONLY"
            await pilot.press("ctrl+t")
            await until(pilot, lambda: state.pacs_report is not None, 20, "the PACS test")
            rep = state.pacs_report
            assert not rep.ok and rep.worklist.code == "not_offered"
            await until(pilot, lambda: app.screen.query_one("#pacs-result").has_class("error"), 5, "a red verdict")
            result = text_of(app, "#pacs-result")
            assert "Worklist query failed: ECHOONLY does not offer the Modality Worklist service" in result
            assert not re.search(r"--[a-z]", result + screen_text(app))
