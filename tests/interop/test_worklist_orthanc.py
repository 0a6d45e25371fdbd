"""Orthanc 1.10.1 with its ModalityWorklists plugin (Debian's orthanc package ships it) as the worklist
PACS behind `dicomtls serve`'s worklist listener: `dicomtls echo HOST PORT --tls --worklist` lists the
items Orthanc holds; an Orthanc that does not let BUTTERFLY query its worklist is explained."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dicomtls.engine.verify import echo
from dicomtls.engine.worklist import make_query
from tests.support.peers import orthanc_pacs
from tests.support.worklists import ORTHANC_WORKLIST_PLUGIN, Step, orthanc_worklist_config, write_wl_files
from tests.terminator.helpers import LOOPBACK, REPO, free_port, serve_process, write_plan

pytestmark = pytest.mark.interop

DAY = "20260315"
STEPS = [Step("Fictitious^Alice", "OR-1", DAY, "0800"), Step("Fictitious^Bob", "OR-2", DAY, "0815"),
         Step("Fictitious^Carol", "OR-CT", DAY, modality="CT")]


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    assert ORTHANC_WORKLIST_PLUGIN.exists(), "Debian's orthanc package ships the ModalityWorklists plugin"
    folder = tmp_path_factory.mktemp("worklists")
    write_wl_files(folder, STEPS)
    return folder


def _plan(tmp_path, tls_files, pacs_port):
    port = free_port()
    return write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "Orthanc", "host": LOOPBACK, "port": pacs_port, "ae_title": "ORTHANC"}],
                      [{"name": "mwl", "port": port, "role": "worklist", "service": "Orthanc"}]), port


def test_dicomtls_echo_worklist_lists_what_orthanc_holds(tmp_path, database, tls_files):
    with orthanc_pacs(tmp_path / "orthanc", config=orthanc_worklist_config(database)) as pacs:
        plan, port = _plan(tmp_path, tls_files, pacs.port)
        env = {**os.environ, "DICOMTLS_HOME": str(tmp_path / "cli"), "PYTHONIOENCODING": "utf-8"}
        with serve_process(plan, tmp_path / "home") as sp:
            r = subprocess.run([sys.executable, "-m", "dicomtls.cli.main", "echo", LOOPBACK, str(port), "--tls", "--cafile",
                                str(tls_files.ca_cert), "--called-ae", "ORTHANC", "--worklist", "--date", DAY],
                               capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
            rec = sp.event("association", role="worklist")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OR-1" in r.stdout and "OR-2" in r.stdout and "OR-CT" not in r.stdout
    assert "2026-03-15 08:00" in r.stdout and "F***^A***" in r.stdout
    assert "2 scheduled procedure step(s)" in r.stdout
    assert rec["outcome"] == "released" and rec["called_ae"] == "ORTHANC"


def test_orthanc_refusing_butterfly_as_a_worklist_caller_is_explained(tmp_path, database, tls_files):
    cfg = orthanc_worklist_config(database, allow_butterfly=False)
    with orthanc_pacs(tmp_path / "orthanc", config=cfg) as pacs:
        plan, port = _plan(tmp_path, tls_files, pacs.port)
        with serve_process(plan, tmp_path / "home"):
            report = echo(LOOPBACK, port, tls=True, cafile=tls_files.ca_cert, called_ae="ORTHANC",
                          worklist=make_query(dates=DAY))
    assert not report.ok
    assert [(s.name, s.ok) for s in report.steps if s.name in ("echo", "worklist")] == [("echo", True),
                                                                                        ("worklist", False)]
    step = report.failed_step
    assert report.worklist.code == "no_response", report.worklist  # Orthanc 1.10.1 aborts the query
    assert "BUTTERFLY" in step.next_action and "worklist" in step.next_action
