"""The field modes as a user drives them: `dicomtls nitro-sim` with each mode, `apply` on a secondary and
on the Default SSL Profile, `export --release/--ssl-mode`, `status` naming the mode."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from dicomtls.engine.rehearsal.nitro_sim import start_in_thread
from tests.support.processes import stop

from .cli_run import REPO, dicomtls
from .conftest import PASSWORD, STORE, plan_text, write_plan


def test_apply_on_a_secondary_exits_3_names_the_primary_and_writes_nothing(workdir, home):
    with start_in_thread(password=PASSWORD, ha="secondary") as h:
        r = dicomtls("apply", write_plan(workdir, h), "--yes", home=home)
        assert r.returncode == 3, r.stderr
        assert "HA secondary node (the primary is 192.0.2.11)" in r.stdout
        assert "point netscaler.url at the primary node (192.0.2.11)" in r.stdout
        assert "Traceback" not in r.stderr
        assert [e for e in h.log if e.write] == []


def test_apply_json_carries_the_facts_and_the_sync_state(workdir, home):
    with start_in_thread(password=PASSWORD, ha="primary", default_profile=True) as h:
        r = dicomtls("apply", write_plan(workdir, h), "--yes", "--json", home=home)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["diff"]["facts"]["ssl_mode"] == "profile" and out["diff"]["facts"]["ha_role"] == "primary"
        assert out["result"]["ha_sync"] == "in-sync"
        r = dicomtls("apply", write_plan(workdir, h), "--yes", home=home)
        assert "Nothing to change" in r.stdout and "SSL profile DICOM-TLS-Profile" in r.stdout
        r = dicomtls("status", write_plan(workdir, h), home=home)
        assert r.returncode == 0 and "Default SSL Profile enabled" in r.stdout and "protocols=tls12" in r.stdout


def test_export_for_a_release_and_mode(workdir, home):
    with start_in_thread(password=PASSWORD) as h:
        plan = write_plan(workdir, h)
    r = dicomtls("export", plan, "--format", "netscaler-cli", "--release", "12.0", home=home)
    assert r.returncode == 0 and "-tls12 ENABLED" in r.stdout and "tls13" not in r.stdout.lower()
    r = dicomtls("export", plan, "--format", "netscaler-cli", "--ssl-mode", "profile", home=home)
    assert r.returncode == 0
    assert "add ssl profile DICOM-TLS-Profile -sslProfileType FrontEnd" in r.stdout
    assert f"set ssl vserver {STORE} -sslProfile DICOM-TLS-Profile" in r.stdout
    assert "bind ssl vserver Butterfly-DICOM-TLS -cipherName" not in r.stdout
    r = dicomtls("export", plan, "--format", "nitro", "--release", "11.1", home=home)
    assert r.returncode == 2 and "12.0" in r.stderr and "Traceback" not in r.stderr
    r = dicomtls("export", plan, "--format", "nitro", "--release", "twelve", home=home)
    assert r.returncode == 2 and "X.Y" in r.stderr
    rfc = workdir / "rfc.toml"
    rfc.write_text(plan.read_text().replace("bcp195-nd", "bcp195-rfc8996"))
    r = dicomtls("export", rfc, "--format", "nitro", home=home)  # legacy mode: TLS 1.3 cannot be offered
    assert r.returncode == 2 and "bcp195-nd" in r.stderr


def test_nitro_sim_command_modes(workdir, home):
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "dicomtls.cli.main", "nitro-sim", "--password", PASSWORD, "--http",
                             "--release", "12.0", "--default-ssl-profile", "--ha", "primary", "--partition", "dmz"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text).group(1)
        assert "release 12.0, Default SSL Profile enabled, HA primary" in text and 'partition = "dmz"' in text
        plan = workdir / "plan.toml"
        plan.write_text(plan_text(url, None, partition="dmz"))
        r = dicomtls("apply", plan, "--yes", "--json", home=home)
        assert r.returncode == 0, r.stderr
        facts = json.loads(r.stdout)["diff"]["facts"]
        assert (facts["release"], facts["ssl_mode"], facts["ha_role"], facts["partition"]) == (
            "12.0", "profile", "primary", "dmz")
    finally:
        assert stop(proc) == 0
