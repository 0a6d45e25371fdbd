"""`dicomtls serve PLAN` as a real subprocess, and polling with a deadline (never a fixed sleep).

Shared by the terminator tests and the reliability suite; the latter adds process metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.processes import stop as stop_process

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.01) -> Any:
    """Poll until predicate() returns something true, and return it; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # poll interval


class ServeProcess:
    """`dicomtls serve PLAN` in a subprocess; its JSON log lines collected from stderr."""

    def __init__(self, plan_path: Path, home: Path, env: dict | None = None) -> None:
        self.plan = plan_path
        self.env = dict(os.environ, DICOMTLS_HOME=str(home), **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "dicomtls.cli.main", "serve", str(plan_path)], cwd=REPO,
                                     env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.records: list[dict] = []
        self.other: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.other.append(line)

    def find(self, name: str, after: int = 0, **match: Any) -> list[dict]:
        return [r for r in self.records[after:] if r.get("event") == name
                and all(r.get(k) == v for k, v in match.items())]

    def event(self, name: str, timeout: float = 15.0, after: int = 0, **match: Any) -> dict:
        """The first record of event `name` (with these fields) since index `after`, waiting for it."""
        def look() -> dict | None:
            exited = self.proc.poll() is not None and not self._reader.is_alive()
            hits = self.find(name, after, **match)
            if hits:
                return hits[0]
            if exited:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {''.join(self.other)[-2000:]}")
            return None

        return wait_for(look, timeout, f"serve event {name} {match}")

    def stop(self) -> int:
        stop_process(self.proc, grace=30)
        self._reader.join(5)
        return self.proc.returncode
