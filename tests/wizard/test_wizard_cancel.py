"""Esc during Apply: the running apply stops between two steps, the screen says so and what to do,
nothing is saved, and ctrl+r completes the rest (apply is idempotent), ending with a green echo."""

from __future__ import annotations

import threading

from dicomtls.engine.backends.base import Progress
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.services import Services
from tests.wizard.wizard_helpers import (
    demo_state,
    modal_open,
    pilot_test,
    pin_and_walk_to_review,
    retry_completes,
    screen_text,
    text_of,
    until,
)


class GatedServices(Services):
    """The real backend, held after its first finished step until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.gated = False

    def backend(self, plan, options):
        real = super().backend(plan, options)
        outer = self
        apply = real.apply

        def gated_apply(plan, diff=None, progress=None):
            def hold(p: Progress) -> None:
                if progress is not None:
                    progress(p)
                if p.state == "done" and not outer.gated:
                    outer.gated = True
                    outer.reached.set()
                    assert outer.go.wait(30), "the test never released the apply"

            return apply(plan, diff, hold)

        real.apply = gated_apply
        return real


@pilot_test
async def test_esc_cancels_apply_between_steps_and_retry_completes(demo_netscaler) -> None:
    demo = demo_netscaler
    state = demo_state(demo)
    services = GatedServices()
    app = WizardApp(state, services)
    async with app.run_test(size=(80, 24)) as pilot:
        await pin_and_walk_to_review(pilot, app)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: modal_open(app), what="the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: app.index == 6 and services.reached.is_set(), 30, "the first applied step")
        writes_before = demo.nitro.state.writes
        await pilot.press("escape")
        services.go.set()
        await until(pilot, lambda: state.apply_result is not None, 30, "apply to stop")
        result = state.apply_result
        assert not result.ok and "cancelled" in result.error, result
        shown = " ".join(text_of(app, "#apply-result").split())
        assert "cancelled" in shown and "ctrl+r" in shown, shown
        assert demo.nitro.state.writes == writes_before  # nothing written after Esc
        assert not demo.nitro.state.lbvservers  # stopped well before the vserver
        assert not demo.plan_path.exists()
        await until(pilot, lambda: "^r Retry" in screen_text(app), what="the retry key")
        await retry_completes(pilot, app, state, demo, result)
    assert set(demo.nitro.state.lbvservers) == {"Butterfly-DICOM-TLS"}
