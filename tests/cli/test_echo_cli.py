"""`dicomtls echo` as a user runs it (a subprocess), against a real pynetdicom SCP on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.peers import LOOPBACK, pynetdicom_scp, server_context

DICOMTLS = str(Path(sys.executable).parent / "dicomtls")


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DICOMTLS_HOME": str(home), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([DICOMTLS, "echo", *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def tls_scp(tls_files):
    with pynetdicom_scp("PACS", ssl_context=server_context(tls_files.server_cert, tls_files.server_key)) as peer:
        yield peer


def test_tls_echo_success_prints_every_rung_and_exits_0(tmp_path, tls_scp, tls_files):
    r = run(LOOPBACK, str(tls_scp.port), "--tls", "--cafile", str(tls_files.ca_cert), "--policy", "bcp195-nd",
            "--called-ae", "PACS", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"C-ECHO BUTTERFLY -> PACS at {LOOPBACK}:{tls_scp.port}, DICOM-TLS (bcp195-nd)"
    for rung in ("resolve", "tcp", "tls", "associate", "echo", "release"):
        assert any(line.strip().startswith(f"✓ {rung}") for line in lines), rung
    assert "TLSv1.2" in r.stdout and tls_files.server_fingerprint in r.stdout
    assert lines[-1].startswith("OK: the peer answered the C-ECHO with status 0x0000")
    assert r.stderr == ""


def test_failure_exits_non_zero_with_cause_and_next_step_and_no_traceback(tmp_path):
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    r = run(LOOPBACK, str(port), "--timeout", "3", home=tmp_path)
    assert r.returncode == 1
    assert "✗ tcp" in r.stdout
    assert f"cause: nothing listens on {LOOPBACK}:{port}" in r.stdout
    assert "next:  check the port number" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("FAILED at step tcp")
    assert "Traceback" not in r.stdout + r.stderr


def test_echo_status_0122_exits_non_zero(tmp_path):
    with pynetdicom_scp("PACS", echo_status=0x0122) as peer:
        r = run(LOOPBACK, str(peer.port), "--called-ae", "PACS", home=tmp_path)
    assert r.returncode == 1
    assert "✗ echo" in r.stdout and "status 0x0122" in r.stdout
    assert "FAILED at step echo" in r.stdout


def test_json_prints_one_object_with_every_step(tmp_path):
    with pynetdicom_scp("PACS") as peer:
        ok = run(LOOPBACK, str(peer.port), "--called-ae", "PACS", "--json", home=tmp_path)
        bad = run(LOOPBACK, str(peer.port), "--called-ae", "WRONG", "--json", home=tmp_path)
    assert ok.returncode == 0
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["status"] == 0
    assert [s["name"] for s in data["steps"]] == ["resolve", "tcp", "associate", "echo", "release"]
    assert {"ok", "seconds", "detail", "cause", "next_action"} <= set(data["steps"][0])
    assert bad.returncode == 1
    rejected = json.loads(bad.stdout)
    assert rejected["ok"] is False and rejected["status"] is None
    assert rejected["steps"][-1]["name"] == "associate"
    assert rejected["steps"][-1]["detail"].startswith("rejected 1/1/7")


@pytest.mark.parametrize("args, message", [
    (["--calling-ae", "A" * 17], "calling AE title 'AAAAAAAAAAAAAAAAA' is 17 characters"),
    (["--called-ae", "PA\\CS"], "backslash"),
    (["--policy", "bcp195-nd"], "--policy only applies to a TLS echo"),
    (["--cafile", "ca.pem"], "only apply to a TLS echo"),
    (["--tls", "--cafile", "/nonexistent/ca.pem"], "no CA file at /nonexistent/ca.pem"),
])
def test_bad_arguments_exit_2_with_a_message_and_a_fix(tmp_path, args, message):
    r = run(LOOPBACK, "104", *args, home=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "fix:" in r.stderr
    assert r.stdout == ""  # nothing was attempted, not even the header line
    assert "Traceback" not in r.stderr


def test_bad_port_is_an_argument_error(tmp_path):
    r = run(LOOPBACK, "70000", home=tmp_path)
    assert r.returncode == 2
    assert "a port is from 1 to 65535" in r.stderr
    assert "Traceback" not in r.stderr
