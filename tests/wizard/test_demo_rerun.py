"""Rehearsing the re-run: the demo folder persists, so a second `dicomtls --demo` starts from the plan
the first one saved (and offers the worklist port), as a real re-run does. The folder is 0700 and its
private keys 0600; --fresh starts over, and only in a folder the demo made."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtls.engine import paths
from dicomtls.engine.demo import MARKER, Demo, demo_dir
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan, save_plan
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.rehearsal import demo_state
from tests.wizard.wizard_helpers import on_step, pilot_test, screen_text, until

REPO = Path(__file__).resolve().parents[2]


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def first_run(home: Path, backend: str = "builtin", **kw) -> Path:
    """What a first demo run leaves: the store port's plan, saved (with a change of the user's own)."""
    demo = Demo.start(backend, home=home, **kw)
    try:
        plan = demo.plan()
        plan.virtual_server[0].calling_ae = "BUTTERFLY2"  # typed by the user: must come back
        if demo.nitro is not None:
            plan.netscaler.fingerprint = demo.nitro.fingerprint  # pinned on the first connect
        save_plan(plan, demo.plan_path)
        return demo.plan_path
    finally:
        demo.stop()


def test_a_second_start_on_the_same_folder_loads_the_first_run_s_plan(home):
    folder = home / "demo"
    saved = first_run(folder)
    demo = Demo.start("builtin", home=folder)
    try:
        assert demo.plan_path == saved
        plan = demo.plan()
        store = next(v for v in plan.virtual_server if v.role == "store")
        assert store.calling_ae == "BUTTERFLY2" and store.port == demo.ports["store"]
        # this run's demo PACS, whatever port it got
        assert (plan.service[0].host, plan.service[0].port) == ("127.0.0.1", demo.pacs.port)
    finally:
        demo.stop()


def test_the_demo_folder_is_private(home):
    folder = home / "demo"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # an existing, too open folder is closed
    demo = Demo.start("netscaler", home=folder)
    try:
        assert mode(folder) == 0o700
        assert mode(demo.key) == 0o600 and mode(demo.key.parent) == 0o700
        nitro_key = folder / "nitro" / "ns-mgmt-key.pem"
        assert mode(nitro_key) == 0o600 and mode(nitro_key.parent) == 0o700
        assert (folder / MARKER).is_file()
        for p in folder.rglob("*"):  # nothing under it is readable by others through the folder
            assert not (p.is_file() and "PRIVATE KEY" in p.read_text(errors="replace") and mode(p) & 0o077), p
    finally:
        demo.stop()


def test_the_simulator_keeps_its_certificate_so_a_pinned_fingerprint_holds(home):
    folder = home / "demo"
    first = Demo.start("netscaler", home=folder)
    fp = first.nitro.fingerprint
    first.stop()
    second = Demo.start("netscaler", home=folder)
    try:
        assert second.nitro.fingerprint == fp
    finally:
        second.stop()


def test_the_default_folder_is_in_the_state_dir_per_backend(home):
    assert demo_dir("builtin") == paths.state_dir() / "demo" / "builtin"
    demo = Demo.start("builtin")
    try:
        assert demo.home == home / "dicomtls" / "state" / "demo" / "builtin"  # DICOMTLS_HOME of the fixture
        assert demo.plan_path == demo.home / "config" / "plan.toml"
    finally:
        demo.stop()


def test_fresh_starts_over(home):
    folder = home / "demo"
    first_run(folder)
    demo = Demo.start("builtin", home=folder, fresh=True)
    try:
        assert not demo.plan_path.exists()
        assert demo.plan().virtual_server[0].calling_ae == "BUTTERFLY"  # the starting plan again
    finally:
        demo.stop()


def test_fresh_never_empties_a_folder_the_demo_did_not_make(home):
    folder = home / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(UserError) as err:
        Demo.start("builtin", home=folder, fresh=True)
    assert err.value.advice.code == "demo.not_a_demo_folder"
    assert (folder / "precious.txt").read_text() == "keep me"


def test_plan_is_honoured_with_demo(home):
    elsewhere = home / "rehearsal.toml"
    first_run(home / "demo", plan_path=elsewhere)
    assert elsewhere.exists() and not (home / "demo" / "config" / "plan.toml").exists()
    demo = Demo.start("builtin", home=home / "demo", plan_path=elsewhere)
    try:
        assert demo.plan_path == elsewhere and demo.plan().virtual_server[0].calling_ae == "BUTTERFLY2"
    finally:
        demo.stop()


def test_a_saved_plan_that_cannot_be_used_says_so(home):
    folder = home / "demo"
    saved = first_run(folder)
    saved.write_text("backend = 'builtin'\n[[virtual_server]]\nname = 'V'\nport = 0\n")
    demo = Demo.start("builtin", home=folder)
    try:
        with pytest.raises(UserError) as err:
            demo.plan()
        assert err.value.advice.code == "demo.saved_plan_invalid" and str(saved) in str(err.value.advice.data)
    finally:
        demo.stop()


@pytest.mark.parametrize("args,words", [
    (["--fresh"], "--fresh only works with --demo"),
    (["--demo", "--fresh", "--plan", "x.toml"], "--fresh empties the demo folder"),
])
def test_fresh_argument_errors(args, words, tmp_path):
    env = {**os.environ, "DICOMTLS_HOME": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"error: {words}" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("backend", ["builtin", "netscaler"])
@pilot_test
async def test_the_second_demo_run_offers_the_worklist_port(home, backend) -> None:
    """A new Demo on the first run's folder, set up as `dicomtls --demo` does (wizard.rehearsal): the
    Start screen shows what is set up and offers the worklist port, which ctrl+o goes on to (on
    NetScaler without a second pinning question: the simulator kept its certificate)."""
    folder = home / "demo"
    first_run(folder, backend)
    demo = Demo.start(backend, home=folder)
    try:
        state = demo_state(demo)
        assert state.existing is not None and state.vserver_for("store").calling_ae == "BUTTERFLY2"
        app = WizardApp(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            text = screen_text(app)
            assert "Already set up" in text and "Add the worklist port" in text, text
            assert f"store    Butterfly-DICOM-TLS on 127.0.0.1:{demo.ports['store']}" in text
            await pilot.press("ctrl+o")
            await until(pilot, on_step(app, 4), what="the worklist virtual server")
            form = {i.id: i.value for i in app.screen.query("Input")}
            assert form["vs-port"] == str(demo.ports["worklist"]) and form["vs-calling"] == "BUTTERFLY2"
            assert state.role == "worklist"
    finally:
        demo.stop()
    assert load_plan(demo.plan_path).virtual_server[0].calling_ae == "BUTTERFLY2"  # nothing lost on the way
