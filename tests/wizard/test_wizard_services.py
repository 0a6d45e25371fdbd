"""wizard/services.py pieces that are not screens: following the terminator's log file."""

from __future__ import annotations

import json
import threading

import pytest

from dicomtls.wizard.services import Services
from dicomtls.wizard.state import WizardState


def test_watch_follows_only_new_terminator_records_in_the_run_it_is_given(tmp_path, monkeypatch) -> None:
    """No terminator in this process: the log file is followed (engine.terminator.follow) in the `run` the
    screen passes (its thread worker; a plain thread here), and the stop it returns ends it."""
    from dicomtls.engine import paths

    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    log = paths.log_dir() / "dicomtls.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    old = {"event": "association", "calling_ae": "OLD"}
    log.write_text(f"2027-01-15 INFO dicomtls.terminator: {json.dumps(old)}\n")
    got: list[dict] = []
    seen = threading.Event()
    threads: list[threading.Thread] = []

    def cb(rec: dict) -> None:
        got.append(rec)
        seen.set()

    def run(fn) -> None:
        threads.append(threading.Thread(target=fn))
        threads[-1].start()

    state = WizardState(plan_path=tmp_path / "plan.toml")
    stop = Services().watch_associations(state, state.build_plan(), cb, run=run)
    try:
        new = {"event": "association", "calling_ae": "BUTTERFLY", "outcome": "released"}
        with log.open("a") as f:
            f.write("2027-01-15 INFO dicomtls.cli: unrelated line\n")
            f.write("2027-01-15 INFO dicomtls.terminator: {not json\n")
            f.write(f"2027-01-15 INFO dicomtls.terminator: {json.dumps(new)}\n")
        assert seen.wait(5)
    finally:
        stop()
    threads[0].join(5)
    assert got == [new] and not threads[0].is_alive()


def test_watch_without_a_log_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    state = WizardState(plan_path=tmp_path / "plan.toml")
    with pytest.raises(RuntimeError, match="is `dicomtls serve` running as this user"):
        Services().watch_associations(state, state.build_plan(), lambda r: None)
