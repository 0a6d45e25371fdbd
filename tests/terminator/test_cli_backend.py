"""The built-in backend as an operator drives it: `dicomtls apply` (diff, install, start, reload,
conflicts, idempotence), `dicomtls status`, and `dicomtls install-service` (the hardened unit, checked
by systemd-analyze). All through the real CLI in subprocesses, with DICOMTLS_HOME in a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys

import pytest

from tests.terminator.helpers import (
    LOOPBACK,
    REPO,
    echo_scp,
    echoscu,
    free_port,
    peer_fingerprint,
    tls_connect,
    wait_for,
    write_plan,
)


def cli(home, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


@pytest.fixture
def stop_terminator(tmp_path):
    """Stops a terminator that `apply` started in the background (by the pid in its pid file)."""
    yield
    pid_file = tmp_path / "state" / "serve.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        wait_for(lambda: not _alive(pid), 30, "the terminator to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/stat").read().split()[2] != "Z"


def test_apply_installs_starts_and_then_is_a_noop(tmp_path, tls_files, stop_terminator):
    with echo_scp() as pacs_port:
        port = free_port()
        services = [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}]
        listeners = [{"name": "store", "port": port, "service": "PACS"}]
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key, services, listeners)
        home = tmp_path / "home"

        dry = cli(home, "apply", str(plan), "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        kinds = {(c["kind"], c["action"]) for c in json.loads(dry.stdout)["diff"]["changes"]}
        assert kinds == {("certificate", "create"), ("cipher_policy", "create"), ("settings", "create"),
                         ("service", "create"), ("listener", "create"), ("process", "create")}
        assert not (tmp_path / "state" / "runtime.json").exists()  # --dry-run wrote nothing

        r = cli(home, "apply", str(plan), "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "started pid" in r.stdout
        key = tmp_path / "state" / "key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
        assert echoscu(port).returncode == 0

        st = cli(home, "status", str(plan), "--json")
        assert st.returncode == 0, st.stderr
        items = {(i["kind"], i["name"]): i for i in json.loads(st.stdout)["items"]}
        assert items[("process", "dicomtls serve")]["state"] == "UP"
        assert items[("listener", "store")]["detail"]["associations"] == 1
        assert items[("service", "PACS")]["state"] == "UP"

        again = cli(home, "apply", str(plan), "--yes")
        assert again.returncode == 0 and "Nothing to change" in again.stdout

        # A renewed certificate and a second listener: update, reload in place (same pid).
        pid = int((tmp_path / "state" / "serve.pid").read_text())
        port2 = free_port()
        write_plan(tmp_path, tls_files.other_cert, tls_files.other_key, services,
                   listeners + [{"name": "mwl", "port": port2, "role": "worklist", "service": "PACS"}])
        r = cli(home, "apply", str(plan), "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"reloaded pid {pid}" in r.stdout
        with tls_connect(port2) as s:
            assert peer_fingerprint(s) == tls_files_fingerprint(tls_files.other_cert)
        assert echoscu(port2).returncode == 0

        st = cli(home, "status", str(plan))
        assert "UP" in st.stdout and "mwl" in st.stdout and f"pid={pid}" in st.stdout


def tls_files_fingerprint(path) -> str:
    from dicomtls.engine.certs import fingerprint

    return fingerprint(path.read_bytes())


def test_a_port_held_by_another_program_is_a_conflict(tmp_path, tls_files):
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                          [{"name": "store", "port": port, "service": "PACS"}])
        r = cli(tmp_path / "home", "apply", str(plan), "--yes")
    assert r.returncode == 3
    assert "conflict" in r.stdout and f"port {port} on 127.0.0.1 is in use by another program" in r.stdout
    assert "nothing was changed" in r.stderr
    assert not (tmp_path / "state" / "runtime.json").exists()


def test_status_when_nothing_runs(tmp_path, tls_files):
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                      [{"name": "store", "port": free_port(), "service": "PACS"}])
    r = cli(tmp_path / "home", "status", str(plan))
    assert r.returncode == 0 and "STOPPED" in r.stdout


def test_a_bad_certificate_is_a_clear_error_and_nothing_is_installed(tmp_path, tls_files):
    plan = write_plan(tmp_path, tls_files.server_key, tls_files.server_cert,  # swapped
                      [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                      [{"name": "store", "port": free_port(), "service": "PACS"}])
    r = cli(tmp_path / "home", "apply", str(plan), "--yes")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "error:" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "state" / "key.pem").exists()


@pytest.mark.parametrize("port, caps", [(2761, False), (104, True)])
def test_install_service_print(tmp_path, tls_files, port, caps):
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": 4242}],
                      [{"name": "store", "port": port, "service": "PACS"}])
    r = cli(tmp_path / "home", "install-service", str(plan), "--print", "--user", "nobody")
    assert r.returncode == 0, r.stderr
    unit = r.stdout
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=nobody",
                 f"ReadWritePaths={(tmp_path / 'state').resolve()} ",
                 f"serve {(tmp_path / 'state').resolve() / 'plan.toml'}"):
        assert line in unit, line
    assert ("AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit) is caps
    assert ("CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit) is caps
    if not caps:
        assert "\nCapabilityBoundingSet=\n" in unit
    assert not (tmp_path / "state").exists()  # --print changes nothing
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/bootstrap --test installs the systemd package"
    f = tmp_path / "dicomtls.service"
    f.write_text(unit)
    v = subprocess.run([analyze, "verify", str(f)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stderr


def test_install_service_writes_the_unit_and_installs_the_plan(tmp_path, tls_files):
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": 4242}],
                      [{"name": "store", "port": 2761, "service": "PACS"}])
    units = tmp_path / "units"
    r = cli(tmp_path / "home", "install-service", str(plan), "--unit-dir", str(units), "--name", "dicomtls-test")
    assert r.returncode == 0, r.stderr
    assert (units / "dicomtls-test.service").read_text().startswith("[Unit]")
    assert (tmp_path / "state" / "systemd-unit").read_text().strip() == "dicomtls-test.service"
    assert (tmp_path / "state" / "plan.toml").exists() and (tmp_path / "state" / "runtime.json").exists()
    assert "systemctl enable --now dicomtls-test.service" in r.stdout


def test_serve_refuses_a_netscaler_plan(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('backend = "netscaler"\n[netscaler]\nurl = "https://192.0.2.10"\n'
                    '[[service]]\nname = "P"\nhost = "192.0.2.20"\nae_title = "PACS"\n'
                    '[[virtual_server]]\nname = "V"\nip = "192.0.2.30"\nport = 2761\nservice = "P"\n')
    for args in (["serve", str(plan)], ["install-service", str(plan), "--print"]):
        r = cli(tmp_path / "home", *args)
        assert r.returncode == 2 and "built-in terminator" in r.stderr and "Traceback" not in r.stderr


def test_moving_the_status_endpoint_to_a_loopback_port_by_apply(tmp_path, tls_files, stop_terminator):
    services = [{"name": "PACS", "host": LOOPBACK, "port": 104}]
    listeners = [{"name": "store", "port": free_port(), "service": "PACS"}]
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key, services, listeners)
    home = tmp_path / "home"
    assert cli(home, "apply", str(plan), "--yes").returncode == 0
    assert (tmp_path / "state" / "control.sock").exists()
    status_port = free_port()
    write_plan(tmp_path, tls_files.server_cert, tls_files.server_key, services, listeners,
               builtin={"status_port": status_port})
    r = cli(home, "apply", str(plan), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"status_port: 0 -> {status_port}" in r.stdout
    assert not (tmp_path / "state" / "control.sock").exists()
    from dicomtls.engine.terminator.control import query_status

    assert query_status(tmp_path / "nowhere", status_port)["generation"] == 2
    assert "UP" in cli(home, "status", str(plan)).stdout


def test_install_service_check_every_adds_a_timer_and_a_oneshot_check(tmp_path, tls_files):
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": 4242}],
                      [{"name": "store", "port": 2761, "service": "PACS"}])
    units = tmp_path / "units"
    r = cli(tmp_path / "home", "install-service", str(plan), "--unit-dir", str(units), "--check-every", "15min")
    assert r.returncode == 0, r.stderr
    main, service, timer = ((units / f"dicomtls{s}").read_text() for s in (".service", "-check.service",
                                                                              "-check.timer"))
    assert "Type=notify\n" in main and "NotifyAccess=main\n" in main and "WatchdogSec=" in main
    assert "Type=oneshot\n" in service
    assert f"check {(tmp_path / 'state').resolve() / 'plan.toml'}\n" in service
    assert "OnUnitActiveSec=15min\n" in timer and "Unit=dicomtls-check.service\n" in timer
    assert "systemctl enable --now dicomtls-check.timer" in r.stdout
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/bootstrap --test installs the systemd package"
    v = subprocess.run([analyze, "verify", *(str(units / f) for f in ("dicomtls.service", "dicomtls-check.service",
                                                                       "dicomtls-check.timer"))],
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stderr


def test_install_service_refuses_a_bad_check_span_and_writes_nothing(tmp_path, tls_files):
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": 4242}],
                      [{"name": "store", "port": 2761, "service": "PACS"}])
    r = cli(tmp_path / "home", "install-service", str(plan), "--unit-dir", str(tmp_path / "units"),
            "--check-every", "every quarter hour")
    assert r.returncode == 2 and "--check-every" in r.stderr and "15min" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "units").exists() and not (tmp_path / "state").exists()
