"""The serving process: `dicomtls serve` execs the terminator's own entry (same pid), which checks its plan in a
helper process (bundle.py), so that neither pydantic nor cryptography is ever resident while serving; the
runtime config it reads is as strict as before; a helper that refuses or dies is an error with a fix."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan
from dicomtls.engine.terminator.bundle import Bundle, answer
from dicomtls.engine.terminator.config import RuntimeConfig
from dicomtls.engine.terminator.install import prepare
from tests.terminator.helpers import LOOPBACK, ServeProcess, free_port, tls_connect, write_plan

# The compiled parts of the two libraries, as they appear in /proc/PID/maps once imported.
HEAVY = ("pydantic_core", "/cryptography/")


def _mapped(pid: int) -> set[str]:
    paths = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}
    return {p for p in paths if any(h in p for h in HEAVY)}


def _plan(tmp_path: Path, tls_files, port: int) -> Path:
    return write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": free_port()}],
                      [{"name": "store", "port": port, "service": "PACS"}])


def test_serve_keeps_its_pid_and_never_loads_pydantic_or_cryptography(tmp_path, tls_files):
    port = free_port()
    sp = ServeProcess(_plan(tmp_path, tls_files, port), tmp_path / "home")
    try:
        started = sp.event("started")
        assert started["pid"] == sp.pid  # `dicomtls serve` exec'd the entry: systemd's main pid is the terminator
        assert _mapped(sp.pid) == set()
        tls_connect(port).close()  # it serves TLS with the bundle's context
        n = len(sp.records)
        sp.proc.send_signal(signal.SIGHUP)
        assert sp.event("reloaded", after=n)["generation"] == 2  # checked again by the helper
        assert _mapped(sp.pid) == set()
    finally:
        sp.stop()
    text = json.dumps(sp.records) + "".join(sp.other)
    assert "PRIVATE KEY" not in text  # the bundle carries the key over a pipe, never into a log


def test_the_installed_files_are_the_checked_ones(tmp_path, tls_files):
    port = free_port()
    sp = ServeProcess(_plan(tmp_path, tls_files, port), tmp_path / "home")
    try:
        sp.event("started")
    finally:
        sp.stop()
    state = tmp_path / "state"
    assert (state / "key.pem").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in (state / "key.pem").read_bytes()
    assert load_plan(state / "plan.toml").cert_path == state / "cert.pem"  # the applied plan points at the copies
    installed = RuntimeConfig.from_json((state / "runtime.json").read_text())
    assert installed.listener("store").port == port


def test_runtime_config_is_read_strictly(tmp_path, tls_files):
    cfg = prepare(load_plan(_plan(tmp_path, tls_files, free_port()))).runtime
    data = cfg.to_dict()
    assert RuntimeConfig.from_dict(json.loads(json.dumps(data))) == cfg
    for change, named in [({"surprise": 1}, "surprise"), ({"handshake_timeout": "10"}, "handshake_timeout"),
                          ({"status_port": True}, "status_port")]:
        with pytest.raises(ValueError, match=named):
            RuntimeConfig.from_dict({**data, **change})
    without = {k: v for k, v in data.items() if k != "policy"}
    with pytest.raises(ValueError, match="policy is missing"):
        RuntimeConfig.from_dict(without)
    bad_listener = {**data, "listeners": [{**data["listeners"][0], "port": "2761"}]}
    with pytest.raises(ValueError, match=r"listeners\[0\]\.port"):
        RuntimeConfig.from_dict(bad_listener)
    assert RuntimeConfig.from_dict({**data, "idle_timeout": 900}).idle_timeout == 900.0  # an int is a float


def test_the_bundle_survives_the_pipe(tmp_path, tls_files):
    prepared = prepare(load_plan(_plan(tmp_path, tls_files, free_port())))
    sent = prepared.bundle()
    got = answer(0, json.dumps({"ok": True, "bundle": sent.to_dict()}).encode(), b"")
    assert isinstance(got, Bundle) and got == sent
    assert got.context().get_ciphers() == prepared.context.get_ciphers()


def test_the_helpers_refusal_and_its_death_are_errors_with_a_fix():
    refusal = json.dumps({"ok": False, "problem": "the key file k.pem does not exist", "fix": "check the path",
                          "exit_code": 2}).encode()
    with pytest.raises(UserError) as exc:
        answer(0, refusal, b"")
    assert (exc.value.problem, exc.value.fix, exc.value.exit_code) == ("the key file k.pem does not exist",
                                                                      "check the path", 2)
    with pytest.raises(UserError) as exc:
        answer(-9, b"", b"Traceback (most recent call last):\nMemoryError\n")
    assert exc.value.exit_code == 70 and "MemoryError" in exc.value.problem and exc.value.fix


def test_reloads_apply_in_the_order_of_their_signals(monkeypatch, tmp_path):
    """Two SIGHUPs close together: the second one's plan is what serves, even when the first one's check in
    the helper takes longer (a stale plan must never be applied last)."""
    import asyncio
    from types import SimpleNamespace

    import dicomtls.engine.terminator.runner as runner

    applied: list[str] = []
    checks = iter([("first", 0.3), ("second", 0.0)])

    async def check(path, passphrase_env):
        name, delay = next(checks)
        await asyncio.sleep(delay)  # the helper's run time, made unequal on purpose
        return SimpleNamespace(state=SimpleNamespace(dir=tmp_path), runtime=name, context=lambda: None,
                               install=lambda: None)

    async def reload(runtime, context):
        applied.append(runtime)
        return True

    monkeypatch.setattr(runner, "load_bundle_async", check)
    term = SimpleNamespace(reload=reload, gen=SimpleNamespace(number=1), last_reload_error="")
    systemd = SimpleNamespace(reloading=lambda: None, ready=lambda status="": None)

    async def main() -> None:
        reloads = runner._Reloads(tmp_path / "plan.toml", None, tmp_path, term, systemd)
        reloads.started.set()
        reloads.on_hup()
        await asyncio.sleep(0.05)  # the second signal arrives while the first check runs
        reloads.on_hup()
        await asyncio.wait_for(asyncio.gather(*reloads.tasks), 5)

    asyncio.run(main())
    assert applied == ["first", "second"]


def test_a_helper_that_cannot_start_is_an_error_with_a_fix(monkeypatch, tmp_path):
    import asyncio

    import dicomtls.engine.terminator.bundle as bundle

    monkeypatch.setattr(bundle, "checker_command", lambda plan, env: [str(tmp_path / "no-such-python")])
    for load in (bundle.load_bundle, lambda p, e: asyncio.run(bundle.load_bundle_async(p, e))):
        with pytest.raises(UserError) as exc:
            load(tmp_path / "plan.toml", None)
        assert exc.value.exit_code == 70 and "could not start" in exc.value.problem and exc.value.fix
