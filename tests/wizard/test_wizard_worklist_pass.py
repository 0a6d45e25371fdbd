"""Both ports in one sitting: after the store pass, ctrl+o on the Butterfly screen starts the short
worklist pass from the saved plan (straight to the virtual server step), without asking again for the
NITRO password; it writes only the worklist vserver and ends with a green echo on the worklist port."""

from __future__ import annotations

from dicomtls.engine.plan import load_plan
from dicomtls.wizard.app import WizardApp
from tests.wizard.wizard_helpers import (
    apply_echo_finish,
    demo_state,
    on_step,
    pilot_test,
    pin_and_walk_to_review,
    screen_text,
    until,
)


@pilot_test
async def test_store_then_worklist_in_one_session_on_netscaler(demo_netscaler) -> None:
    demo = demo_netscaler
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await pin_and_walk_to_review(pilot, app)
        await apply_echo_finish(pilot, app, state)
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 8), what="the Butterfly screen")
        assert "^o Add worklist" in screen_text(app) and "^q Quit" in screen_text(app)  # all keys fit in 80
        store_vip = state.vserver.ip
        writes_after_store = demo.nitro.state.writes
        await pilot.press("ctrl+o")
        await until(pilot, on_step(app, 4), what="the virtual server step, directly")
        new = app.state
        assert new is not state and new.role == "worklist" and new.password == state.password
        form = {i.id: i.value for i in app.screen.query("Input")}
        assert (form["vs-name"], form["vs-port"]) == ("Butterfly-DICOM-TLS-MWL", str(demo.ports["worklist"]))
        assert form["vs-ip"] == store_vip  # one VIP, two ports
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.index == 5 and new.diff is not None, what="the change list")
        for c in new.diff.writes:  # only the new vserver and its bindings, plus the final save
            assert "Butterfly-DICOM-TLS-MWL" in c.name or c.kind == "nsconfig", (c.kind, c.name, c.action)
        assert demo.nitro.state.writes == writes_after_store
        await apply_echo_finish(pilot, app, new)
        assert new.echo_report.port == demo.ports["worklist"]
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 8), what="the Butterfly screen again")
        assert "^o Add worklist" not in screen_text(app)  # both ports are set up
    saved = load_plan(demo.plan_path)
    assert sorted((v.role, v.port) for v in saved.virtual_server) == [
        ("store", demo.ports["store"]), ("worklist", demo.ports["worklist"])]
    assert set(demo.nitro.state.lbvservers) == {"Butterfly-DICOM-TLS", "Butterfly-DICOM-TLS-MWL"}
