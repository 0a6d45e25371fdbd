"""SIGHUP sent as soon as `dicomtls serve` has logged "started" kills it.

serve() emits "started" from Terminator.start(), then installs cert/runtime files and the pid file,
and only then calls loop.add_signal_handler(SIGHUP, ...) (engine/terminator/runner.py, _serve). In
that window SIGHUP still has its default disposition (terminate), so a reload requested right after
start (systemd ExecReload, `dicomtls apply` right after `serve` came up, a test) ends the service
instead of reloading it.

    .venv/bin/python -m benchmarks.repro.sighup_right_after_start [--tries 20]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks.dicom_sink import SinkHandle
from tests.reliability.support import Serve, write_plan
from tests.support.peers import free_port
from tests.support.tlsfiles import make_tls_files


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="repro-sighup-"))
    tls = make_tls_files(tmp / "tls")
    sink = SinkHandle()
    died = 0
    for i in range(args.tries):
        folder = tmp / f"run{i}"
        folder.mkdir()
        port = free_port()
        plan = write_plan(folder / "plan.toml", tls.server_cert, tls.server_key, port, sink.port)
        serve = Serve(plan, folder / "home", port)  # returns once "started" was logged
        serve.signal(signal.SIGHUP)
        try:
            serve.event("reloaded", timeout=5)
            outcome = "reloaded"
        except AssertionError:
            outcome = "alive, no reload" if serve.alive() else f"died (exit {serve.proc.poll()})"
            died += not serve.alive()
        serve.stop()
        print(f"try {i + 1}: {outcome}")
    sink.stop()
    print(f"{died} of {args.tries} terminators were killed by a SIGHUP sent right after 'started'")
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
