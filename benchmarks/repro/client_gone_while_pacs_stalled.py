"""A client that vanishes while the PACS is not reading keeps its PACS connection (and pump thread,
and 512 KiB of buffers) open until idle_timeout (default 15 min).

engine/terminator/pump.py, Pump._loop: once the client->PACS buffer is full (the PACS reads slowly
or not at all), the loop stops reading the TLS socket and, having no event to wait for on it,
unregisters it from poll() ("a side with nothing to wait for is not polled"). The client's RST (or
FIN) is then never seen: the association ends only at idle_timeout, or when the PACS drains 256 KiB.
The same holds the other way round (PACS gone while the client does not read). Registering the idle
socket with events=0 would still report POLLERR/POLLHUP for a reset.

This script: a PACS that answers A-ASSOCIATE-RQ then reads 1 byte/s; a client pushes until held
back, then resets its connection. Expected: within 10 s the terminator ends the association (its
log record) and closes both of its sockets. (The slow PACS itself only notices the reset once it
has read what is queued in its receive buffer, so it is not the judge.)

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
        socks_before = rig.serve.sockets()
        abort_close(s)
        t0 = time.monotonic()
        try:
            rec = rig.serve.event("association", timeout=10)
            wait_for(lambda: rig.serve.sockets() <= socks_before - 2, 5, "both association sockets closed")
            print(f"association ended as {rec['end']!r} {time.monotonic() - t0:.1f} s after the client reset, "
                  "both sockets closed: fixed")
            return 0
        except AssertionError:
            pass
        try:
            rig.serve.event("association", timeout=60)
            print(f"association ended only {time.monotonic() - t0:.0f} s after the client reset")
        except AssertionError:
            print("association still live 70 s after the client reset (idle_timeout is 60 s)")
        return 1
    finally:
        pacs.close()
        rig.serve.stop()


if __name__ == "__main__":
    sys.exit(main())
