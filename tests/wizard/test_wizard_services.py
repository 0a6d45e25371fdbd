"""wizard/services.py pieces that are not screens: following the terminator's log file."""

from __future__ import annotations

import json
import threading

import pytest

from dicomtls.wizard.services import Services, _follow
from dicomtls.wizard.state import WizardState


def test_follow_reads_only_new_terminator_records(tmp_path) -> None:
    log = tmp_path / "dicomtls.log"
    old = {"event": "association", "calling_ae": "OLD"}
    log.write_text(f"2027-01-15 INFO dicomtls.terminator: {json.dumps(old)}\n")
    got: list[dict] = []
    seen = threading.Event()

    def cb(rec: dict) -> None:
        got.append(rec)
        seen.set()

    stop = _follow(log, cb)
    try:
        new = {"event": "association", "calling_ae": "BUTTERFLY", "outcome": "released"}
        with log.open("a") as f:
            f.write("2027-01-15 INFO dicomtls.cli: unrelated line\n")
            f.write("2027-01-15 INFO dicomtls.terminator: {not json\n")
            f.write(f"2027-01-15 INFO dicomtls.terminator: {json.dumps(new)}\n")
        assert seen.wait(5)
    finally:
        stop()
    assert got == [new]


def test_watch_without_a_log_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    state = WizardState(plan_path=tmp_path / "plan.toml")
    with pytest.raises(RuntimeError, match="is `dicomtls serve` running as this user"):
        Services().watch_associations(state, state.build_plan(), lambda r: None)
