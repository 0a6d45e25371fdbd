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

import datetime as dt
import json
from pathlib import Path

import pytest
from wizard_helpers import on_step, until

from engine.backends.base import ApplyResult, Diff, Progress, Status
from engine.plan import Certificate, NetScaler, Service, VirtualServer, load_plan, save_plan
from engine.verify import EchoReport
from wizard.app import WizardApp
from wizard.services import Services
from wizard.state import WizardState

FIXTURES = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC)
FINGERPRINT = "sha256:" + ":".join(["5C"] * 8 + ["A1"] * 8 + ["07"] * 8 + ["E9"] * 8)


class RecordedBackend:
    """Replays a recorded diff and apply (real engine types, loaded from JSON)."""

    def __init__(self, run: dict, name: str) -> None:
        self.run, self.name = run, name

    def diff(self, plan) -> Diff:
        return Diff.model_validate(self.run["diff"])

    def apply(self, plan, diff=None, progress=None) -> ApplyResult:
        for p in self.run["progress"]:
            if progress:
                progress(Progress.model_validate(p))
        return ApplyResult.model_validate(self.run["result"])

    def status(self, plan) -> Status:
        return Status(backend=self.name, target="")

    def close(self) -> None:
        pass


class SnapshotServices(Services):
    def now(self) -> dt.datetime:
        return NOW

    def echo(self, host, port, *, on_step=None, **kw):
        report = EchoReport.model_validate_json((FIXTURES / ("echo_tls.json" if kw.get("tls") else
                                                             "echo_plain.json")).read_text())
        for s in report.steps:
            if on_step:
                on_step(s)
        return report

    def backend(self, plan, options):
        return RecordedBackend(json.loads((FIXTURES / "netscaler_run.json").read_text()), plan.backend)

    def fetch_fingerprint(self, url: str) -> str:
        return FINGERPRINT

    def list_cipher_groups(self, ns, options) -> list[str]:
        return ["DEFAULT", "DEFAULT_BACKEND", "HIGH", "ECDHE"]

    def port_in_use(self, ip: str, port: int) -> bool:
        return False

    def watch_associations(self, state, plan, callback):
        callback({"ts": "2027-01-15T09:31:07.412+00:00", "event": "association", "client": "203.0.113.7:50112",
                  "listener": "Butterfly-DICOM-TLS", "calling_ae": "BUTTERFLY", "called_ae": "QLINK", "end": "closed",
                  "bytes_to_client": 212})
        return lambda: None


def story(home: Path, backend: str = "builtin") -> WizardState:
    """One site: QLINK at 10.0.0.5:104, Butterfly's pair in ~/Downloads, the store port."""
    st = WizardState(plan_path=home / "dicomtls" / "config" / "plan.toml")
    st.backend = backend
    st.certificate = Certificate(cert=str(home / "Downloads" / "Butterfly_SCP_Cert.pem"),
                                 key=str(home / "Downloads" / "Butterfly_SCP_key.pem"))
    st.services = [Service(name="Qlink-DICOM", host="10.0.0.5", port=104, ae_title="QLINK")]
    st.service_name = "Qlink-DICOM"
    ip = "0.0.0.0" if backend == "builtin" else "192.0.2.20"
    st.virtual_servers = [VirtualServer(name="Butterfly-DICOM-TLS", ip=ip, port=2761, role="store",
                                        service="Qlink-DICOM")]
    if backend == "netscaler":
        st.netscaler = NetScaler(url="https://192.0.2.10", fingerprint=FINGERPRINT)
        st.password, st.nitro_ok, st.cipher_groups = "not-a-real-password", True, ["DEFAULT", "HIGH", "ECDHE"]
    return st


def at_step(index: int, *keys: str, ready=None):
    """run_before: go to step `index`, press `keys`, wait until `ready(app)` (and all work is done)."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await until(pilot, on_step(app, 0))
        if index:
            app.goto(index)
            await until(pilot, on_step(app, index), what=f"step {index + 1}")
        if keys:
            await pilot.press(*keys)
        if ready is not None:
            await until(pilot, lambda: ready(app), what="the screen's result")
        await until(pilot, lambda: not app.screen.running and all(w.is_finished for w in app.screen.workers))
        await pilot.pause()

    return run_before


@pytest.fixture
def snap(snap_compare, home, butterfly_pair):
    def take(state: WizardState, run_before, size=(80, 24)) -> bool:
        app = WizardApp(state, SnapshotServices())
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


def test_4_cipher_policy(snap, home) -> None:
    assert snap(story(home), at_step(3))


def test_5_virtual_server(snap, home) -> None:
    assert snap(story(home), at_step(4))


def test_6_review_netscaler(snap, home) -> None:
    assert snap(story(home, "netscaler"), at_step(5, ready=lambda app: app.state.diff is not None))


def test_7_apply_netscaler(snap, home) -> None:
    assert snap(story(home, "netscaler"), at_step(6, ready=lambda app: app.state.apply_result is not None))


def test_8_echo(snap, home) -> None:
    st = story(home)
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
