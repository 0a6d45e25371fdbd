"""Recorded, deterministic data for the snapshot tests and scripts/screenshots.

The data of screens 6-9 (a NetScaler diff and apply, echo ladders, an association log record) was
recorded from real runs and normalised (fixtures/README.md); screens 1-5 use the real engine with a
fixed clock and the committed fixture pair. The Pilot tests drive the real backends instead.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from dicomtls.engine.backends.base import ApplyResult, Diff, Progress, Status
from dicomtls.engine.plan import Certificate, NetScaler, Service, VirtualServer
from dicomtls.engine.verify import EchoReport
from dicomtls.wizard.services import Services
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import on_step, until

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
        name = "echo_worklist.json" if kw.get("worklist") and kw.get("tls") else \
            "echo_tls.json" if kw.get("tls") else "echo_plain.json"
        report = EchoReport.model_validate_json((FIXTURES / name).read_text())
        for s in report.steps:
            if on_step:
                on_step(s)
        return report

    def backend(self, plan, options):
        return RecordedBackend(json.loads((FIXTURES / f"{plan.backend}_run.json").read_text()), plan.backend)

    def fetch_fingerprint(self, url: str) -> str:
        return FINGERPRINT

    def nitro_connect(self, ns, options):
        from dicomtls.engine.backends.base import TargetFacts
        from dicomtls.engine.backends.netscaler import NitroConnection

        return NitroConnection(facts=TargetFacts(release="14.1", ssl_mode="legacy", ha_role="standalone"),
                               cipher_groups=["DEFAULT", "DEFAULT_BACKEND", "HIGH", "ECDHE"])

    def watch_associations(self, state, plan, callback, run=None):
        callback({"ts": "2027-01-15T09:31:07.412+00:00", "event": "association", "client": "203.0.113.7:50112",
                  "listener": "Butterfly-DICOM-TLS", "calling_ae": "BUTTERFLY", "called_ae": "QLINK", "outcome": "released",
                  "end": "closed", "bytes_to_client": 212})
        return lambda: None


def story(home: Path, backend: str = "builtin") -> WizardState:
    """One site: QLINK at 10.0.0.5:104, Butterfly's pair in ~/Downloads, the store port."""
    st = WizardState(plan_path=home / "dicomtls" / "config" / "plan.toml")
    st.backend = backend
    st.certificate = Certificate(cert=str(home / "Downloads" / "Butterfly_SCP_Cert.pem"),
                                 key=str(home / "Downloads" / "Butterfly_SCP_key.pem"))
    st.pacs_services = [Service(name="Qlink-DICOM", host="10.0.0.5", port=104, ae_title="QLINK")]
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
