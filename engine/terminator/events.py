"""The terminator's log: one JSON object per line, per association and per state change.

`serve` writes the lines to stderr (systemd's journal picks them up); the wizard's in-process
terminator writes none to the terminal (Textual owns it) and watches them through subscribe().
Every line also goes to the Python logger, hence to the log file when file logging is set up.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from typing import IO, Any, Callable

log = logging.getLogger("dicomtls.terminator")

Subscriber = Callable[[dict[str, Any]], None]


class EventLog:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(record)` for every record from now on; returns an unsubscribe function."""
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event, **fields}
        line = json.dumps(record, default=str)
        with self._lock:
            subs = list(self._subs)
            if self.stream is not None:
                try:
                    self.stream.write(line + "\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
        log.info(line)
        for cb in subs:
            try:
                cb(dict(record))
            except Exception:  # a subscriber's bug must not stop the terminator
                log.exception("event subscriber failed")
        return record
