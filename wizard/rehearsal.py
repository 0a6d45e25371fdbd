"""The wizard's state for a rehearsal (engine.demo): the first run's plan, or the saved one on a re-run.

A re-run is set up exactly as a real one (WizardState.from_plan_file: "Already set up", and the offer
to add the worklist port), with the demo's addresses of this run (its PACS and simulator ports).
"""

from __future__ import annotations

from typing import Any

from dicomtls.wizard.state import WizardState


def demo_state(demo: Any) -> WizardState:
    plan = demo.plan()  # first: a saved plan that cannot be used is reported with the demo's advice
    state = WizardState.from_plan_file(demo.plan_path)
    state.load(plan)
    if state.existing is not None:
        state.existing = plan  # the summary on the first screen shows this run's addresses
    state.demo = demo
    return state
