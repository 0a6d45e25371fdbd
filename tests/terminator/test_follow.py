"""engine.terminator.follow: the terminator's records from its log file, as the wizard's last step reads
them when the terminator runs as a service. Real logging: EventLog -> logs.setup_file_logging's file."""

from __future__ import annotations

import logging
import threading

from dicomtls.engine import logs
from dicomtls.engine.terminator.events import EventLog
from dicomtls.engine.terminator.follow import Follower, parse_line


def test_records_written_after_it_starts_arrive_typed_and_stop_ends_the_iteration(tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    path = logs.setup_file_logging()
    events = EventLog()
    try:
        events.emit("association", calling_ae="OLD")  # before the follower: not reported
        follower = Follower(path, poll=0.05)
        got: list[dict] = []
        two = threading.Event()

        def consume() -> None:
            for record in follower:
                got.append(record)
                if len(got) == 2:
                    two.set()

        t = threading.Thread(target=consume)
        t.start()
        logging.getLogger("pynetdicom").warning("not ours")
        events.emit("association", calling_ae="BUTTERFLY", client="203.0.113.7:50112")
        events.emit("reloaded", generation=2)
        assert two.wait(5), got
        follower.stop()
        t.join(5)
        assert not t.is_alive()
    finally:
        for h in list(logging.getLogger().handlers):
            if getattr(h, "baseFilename", None) == str(path.resolve()):
                logging.getLogger().removeHandler(h)
                h.close()
    assert [(r["event"], r.get("calling_ae")) for r in got] == [("association", "BUTTERFLY"), ("reloaded", None)]
    assert got[0]["client"] == "203.0.113.7:50112" and "ts" in got[0]


def test_a_line_that_is_not_a_record_is_skipped():
    assert parse_line('2027-01-15 INFO dicomtls.terminator: {"event": "x"}') == {"event": "x"}
    assert parse_line("2027-01-15 INFO dicomtls.terminator: {cut sh") is None
    assert parse_line('2027-01-15 INFO pynetdicom: {"event": "x"}') is None
    assert parse_line("2027-01-15 INFO dicomtls.terminator: [1, 2]") is None
