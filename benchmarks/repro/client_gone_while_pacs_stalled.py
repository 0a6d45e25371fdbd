"""A client that vanishes while the PACS is not reading keeps its PACS connection (and pump thread,
and 512 KiB of buffers) open until idle_timeout (default 15 min).

engine/terminator/pump.py, Pump._loop: once the client->PACS buffer is full (the PACS reads slowly
or not at all), the loop stops reading the TLS socket and, having no event to wait for on it,
unregisters it from poll() ("a side with nothing to wait for is not polled"). The client's RST (or
FIN) is then never seen: the association ends only by idle_timeout, or when the PACS drains 256 KiB.
The idle timeout does not rescue it either: each byte the PACS takes counts as activity. The same
holds the other way round (PACS gone while the client does not read). Registering the idle socket
with events=0 would still report POLLERR/POLLHUP for a reset.

This script: a PACS that answers A-ASSOCIATE-RQ then reads 1 byte/s; a client pushes until held
back, then resets its connection. Expected: the PACS connection closed within 10 s.

    .venv/bin/python -m benchmarks.repro.client_gone_while_pacs_stalled
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.support import abort_close, start_rig, wait_for
from tests.reliability.test_faults import Pusher, SlowPacs, _associate
from tests.support.tlsfiles import make_tls_files


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="repro-stalled-"))
    tls = make_tls_files(tmp / "tls")
    pacs = SlowPacs()
    rig = start_rig(tmp / "t", tls, pacs.port, builtin={"idle_timeout": 60, "drain_timeout": 1})
    try:
        s = _associate(rig.port)
        pusher = Pusher(s)
        samples: list[int] = []
        wait_for(lambda: samples.append(pusher.sent) or (len(samples) > 8 and samples[-1] == samples[-9]), 30,
                 "backpressure", interval=0.25)
        abort_close(s)
        t0 = time.monotonic()
        closed = pacs.peer_closed.wait(10)
        if closed:
            print(f"PACS connection closed {time.monotonic() - t0:.1f} s after the client reset: fixed")
            return 0
        closed = pacs.peer_closed.wait(60)
        print("PACS connection still open 10 s after the client reset; " + (
            f"closed after {time.monotonic() - t0:.0f} s" if closed else
            "still open after 70 s, although idle_timeout is 60 s (the PACS taking a byte now and then counts "
            "as activity, so the dead client's association can live for days)"))
        return 1
    finally:
        pacs.close()
        rig.serve.stop()


if __name__ == "__main__":
    sys.exit(main())
