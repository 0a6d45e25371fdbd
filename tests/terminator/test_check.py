"""`dicomtls check` against a real `dicomtls serve` and a real PACS (pynetdicom echo SCP): the
monitoring-plugin status line and exit code for OK, an expiring certificate, the PACS down, the
endpoint down and a missing plan; `--json` is one object every time. On a worklist listener it also
runs Butterfly's worklist query (against DCMTK's wlmscpfs, and a PACS with no worklist service)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest

from dicomtls.engine.rehearsal.pairs import make_self_signed
from tests.support.tlsfiles import fingerprint_of
from tests.support.worklists import Step, wlmscpfs
from tests.terminator.helpers import LOOPBACK, REPO, echo_scp, free_port, serve_process, write_plan

LINE = re.compile(r"^DICOMTLS (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| .+)?$")


def check(home, plan, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", "check", str(plan), *extra], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def both(home, plan, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """The plain run and the --json run; the JSON run must print exactly one object and exit the same."""
    plain = check(home, plan, *extra)
    js = check(home, plan, *extra, "--json")
    data = json.loads(js.stdout)  # the whole stdout is one JSON document
    assert isinstance(data, dict) and js.returncode == plain.returncode, (js.stdout, plain.stdout)
    first = plain.stdout.splitlines()[0]
    assert LINE.match(first), first
    assert "Traceback" not in plain.stderr + js.stderr
    return plain, data


def _plan(tmp_path, cert, key, pacs_port, port):
    return write_plan(tmp_path, cert, key, [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}],
                      [{"name": "store", "port": port, "service": "PACS"}], builtin={"health_interval": 0.2})


def test_ok_with_perfdata(tmp_path):
    cert, key = tmp_path / "year.pem", tmp_path / "year.key"
    make_self_signed(cert, key, common_name="year.test", days=365)
    with echo_scp() as pacs_port:
        plan = _plan(tmp_path, cert, key, pacs_port, free_port())
        with serve_process(plan, tmp_path / "home"):
            r, data = both(tmp_path / "home", plan)
    assert r.returncode == 0, r.stdout + r.stderr
    line = r.stdout.splitlines()[0]
    assert line.startswith("DICOMTLS OK - 1 listener(s) answer C-ECHO"), line
    assert "'store_cert_days'=" in line and ";30:;7:" in line and "'pacs_members_up'=1;;1:;0;1" in line
    assert data["status"] == "OK" and data["findings"] == [] and data["listeners"][0]["ok"] is True
    assert data["listeners"][0]["cert_fingerprint"] == fingerprint_of(cert)
    assert data["listeners"][0]["cert_days_left"] in (363, 364)
    assert data["members_up"] == 1 and data["members_total"] == 1


def test_a_certificate_expiring_in_10_days_is_a_warning(tmp_path):
    cert, key = tmp_path / "soon.pem", tmp_path / "soon.key"
    make_self_signed(cert, key, common_name="soon.test", days=10)
    with echo_scp() as pacs_port:
        plan = _plan(tmp_path, cert, key, pacs_port, free_port())
        with serve_process(plan, tmp_path / "home"):
            r, data = both(tmp_path / "home", plan)
            crit = check(tmp_path / "home", plan, "--crit-days", "11")
    assert r.returncode == 1, r.stdout
    assert r.stdout.startswith("DICOMTLS WARNING - certificate expiring: store certificate"), r.stdout
    assert [f["code"] for f in data["findings"]] == ["cert_expiring"]
    assert data["listeners"][0]["cert_days_left"] in (9, 10)
    assert crit.returncode == 2 and crit.stdout.startswith("DICOMTLS CRITICAL - certificate expiring")


def test_pacs_down_is_critical_and_names_the_member(tmp_path, tls_files):
    dead = free_port()  # nothing listens there
    plan = _plan(tmp_path, tls_files.server_cert, tls_files.server_key, dead, free_port())
    with serve_process(plan, tmp_path / "home"):
        r, data = both(tmp_path / "home", plan)
    assert r.returncode == 2, r.stdout
    assert r.stdout.startswith(f"DICOMTLS CRITICAL - PACS down: PACS {LOOPBACK}:{dead}"), r.stdout  # cause first
    assert "CRITICAL: C-ECHO failed: store" in r.stdout
    codes = {f["code"] for f in data["findings"]}
    assert "member_down" in codes and "echo_failed" in codes  # Butterfly's echo is refused too
    assert data["members_up"] == 0 and data["members_total"] == 1


def test_endpoint_down_is_critical(tmp_path, tls_files):
    with echo_scp() as pacs_port:
        port = free_port()
        plan = _plan(tmp_path, tls_files.server_cert, tls_files.server_key, pacs_port, port)
        r, data = both(tmp_path / "home", plan)  # no terminator runs
    assert r.returncode == 2, r.stdout
    assert r.stdout.startswith("DICOMTLS CRITICAL - terminator not running: dicomtls serve (stopped)"), r.stdout
    assert f"CRITICAL: endpoint down: store 127.0.0.1:{port}" in r.stdout
    assert {"endpoint_down", "terminator_not_running"} <= {f["code"] for f in data["findings"]}


@pytest.mark.parametrize("content", [None, "backend = 'builtin'\n[[service]\n"])
def test_a_missing_or_broken_plan_is_unknown(tmp_path, content):
    plan = tmp_path / "plan.toml"
    if content is not None:
        plan.write_text(content)
    r, data = both(tmp_path / "home", plan)
    assert r.returncode == 3 and r.stdout.startswith("DICOMTLS UNKNOWN - plan: "), r.stdout
    assert data["status"] == "UNKNOWN" and data["findings"][0]["code"] == "plan_unusable"


def test_thresholds_that_are_not_a_ladder_are_unknown(tmp_path):
    r, data = both(tmp_path / "home", tmp_path / "plan.toml", "--warn-days", "5", "--crit-days", "7")
    assert r.returncode == 3 and "--warn-days" in r.stdout and data["status"] == "UNKNOWN"


def _worklist_plan(tmp_path, pacs_port: int, ae_title: str):
    cert, key = tmp_path / "year.pem", tmp_path / "year.key"
    make_self_signed(cert, key, common_name="year.test", days=365)
    return write_plan(tmp_path, cert, key, [{"name": "MWL", "host": LOOPBACK, "port": pacs_port, "ae_title": ae_title}],
                      [{"name": "mwl", "port": free_port(), "service": "MWL", "role": "worklist"}],
                      builtin={"health_interval": 0.2})


@pytest.mark.parametrize("days_ahead, items", [(0, 2), (1, 0)])
def test_a_worklist_listener_runs_the_worklist_query_and_counts_todays_steps(tmp_path, days_ahead, items):
    """Today's steps are counted into the perfdata; none today (a night, a weekend) is OK, not an alarm."""
    day = (dt.date.today() + dt.timedelta(days=days_ahead)).strftime("%Y%m%d")
    steps = [Step("Fictitious^Alice", "ACC-1", day), Step("Fictitious^Bob", "ACC-2", day, "103000")]
    with wlmscpfs(tmp_path / "wlm", steps) as wlm:
        plan = _worklist_plan(tmp_path, wlm.port, wlm.ae_title)
        with serve_process(plan, tmp_path / "home"):
            r, data = both(tmp_path / "home", plan)
    assert r.returncode == 0, r.stdout + r.stderr
    line = r.stdout.splitlines()[0]
    assert line.startswith(f"DICOMTLS OK - 1 listener(s) answer C-ECHO, mwl worklist {items} item(s) today"), line
    assert f"'mwl_worklist_items'={items};;;0" in line
    listener = data["listeners"][0]
    assert listener["worklist"] == ("found" if items else "no_items") and listener["worklist_items"] == items
    assert "Alice" not in r.stdout + json.dumps(data)  # no patient data in a monitoring line


def test_a_pacs_without_the_worklist_service_is_critical(tmp_path):
    """C-ECHO answers, the worklist does not: Butterfly would find no patients, so the check says so."""
    with echo_scp() as pacs_port:
        plan = _worklist_plan(tmp_path, pacs_port, "PACS")
        with serve_process(plan, tmp_path / "home"):
            r, data = both(tmp_path / "home", plan)
    assert r.returncode == 2, r.stdout
    assert r.stdout.startswith("DICOMTLS CRITICAL - worklist not offered: mwl 127.0.0.1:"), r.stdout
    assert [f["code"] for f in data["findings"]] == ["worklist_not_offered"]
    assert data["listeners"][0]["worklist"] == "not_offered" and data["listeners"][0]["ok"] is False
    assert "worklist_items" not in r.stdout  # no count where the query never ran: a graph would show a false 0
