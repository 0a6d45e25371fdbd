"""The terminator's records as they are appended to its log file: a typed iterator for a face to consume
in a worker (the wizard's last step watches for Butterfly's association this way when the terminator
runs as a service, not in the wizard's own process).

The file is engine/logs.py's: one line per record, "<time> <level> dicomtls.terminator: <JSON>", the
JSON being what EventLog.emit wrote. Rotation (RotatingFileHandler) is followed by starting again at
the top of the new file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dicomtls.engine.terminator.events import log as events_log

MARKER = f"{events_log.name}: "  # logs.py's format puts the logger's name, then ": ", before the record


class Follower:
    """`for record in Follower(path)` yields each terminator record written after the Follower was made,
    until stop() is called (from any thread); lines that are not records are skipped."""

    def __init__(self, path: Path, poll: float = 0.3) -> None:
        self.path, self.poll = path, poll
        self._stop = threading.Event()
        self._file = open(path, encoding="utf-8", errors="replace")  # closed when the iteration ends
        self._file.seek(0, 2)  # here, not when iterating starts: records written after this are the new ones

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._file as f:
            buf = ""
            while not self._stop.is_set():
                chunk = f.read()
                if not chunk:
                    if self.path.stat().st_size < f.tell():  # rotated: start again at the top
                        f.seek(0)
                    self._stop.wait(self.poll)
                    continue
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    record = parse_line(line)
                    if record is not None:
                        yield record


def parse_line(line: str) -> dict[str, Any] | None:
    """The record a log line carries, or None (another logger's line, or one cut short)."""
    at = line.find(MARKER)
    if at < 0:
        return None
    try:
        record = json.loads(line[at + len(MARKER):])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
