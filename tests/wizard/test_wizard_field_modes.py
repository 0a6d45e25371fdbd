"""The wizard, keyboard only, on the ADCs hospitals run: the NITRO simulator with the Default SSL Profile
enabled (Review names the mode and the SSL profile; Apply builds it; the last screen turns green when the
vserver's counters show a connection from outside) and on the secondary node of an HA pair (Review names
the primary; nothing can be applied, nothing is written)."""

from __future__ import annotations

import pytest

from dicomtls.wizard.app import WizardApp
from tests.wizard.wizard_helpers import (
    apply_echo_finish,
    demo_state,
    modal_open,
    on_step,
    pilot_test,
    pin_and_walk_to_review,
    screen_text,
    text_of,
    until,
)


@pytest.fixture
def demo_profile(home):
    from dicomtls.engine.demo import Demo

    demo = Demo.start("netscaler", home=home / "demo", nitro_modes={"default_profile": True, "ha": "primary"})
    yield demo
    demo.stop()


@pytest.fixture
def demo_secondary(home):
    from dicomtls.engine.demo import Demo

    demo = Demo.start("netscaler", home=home / "demo", nitro_modes={"ha": "secondary"})
    yield demo
    demo.stop()


@pilot_test
async def test_default_ssl_profile_keyboard_only_to_a_green_counter_line(demo_profile) -> None:
    demo = demo_profile
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await pin_and_walk_to_review(pilot, app)
        listing = text_of(app, "#diff")
        assert "Default SSL Profile on" in listing and "DICOM-TLS-Profile" in listing, listing
        assert "+ create    sslprofile DICOM-TLS-Profile" in listing
        assert "sslvserver_sslcipher_binding" not in listing  # the legacy objects are not planned
        await apply_echo_finish(pilot, app, state)
        assert state.apply_result.ha_sync == "in-sync"  # shown under the Apply result (wizard.target_facts)
        vs = state.vserver.name
        assert demo.nitro.state.sslvservers[vs]["sslprofile"] == "DICOM-TLS-Profile"
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 8), what="the Butterfly screen")
        await until(pilot, lambda: "Watching virtual server" in text_of(app, "#live"), what="the waiting line")
        await pilot.pause(0.5)  # the watch's first reading is its baseline
        demo.nitro.client_connected(vs)
        await until(pilot, lambda: app.screen.query_one("#live").has_class("ok"), 20, "the green line")
        assert f"reached virtual server {vs} on the NetScaler" in text_of(app, "#live")


@pilot_test
async def test_ha_secondary_names_the_primary_and_writes_nothing(demo_secondary) -> None:
    demo = demo_secondary
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app), what="the pinning question")
        await pilot.press("y")
        for i in range(1, 5):
            await until(pilot, on_step(app, i), what=f"step {i + 1}")
            await pilot.press("ctrl+n")
        # the virtual server step reads the ADC and stops on the conflict, naming the primary
        await until(pilot, lambda: "primary node (192.0.2.11)" in screen_text(app), what="the primary named")
        assert app.index == 4 and "hanode" in screen_text(app)
        await pilot.press("ctrl+n")
        await pilot.pause(0.3)
        assert app.index == 4  # it does not go on to Apply
        assert demo.nitro.state.writes == 0
