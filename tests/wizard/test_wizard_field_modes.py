"""The wizard, keyboard only, on the ADCs hospitals run: the NITRO simulator with the Default SSL Profile
enabled (Review names the mode and the SSL profile; Apply builds it; the last screen turns green when the
vserver's counters show a connection from outside) and on the secondary node of an HA pair (the Start step names
the primary as soon as it connects; nothing is written)."""

from __future__ import annotations

import pytest

from dicomtls.wizard.app import WizardApp
from tests.wizard.wizard_helpers import (
    apply_echo_finish,
    connect_and_pin,
    demo_state,
    on_step,
    pilot_test,
    pin_and_walk_to_review,
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
async def test_ha_secondary_is_named_on_start_and_nothing_is_written(demo_secondary) -> None:
    """Connecting to the secondary node stops on the Start step, naming the primary: not five steps later."""
    demo = demo_secondary
    state = demo_state(demo)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await connect_and_pin(pilot, app)

        def url_error() -> str:
            return app.screen.field("ns-url").error

        await until(pilot, lambda: "primary node (192.0.2.11)" in url_error(), what="the primary named")
        assert url_error().startswith("This is the SECONDARY node of an HA pair")
        assert "Not this node" in text_of(app, "#ns-result")
        assert app.index == 0 and not state.nitro_ok
        assert app.focused is not None and app.focused.id == "ns-url"  # where the primary's address goes
        await pilot.press("ctrl+n")
        await until(pilot, lambda: not app.screen.workers or all(w.is_finished for w in app.screen.workers))
        assert app.index == 0  # Next asks again, and stays
        assert demo.nitro.state.writes == 0


@pilot_test
async def test_the_start_step_says_what_it_connected_to(demo_profile) -> None:
    state = demo_state(demo_profile)
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await connect_and_pin(pilot, app, "ctrl+t")
        await until(pilot, lambda: "✓ Connected" in text_of(app, "#ns-result"), what="the connected line")
        line = text_of(app, "#ns-result")
        assert "HA primary (secondary 192.0.2.11)" in line and "Default SSL Profile on" in line, line
