"""Snapshots of every screen at 80x24 (pytest-textual-snapshot; update with --snapshot-update after
looking at the report).

What is made deterministic, and how:
- paths: HOME is a temp folder and paths show as ~/...; the certificate pair is the committed fixture
  (tests/wizard/fixtures), so subject, expiry and fingerprint never change; the clock is fixed;
- the cursor does not blink and animations are off (the wizard does both itself);
- screens 1-5 use the real engine (the certificate check, field validation); the data of screens
  6-9 (a NetScaler diff and apply, echo ladders, an association log record) was recorded from real
  runs and normalised (fixtures/README.md). The Pilot tests drive the real backends; these tests
  only pin down what the screens look like.
"""

from __future__ import annotations

import pytest
from recorded import FINGERPRINT, FIXTURES, SnapshotServices, at_step, story

from dicomtls.engine.plan import VirtualServer, load_plan, save_plan
from dicomtls.engine.verify import EchoReport
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import until


@pytest.fixture
def snap(snap_compare, home, butterfly_pair):
    def take(state: WizardState, run_before, size=(80, 24), services=None) -> bool:
        app = WizardApp(state, services or SnapshotServices())
        return snap_compare(app, run_before=run_before, terminal_size=size)

    return take


def test_1_start(snap, home) -> None:
    assert snap(WizardState(plan_path=home / "dicomtls" / "config" / "plan.toml"), at_step(0))


def test_1_start_netscaler(snap, home) -> None:
    assert snap(story(home, "netscaler"), at_step(0))


def test_1_start_rerun(snap, home) -> None:
    st = story(home)
    plan = st.build_plan()
    save_plan(plan, st.plan_path)
    assert snap(WizardState.from_plan_file(st.plan_path), at_step(0))


def test_2_certificates(snap, home) -> None:
    assert snap(story(home), at_step(1, "ctrl+t", ready=lambda app: app.state.pem is not None))


def test_3_pacs(snap, home) -> None:
    assert snap(story(home), at_step(2, "ctrl+t", ready=lambda app: app.state.pacs_report is not None))


def test_3_pacs_out_of_date(snap, home) -> None:
    """Tested, then the host edited: the ladder goes and the result says what changed (no stale ✓)."""
    async def run_before(pilot) -> None:
        await at_step(2, "ctrl+t", ready=lambda app: app.state.pacs_report is not None)(pilot)
        app = pilot.app
        app.screen.query_one("#svc-host").focus()
        await pilot.press("end", "9")
        await until(pilot, lambda: "out of date" in str(app.screen.query_one("#pacs-result").content))

    assert snap(story(home), run_before)


def test_3_pacs_failed_asks(snap, home) -> None:
    """Next after a failed C-ECHO: the decision is asked, not a footnote."""
    st = story(home)
    st.pacs_services = [st.pacs_services[0].model_copy(update={"ae_title": "WRONG"})]

    class Failing(SnapshotServices):
        def echo(self, host, port, *, on_step=None, **kw):
            return EchoReport.model_validate_json((FIXTURES / "echo_plain_rejected.json").read_text())

    async def run_before(pilot) -> None:
        await at_step(2)(pilot)
        await pilot.press("ctrl+n")  # the test runs, fails, and Next asks (its worker waits for the answer)
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ChoiceModal", what="the question")
        await pilot.pause()

    assert snap(st, run_before, services=Failing())


def test_4_cipher_policy(snap, home) -> None:
    assert snap(story(home), at_step(3))


def test_5_virtual_server(snap, home) -> None:
    assert snap(story(home), at_step(4))


def test_6_review(snap, home) -> None:
    assert snap(story(home), at_step(5, ready=lambda app: app.state.diff is not None))


def test_7_apply(snap, home) -> None:
    assert snap(story(home), at_step(6, ready=lambda app: app.state.apply_result is not None))


def test_6_review_netscaler(snap, home) -> None:
    assert snap(story(home, "netscaler"), at_step(5, ready=lambda app: app.state.diff is not None))


def test_7_apply_netscaler(snap, home) -> None:
    assert snap(story(home, "netscaler"), at_step(6, ready=lambda app: app.state.apply_result is not None))


def test_8_echo(snap, home) -> None:
    st = story(home)
    st.saved_text = None
    assert snap(st, at_step(7, ready=lambda app: app.state.echo_report is not None))


def test_8_echo_worklist(snap, home) -> None:
    """The worklist pass: the echo ladder with its worklist rung, the count and the first items."""
    st = story(home)
    st.virtual_servers.append(VirtualServer(name="Butterfly-DICOM-TLS-MWL", ip="0.0.0.0", port=2762,
                                            role="worklist", service="Qlink-DICOM"))
    st.role = "worklist"
    st.saved_text = None
    assert snap(st, at_step(7, ready=lambda app: app.state.echo_report is not None))


def test_9_butterfly(snap, home) -> None:
    assert snap(story(home), at_step(8, ready=lambda app: app.screen.query_one("#live").has_class("ok")))


def test_too_small(snap, home) -> None:
    assert snap(story(home), at_step(0), size=(60, 18))


def test_plan_saved_by_the_apply_snapshot_is_valid(home, butterfly_pair) -> None:
    """The recorded apply still saves a real plan (the snapshot's 'Saved the plan' line is true)."""
    import asyncio

    async def go() -> None:
        app = WizardApp(story(home, "netscaler"), SnapshotServices())
        async with app.run_test(size=(80, 24)) as pilot:
            await at_step(6, ready=lambda a: a.state.apply_result is not None)(pilot)

    asyncio.run(go())
    plan = load_plan(home / "dicomtls" / "config" / "plan.toml")
    assert plan.backend == "netscaler" and plan.netscaler.fingerprint == FINGERPRINT
