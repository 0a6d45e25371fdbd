"""The worklist rung against real worklist peers: DCMTK wlmscpfs over .wl files (made with dump2dcm),
storescp (a PACS with no worklist), and, through `dicomtls serve`'s worklist listener, findscu -W +tls
and our own ladder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pydicom
import pytest

from dicomtls.engine.verify import echo
from dicomtls.engine.worklist import make_query
from tests.support.peers import storescp
from tests.support.worklists import Step, wlmscpfs
from tests.terminator.helpers import LOOPBACK, REPO, free_port, serve_process, wait_for, write_plan

pytestmark = pytest.mark.interop

DAY = "20260315"
STEPS = [Step("Fictitious^Alice", "ACC-1", DAY, "0900"), Step("Fictitious^Bob", "ACC-2", DAY, "1030"),
         Step("Fictitious^Carol", "ACC-3", DAY, "1400"),
         Step("Fictitious^Dave", "ACC-CT", DAY, modality="CT"),  # another modality
         Step("Fictitious^Erin", "ACC-LATER", "20260316")]  # another day


@pytest.fixture(scope="module")
def wlm(tmp_path_factory):
    with wlmscpfs(tmp_path_factory.mktemp("wlm"), STEPS) as peer:
        yield peer


def test_ladder_lists_the_steps_wlmscpfs_holds_for_us_today(wlm):
    report = echo(LOOPBACK, wlm.port, called_ae=wlm.ae_title, worklist=make_query(dates=DAY))
    assert report.ok, report.failed_step
    assert [s.name for s in report.steps] == ["resolve", "tcp", "associate", "echo", "worklist", "release"]
    wl = report.worklist
    assert wl is not None and wl.code == "found" and wl.count == 3
    assert sorted(i.accession_number for i in wl.items) == ["ACC-1", "ACC-2", "ACC-3"]
    assert {i.modality for i in wl.items} == {"US"} and {i.scheduled_date for i in wl.items} == {DAY}
    # Names masked by default: initials only, nowhere in the report in clear.
    assert sorted(i.patient_name for i in wl.items) == ["F***^A***", "F***^B***", "F***^C***"]
    assert "Alice" not in report.model_dump_json()
    assert "3 scheduled procedure step(s) for modality US, scheduled 20260315" in report.steps[4].detail


def test_a_date_range_and_names_when_asked(wlm):
    report = echo(LOOPBACK, wlm.port, called_ae=wlm.ae_title, worklist=make_query(dates=f"{DAY}-20260316"),
                  show_names=True)
    assert report.ok, report.failed_step
    assert report.worklist.count == 4
    assert "Fictitious^Erin" in {i.patient_name for i in report.worklist.items}


def test_zero_items_shows_the_query(wlm):
    report = echo(LOOPBACK, wlm.port, called_ae=wlm.ae_title,
                  worklist=make_query(dates=DAY, station_ae="OTHER-STATION"))
    assert not report.ok
    wl = report.worklist
    assert (wl.code, wl.count, wl.status) == ("no_items", 0, 0x0000)
    step = report.failed_step
    assert step.name == "worklist"
    assert "modality US, scheduled 20260315, scheduled station AE OTHER-STATION" in step.detail
    assert "RIS" in step.next_action
    assert report.steps[-1].name == "release" and report.steps[-1].ok  # left politely


def test_a_pacs_without_a_worklist_is_explained(tmp_path):
    with storescp(tmp_path / "scp") as peer:
        report = echo(LOOPBACK, peer.port, called_ae=peer.ae_title, worklist=make_query(dates=DAY))
    assert not report.ok
    assert [(s.name, s.ok) for s in report.steps][-3:] == [("echo", True), ("worklist", False), ("release", True)]
    assert report.worklist.code == "not_offered"
    step = report.failed_step
    assert "Modality Worklist FIND context was not accepted" in step.detail
    assert "abstract syntax not supported" in step.detail
    assert "does not offer the Modality Worklist service" in step.cause


def test_findscu_and_the_ladder_through_the_worklist_listener(tmp_path, wlm, tls_files):
    port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "RIS", "host": LOOPBACK, "port": wlm.port, "ae_title": wlm.ae_title}],
                      [{"name": "mwl", "port": port, "role": "worklist", "service": "RIS"}])
    out = tmp_path / "rsp"
    out.mkdir()
    with serve_process(plan, tmp_path / "home") as sp:
        r = subprocess.run(["findscu", "-W", "-aet", "BUTTERFLY", "-aec", wlm.ae_title, "+tla", "-ic", "-X",
                            "-k", "PatientName", "-k", "AccessionNumber",
                           "-k", "ScheduledProcedureStepSequence[0].Modality=US",
                           "-k", f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={DAY}",
                           LOOPBACK, str(port)], cwd=out, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        found = sorted(pydicom.dcmread(f).AccessionNumber for f in out.glob("rsp*.dcm"))
        assert found == ["ACC-1", "ACC-2", "ACC-3"]

        report = echo(LOOPBACK, port, tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd",
                      called_ae=wlm.ae_title, worklist=make_query(dates=DAY))
        assert report.ok, report.failed_step
        assert report.worklist.count == 3
        recs = wait_for(lambda: len(sp.find("association", outcome="released")) >= 2 and
                        sp.find("association", outcome="released"), 15, "two released associations")
        assert all(rec["role"] == "worklist" and rec["listener"] == "mwl" for rec in recs)
        assert [rec["items_to_client"] for rec in recs] == [3, 3]
        assert not any("Fictitious" in json.dumps(rec) for rec in sp.records)  # no patient data in the log


def test_cli_worklist_through_the_listener_lists_items_and_json_is_one_object(tmp_path, wlm, tls_files):
    port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "RIS", "host": LOOPBACK, "port": wlm.port, "ae_title": wlm.ae_title}],
                      [{"name": "mwl", "port": port, "role": "worklist", "service": "RIS"}])
    env = {**os.environ, "DICOMTLS_HOME": str(tmp_path / "cli-home"), "PYTHONIOENCODING": "utf-8"}
    base = [sys.executable, "-m", "dicomtls.cli.main", "echo", LOOPBACK, str(port), "--tls", "--cafile", str(tls_files.ca_cert),
            "--called-ae", wlm.ae_title, "--worklist", "--date", DAY]
    with serve_process(plan, tmp_path / "home"):
        r = subprocess.run(base, capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
        j = subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
        none = subprocess.run(base + ["--station-ae", "NOBODY"], capture_output=True, text=True, timeout=60,
                              cwd=REPO, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✓ worklist" in r.stdout
    for acc in ("ACC-1", "ACC-2", "ACC-3"):
        assert acc in r.stdout
    assert "2026-03-15 09:00" in r.stdout and "F***^A***" in r.stdout and "Alice" not in r.stdout
    assert r.stdout.splitlines()[-1] == "OK: the C-ECHO succeeded and 3 scheduled procedure step(s) came back"
    assert j.returncode == 0
    data = json.loads(j.stdout)
    assert data["worklist"]["code"] == "found" and data["worklist"]["count"] == 3
    assert none.returncode == 1
    assert "✗ worklist" in none.stdout and "scheduled station AE NOBODY" in none.stdout
    assert "Traceback" not in none.stdout + none.stderr
