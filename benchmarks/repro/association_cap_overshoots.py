"""The live-association cap is checked before the awaits that admit an association, so concurrent
arrivals overshoot it; and the cap (256) is far below the 1,000 associations of benchmark (4).

engine/terminator/server.py, Terminator._handle: `if len(self.live) >= MAX_ASSOCIATIONS` runs, then
`await self._dial(...)` and `await sock_sendall(...)`, and only then `self.live[live.id] = live`. Every
connection that passes the check while others are still dialling is admitted, so with 50 handshakes
in flight about 300 associations go live under a cap of 256 (benchmark 4 saw 299). Counting admitted-
but-not-yet-live associations (or reserving a slot before the first await) makes the cap exact.

    .venv/bin/python -m benchmarks.repro.association_cap_overshoots [--conns 400]

Exit 1 while more associations go live than MAX_ASSOCIATIONS allows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks import proxies
from benchmarks.run import Sink, run_json


def main() -> int:
    from dicomtls.engine.terminator.config import MAX_ASSOCIATIONS

    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=MAX_ASSOCIATIONS + 150)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="repro-cap-"))
    tls = proxies.Tls.make(tmp)
    sink = Sink(tmp / "sink")
    ours = proxies.start_ours(tmp / "ours", tls, sink.port)
    try:
        res = run_json(["associations", "--port", str(ours.port), "--conns", str(args.conns), "--seconds", "2",
                        "--ramp", "50"], 300)
    finally:
        ours.stop()
        sink.stop()
    up = res.get("established", 0)
    print(f"MAX_ASSOCIATIONS = {MAX_ASSOCIATIONS}; {args.conns} tried, {up} went live, {res.get('rejected')} rejected")
    return 1 if up > MAX_ASSOCIATIONS else 0


if __name__ == "__main__":
    sys.exit(main())
