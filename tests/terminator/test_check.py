"""`dicomtls check` against a real `dicomtls serve` and a real PACS (pynetdicom echo SCP): the
monitoring-plugin status line and exit code for OK, an expiring certificate, the PACS down, the
endpoint down and a missing plan; `--json` is one object every time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from dicomtls.engine.rehearsal.pairs import make_self_signed
from tests.support.tlsfiles import fingerprint_of
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
