"""Stopping a process the tests started: SIGTERM, a grace period, then SIGKILL. One home for the sequence."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """Stop `proc` (SIGTERM, then SIGKILL after `grace` seconds) and return its exit status; a process that
    already ended just reports it. A test that needs a clean exit asserts the status is 0."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(5)
