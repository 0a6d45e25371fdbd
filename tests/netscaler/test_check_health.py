"""`dicomtls check`'s backend rung on a NetScaler: the vserver and service state read through the NITRO
client from the simulator, judged as the check does (engine.check): all UP is no finding; the PACS
service DOWN (its monitor fails) is CRITICAL naming the service and its address; absent objects are
CRITICAL; a refused login is UNKNOWN. (The echo rung needs a reachable VIP, which the simulator has not.)"""

from __future__ import annotations

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.check import CheckReport, Level, _backend_health
from dicomtls.engine.plan import load_plan

from .conftest import PASSWORD, STORE, TcpListener, run_apply, write_plan

SERVICE = "Qlink-DICOM"


def health(plan_path):
    plan = load_plan(plan_path)
    report = CheckReport(level=Level.OK)
    findings = _backend_health(plan, BackendOptions(password=PASSWORD), report)
    return findings, report


def test_up_then_pacs_down_then_vserver_missing(sim, workdir):
    pacs = TcpListener()
    try:
        plan = write_plan(workdir, sim, pacs_host="127.0.0.1", pacs_port=pacs.port)
        findings, _ = health(plan)
        # nothing applied yet: vserver and service absent
        assert {(f.code, f.detail) for f in findings} == {("vserver_down", "absent"), ("member_down", "absent")}
        assert STORE in {f.subject for f in findings}
        assert run_apply(plan)[1].ok
        findings, report = health(plan)
        assert findings == [] and (report.members_up, report.members_total) == (1, 1)
    finally:
        pacs.close()
    sim.state.monitor_interval = 0  # probe now
    findings, report = health(plan)
    # the service's monitor fails, so the vserver has no service UP either
    assert sorted((f.level, f.code) for f in findings) == [(Level.CRITICAL, "member_down"),
                                                            (Level.CRITICAL, "vserver_down")]
    down = next(f for f in findings if f.code == "member_down")
    assert SERVICE in down.subject and str(pacs.port) in down.subject
    assert (report.members_up, report.members_total) == (0, 1)


def test_a_wrong_password_is_unknown(sim, workdir):
    plan = load_plan(write_plan(workdir, sim))
    findings = _backend_health(plan, BackendOptions(password="wrong"), CheckReport(level=Level.OK))
    assert [(f.level, f.code) for f in findings] == [(Level.UNKNOWN, "backend_unreadable")]
