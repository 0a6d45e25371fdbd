"""engine/demo.py: the rehearsal environment, checked with real peers (DCMTK's echoscu and storescu
against the demo PACS, the echo ladder through the in-process terminator), and the wizard's CLI
entry for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomtls.engine.backends import BackendOptions, get_backend
from dicomtls.engine.demo import DEMO_PACS_AE, Demo, DemoPacs, free_port
from dicomtls.engine.verify import echo

REPO = Path(__file__).resolve().parents[2]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_demo_pacs_answers_echoscu_and_storescu(tmp_path) -> None:
    pacs = DemoPacs()
    try:
        ok = subprocess.run(["echoscu", "-aet", "BUTTERFLY", "-aec", DEMO_PACS_AE, "127.0.0.1", str(pacs.port)],
                            capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        wrong = subprocess.run(["echoscu", "-aec", "NOT-THE-PACS", "127.0.0.1", str(pacs.port)],
                               capture_output=True, text=True, timeout=30)
        assert wrong.returncode != 0 and "Called AE Title Not Recognized" in wrong.stderr + wrong.stdout
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.PatientName, ds.PatientID, ds.Modality = "Demo^Patient", "DEMO1", "US"
        f = tmp_path / "sc.dcm"
        ds.save_as(f, enforce_file_format=True)
        stored = subprocess.run(["storescu", "-aec", DEMO_PACS_AE, "127.0.0.1", str(pacs.port), str(f)],
                                capture_output=True, text=True, timeout=30)
        assert stored.returncode == 0, stored.stderr
        assert pacs.stored == 1 and pacs.echoes == ["BUTTERFLY"]
    finally:
        pacs.stop()
    assert refused(pacs.port)


def test_demo_builtin_start_plan_serve_stop(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DICOMTLS_HOME", "/somewhere/else")
    demo = Demo.start("builtin", home=tmp_path / "demo")
    try:
        assert os.environ["DICOMTLS_HOME"] == str(tmp_path / "demo")
        assert demo.key.stat().st_mode & 0o777 == 0o600
        plan = demo.plan()
        assert plan.backend == "builtin" and plan.service[0].port == demo.pacs.port
        vs = plan.virtual_server[0]
        assert (vs.ip, vs.port, vs.calling_ae) == ("127.0.0.1", demo.ports["store"], "BUTTERFLY")
        result = get_backend(plan, BackendOptions()).apply(plan)  # the real apply: a background `dicomtls serve`
        assert result.ok, result
        pid = demo.serve_pid()
        assert pid is not None and f"`dicomtls serve` (pid {pid}) listens on 127.0.0.1:{vs.port}" in \
            demo.after_apply(plan)
        rep = echo("127.0.0.1", vs.port, tls=True, insecure=True, expect_cert=str(demo.cert),
                   called_ae=DEMO_PACS_AE, policy=plan.cipher_policy.profile)
        assert rep.ok, rep
        assert demo.pacs.echoes == ["BUTTERFLY"]
    finally:
        demo.stop()
    assert os.environ["DICOMTLS_HOME"] == "/somewhere/else"  # restored
    assert refused(vs.port) and refused(demo.pacs.port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the rehearsal left nothing running


def test_demo_netscaler_has_a_simulator_and_a_stand_in_data_plane(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DICOMTLS_NITRO_PASSWORD", raising=False)
    demo = Demo.start("netscaler", home=tmp_path / "demo")
    try:
        plan = demo.plan()
        assert plan.netscaler.url == demo.nitro.url and plan.netscaler.url.startswith("https://127.0.0.1:")
        assert os.environ["DICOMTLS_NITRO_PASSWORD"] == demo.nitro.password != "nsroot"
        note = demo.after_apply(plan)
        assert "stands in for the ADC's VIP" in note
        demo.terminator.wait_ready()
        port = plan.virtual_server[0].port
        rep = echo("127.0.0.1", port, tls=True, insecure=True, called_ae=DEMO_PACS_AE)
        assert rep.ok, rep
    finally:
        demo.stop()
    assert "DICOMTLS_NITRO_PASSWORD" not in os.environ


def test_free_port_prefers_the_given_one() -> None:
    p = free_port()
    assert free_port(p) == p
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))
        s.listen()
        assert free_port(p) != p


@pytest.mark.parametrize("args,words", [
    (["--backend", "netscaler"], "--backend only works with --demo"),
    (["--theme", "no-such-theme"], "unknown theme 'no-such-theme'"),
])
def test_wizard_argument_errors_exit_2_without_a_traceback(args, words, tmp_path) -> None:
    env = {**os.environ, "DICOMTLS_HOME": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"error: {words}" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_a_dropped_session_ends_the_demo_through_its_normal_exit(demo_builtin) -> None:
    """SIGHUP (the SSH session went away) must not leave the demo's PACS and terminator running: the
    wizard exits as if quit, so run()'s cleanup stops them. Exit value 129, as a shell reports HUP."""
    import asyncio
    import signal

    from dicomtls.wizard.app import WizardApp
    from tests.wizard.wizard_helpers import demo_state, on_step, until

    app = WizardApp(demo_state(demo_builtin))

    async def hang_up() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            os.kill(os.getpid(), signal.SIGHUP)
            await until(pilot, lambda: not app.is_running, what="the wizard to leave")

    asyncio.run(hang_up())
    assert app.return_value == 129
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the handler went with the wizard's loop
