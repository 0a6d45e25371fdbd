"""The NetScaler path as a user drives it: `dicomtls apply|status|export|nitro-sim` in subprocesses,
against the simulator on loopback; and the password, which must appear nowhere."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time

from dicomtls.engine.backends.netscaler.client import fetch_fingerprint
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.rehearsal.nitro_sim import start_in_thread
from tests.support.processes import stop

from .cli_run import REPO, dicomtls, writes
from .conftest import CERT_NAME, KEY_NAME, PASSWORD, backend, plan_text, run_apply, write_plan


def test_dry_run_prints_the_changes_and_writes_nothing(sim, workdir, home):
    r = dicomtls("apply", write_plan(workdir, sim), "--dry-run", home=home)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\+ create\s+lbvserver Butterfly-DICOM-TLS: SSL_TCP 10.0.0.10:2761", r.stdout)
    assert "9 to create, 3 to update, 0 unchanged, 0 conflict(s)" in r.stdout
    assert writes(sim) == [] and sim.state.lbvservers == {}
    # and after a real apply, a dry run of the worklist addition shows only the new objects, still writing nothing
    run_apply(write_plan(workdir, sim))
    n = len(writes(sim))
    r = dicomtls("apply", write_plan(workdir, sim, "mwl.toml", worklist=True), "--dry-run", "--json", home=home)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["applied"] is False and out["result"] is None
    created = {c["name"] for c in out["diff"]["changes"] if c["action"] == "create"}
    assert created and all("MWL" in n for n in created)
    assert len(writes(sim)) == n


def test_apply_json_counts_requests_and_rerun_is_a_noop(sim, workdir, home):
    plan = write_plan(workdir, sim)
    r = dicomtls("apply", plan, "--yes", "--json", home=home)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["applied"] is True and out["result"]["ok"] is True
    assert out["result"]["requests"] == sim.state.requests <= 30
    assert out["result"]["writes"] == len(writes(sim))
    n, w = sim.state.requests, len(writes(sim))
    r = dicomtls("apply", plan, "--yes", home=home)
    assert r.returncode == 0 and "Nothing to change" in r.stdout
    assert len(writes(sim)) == w and sim.state.requests - n <= 13  # 10 + release, HA role, SSL mode


def test_apply_asks_before_writing(sim, workdir, home):
    r = dicomtls("apply", write_plan(workdir, sim), home=home)  # stdin is not a terminal and no --yes
    assert r.returncode == 2 and "add --yes" in r.stderr and "Traceback" not in r.stderr
    assert writes(sim) == []


def test_status_shows_vservers_services_and_the_pair(sim, workdir, home):
    plan = write_plan(workdir, sim)
    run_apply(plan)
    r = dicomtls("status", plan, home=home)
    assert r.returncode == 0, r.stderr
    assert re.search(r"lbvserver\s+Butterfly-DICOM-TLS\s+DOWN\s+where=10.0.0.10:2761", r.stdout)
    assert re.search(r"service\s+Qlink-DICOM\s+DOWN", r.stdout)
    assert re.search(r"sslcertkey\s+Butterfly-Cert-Key-Pair\s+Valid", r.stdout)
    out = json.loads(dicomtls("status", plan, "--json", home=home).stdout)
    assert {(i["kind"], i["name"]) for i in out["items"]} == {
        ("lbvserver", "Butterfly-DICOM-TLS"), ("service", "Qlink-DICOM"), ("sslcertkey", "Butterfly-Cert-Key-Pair")}


def test_export_contains_each_object_offline(workdir, home):
    plan = workdir / "plan.toml"
    # TEST-NET address: never connected to; the export must not need the ADC at all
    plan.write_text(plan_text("https://192.0.2.10", None, worklist=True))
    t = time.monotonic()
    r = dicomtls("export", plan, "--format", "netscaler-cli", home=home, password=None)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t < 20
    out = r.stdout
    expected = [
        "enable ns feature LB SSL",
        f"add ssl certKey Butterfly-Cert-Key-Pair -cert {CERT_NAME} -key {KEY_NAME}",
        "add service Qlink-DICOM 10.0.0.20 TCP 104 -monConnectionClose RESET",
        "add ssl cipher TLS-1.2-Only",
        *[f"bind ssl cipher TLS-1.2-Only -cipherName {c} -cipherPriority {i}"
          for i, c in enumerate(POLICIES["bcp195-nd"].netscaler_ciphers, 1)],
        "add lb vserver Butterfly-DICOM-TLS SSL_TCP 10.0.0.10 2761",
        "add lb vserver Butterfly-DICOM-TLS-MWL SSL_TCP 10.0.0.10 2762",
        "bind lb vserver Butterfly-DICOM-TLS Qlink-DICOM",
        "bind lb vserver Butterfly-DICOM-TLS-MWL Qlink-DICOM",
        "bind ssl vserver Butterfly-DICOM-TLS -certkeyName Butterfly-Cert-Key-Pair",
        "bind ssl vserver Butterfly-DICOM-TLS -cipherName TLS-1.2-Only",
        "unbind ssl vserver Butterfly-DICOM-TLS -cipherName DEFAULT",
        "unbind ssl vserver Butterfly-DICOM-TLS-MWL -cipherName DEFAULT",
        "set ssl vserver Butterfly-DICOM-TLS -ssl3 DISABLED -tls1 DISABLED -tls11 DISABLED -tls12 ENABLED -tls13 DISABLED",
        "save ns config",
    ]
    lines = out.splitlines()
    positions = [lines.index(e) for e in expected if e in lines]
    assert [e for e in expected if e not in lines] == []
    assert positions.index(lines.index("save ns config")) == len(positions) - 1
    assert f"scp {CERT_NAME} {KEY_NAME}" in out

    r = dicomtls("export", plan, "--format", "nitro", home=home, password=None)
    assert r.returncode == 0, r.stderr
    reqs = json.loads(r.stdout)
    urls = [(q["method"], q["url"]) for q in reqs]
    assert urls[0] == ("POST", "/nitro/v1/config/login") and urls[-1] == ("POST", "/nitro/v1/config/logout")
    for needed in [("POST", "/nitro/v1/config/nsfeature?action=enable"), ("POST", "/nitro/v1/config/systemfile"),
                   ("POST", "/nitro/v1/config/sslcertkey"), ("POST", "/nitro/v1/config/service"),
                   ("POST", "/nitro/v1/config/sslcipher"), ("POST", "/nitro/v1/config/sslcipher_sslciphersuite_binding"),
                   ("POST", "/nitro/v1/config/lbvserver"), ("POST", "/nitro/v1/config/lbvserver_service_binding"),
                   ("POST", "/nitro/v1/config/sslvserver_sslcertkey_binding"),
                   ("POST", "/nitro/v1/config/sslvserver_sslcipher_binding"),
                   ("DELETE", "/nitro/v1/config/sslvserver_sslcipher_binding/Butterfly-DICOM-TLS?args=ciphername:DEFAULT"),
                   ("PUT", "/nitro/v1/config/sslvserver"), ("POST", "/nitro/v1/config/nsconfig?action=save")]:
        assert needed in urls, needed
    files = next(q for q in reqs if q["url"] == "/nitro/v1/config/systemfile")["body"]["systemfile"]
    assert files[1]["filecontent"] == f"<base64 of {KEY_NAME}>"  # the key never leaves in an export
    key_text = (workdir / KEY_NAME).read_text()
    assert "PRIVATE KEY" not in r.stdout and key_text.splitlines()[1] not in r.stdout
    assert reqs[0]["body"]["login"]["password"] == "<password from $DICOMTLS_NITRO_PASSWORD>"


def test_export_refuses_a_plan_without_vips(tmp_path, home):
    plan = tmp_path / "builtin.toml"
    plan.write_text('[[service]]\nname = "P"\nhost = "127.0.0.1"\nae_title = "PACS"\n\n'
                    '[[virtual_server]]\nname = "V"\nport = 2761\nservice = "P"\n')
    r = dicomtls("export", plan, "--format", "netscaler-cli", home=home, password=None)
    assert r.returncode == 2 and "own VIP" in r.stderr and "fix:" in r.stderr


def test_wrong_password_and_pin_mismatch_are_messages_not_tracebacks(sim, workdir, home):
    plan = write_plan(workdir, sim)
    r = dicomtls("apply", plan, "--yes", home=home, password="wrong-one")
    assert r.returncode == 2
    assert "NITRO 354" in r.stderr and "$DICOMTLS_NITRO_PASSWORD" in r.stderr and "Traceback" not in r.stderr
    n = len(sim.log)
    bad = workdir / "badpin.toml"
    bad.write_text(plan.read_text().replace(sim.fingerprint, "00:" * 31 + "00"))
    r = dicomtls("apply", bad, "--yes", home=home)
    assert r.returncode == 2 and "not the pinned" in r.stderr and "nothing was sent" in r.stderr
    assert len(sim.log) == n  # no login attempt reached the simulator


def test_killed_mid_apply_exit_4_then_rerun_completes(sim, workdir, home):
    plan = write_plan(workdir, sim)
    sim.state.faults.die_after_writes = 5
    r = dicomtls("apply", plan, "--yes", home=home)
    assert r.returncode == 4, r.stderr
    assert "FAILED" in r.stdout and "not done: nsconfig save: update" in r.stderr
    assert sim.wait_dead()
    sim.restart()
    r = dicomtls("apply", plan, "--yes", home=home)
    assert r.returncode == 0, r.stderr
    assert "Applied" in r.stdout and sim.state.configchanged is False


def test_nitro_sim_command_serves_a_rehearsal_adc(workdir, home):
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "dicomtls.cli.main", "nitro-sim", "--password", PASSWORD], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(lines)
        url = re.search(r"listening on (https://127\.0\.0\.1:\d+)", text).group(1)
        fp = re.search(r"fingerprint: ([0-9A-F:]{95})", text).group(1)
        assert "username: nsroot" in text and f'fingerprint = "sha256:{fp}"' in text
        assert fetch_fingerprint(url) == fp
        plan = workdir / "plan.toml"
        plan.write_text(plan_text(url, fp))
        r = dicomtls("apply", plan, "--yes", home=home)
        assert r.returncode == 0, r.stderr
        r = dicomtls("apply", plan, "--yes", home=home)
        assert "Nothing to change" in r.stdout
    finally:
        assert stop(proc) == 0  # SIGTERM: the command stops its server and exits cleanly


def test_the_password_appears_in_no_log_plan_or_message(sim, workdir, home, other_pem_pair):
    """Everything that can fail or log, with the password in play; then grep for it everywhere."""
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # httpx/httpcore debug included
    messages: list[str] = []
    try:
        plan = write_plan(workdir, sim)
        run_apply(plan)
        sim.state.expire_sessions()
        run_apply(write_plan(workdir, sim, "mwl.toml", worklist=True))
        for setup in ("wrong password", "278", "3740", "unreachable", "kill"):
            try:
                if setup == "wrong password":
                    backend(plan, password=PASSWORD + "x").diff()
                elif setup == "278":
                    with start_in_thread(password=PASSWORD, firmware="12.0") as h:
                        _, res = run_apply(write_plan(workdir, h, "old.toml"))
                        messages += [res.error, res.fix]
                elif setup == "3740":
                    with start_in_thread(password=PASSWORD, default_profile=True) as h:
                        b = backend(write_plan(workdir, h, "prof.toml"))
                        d = b.diff()
                        messages += [c.summary + c.hint for c in d.changes]
                        b.apply(diff=d)
                elif setup == "unreachable":
                    p = workdir / "down.toml"
                    p.write_text(plan_text("https://127.0.0.1:1", sim.fingerprint))
                    backend(p).diff()
                elif setup == "kill":
                    with start_in_thread(password=PASSWORD) as h:
                        h.state.faults.die_after_writes = 3
                        _, res = run_apply(write_plan(workdir, h, "kill.toml"))
                        messages += [res.error, res.fix, *res.not_done]
            except UserError as exc:
                messages += [str(exc), repr(exc), exc.problem, exc.fix]
        # and the CLI, which logs to a file in DICOMTLS_HOME
        outputs = []
        for args in (("apply", plan, "--yes", "--json"), ("status", plan), ("apply", plan, "--dry-run")):
            r = dicomtls(*args, home=home)
            outputs += [r.stdout, r.stderr]
        r = dicomtls("apply", write_plan(workdir, sim, "x.toml", worklist=True), "--yes", home=home,
                     password=PASSWORD + "-wrong")
        outputs += [r.stdout, r.stderr]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert len(records) > 20 and len(messages) >= 8  # the checks below had something to look at
    assert not [m for m in messages if PASSWORD in m]
    assert not [r for r in records if PASSWORD in r]
    assert not [o for o in outputs if PASSWORD in o]
    files = [p for p in list(home.rglob("*")) + list(workdir.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".log" for p in files)
    assert not [p for p in files if PASSWORD.encode() in p.read_bytes()]
    assert all(PASSWORD not in p.read_text() for p in workdir.glob("*.toml"))


def test_group_plan_through_the_cli_export_apply_status(sim, workdir, home):
    """A PACS on two servers: the CLI export names the group and each member; status shows each member."""
    members = [("10.0.0.21", 104), ("10.0.0.22", 104)]
    plan = write_plan(workdir, sim, members=members)
    r = dicomtls("export", plan, "--format", "netscaler-cli", home=home, password=None)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for line in ("add serviceGroup Qlink-DICOM TCP -monConnectionClose RESET",
                 "bind serviceGroup Qlink-DICOM 10.0.0.21 104", "bind serviceGroup Qlink-DICOM 10.0.0.22 104",
                 "bind lb vserver Butterfly-DICOM-TLS Qlink-DICOM"):
        assert line in lines, line
    assert writes(sim) == []  # export is offline
    r = dicomtls("apply", plan, "--yes", "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["requests"] <= 30
    r = dicomtls("status", plan, home=home)
    assert r.returncode == 0, r.stderr
    assert re.search(r"servicegroup\s+Qlink-DICOM\s+DOWN\s+members_up=0/2", r.stdout)
    for ip, port in members:
        assert re.search(rf"servicegroupmember\s+Qlink-DICOM {ip}:{port}\s+DOWN", r.stdout)
    assert not re.search(r"^\s+service\s", r.stdout, re.M)
