"""1,000 associations cost about 600 MB of RSS: each pump owns two 256 KiB bytearray buffers, which
CPython zero-fills, so all 512 KiB are resident from the start (engine/terminator/buffers.py, Buffer).
Target: peak RSS < 150 MB with 1,000 echoing associations. Anonymous mmap buffers of the
same size are committed only when touched (benchmarks/whatif_buffers.py: 105 MB, same throughput).

    .venv/bin/python -m benchmarks.repro.pump_buffers_resident [--conns 1000]

Exit 1 while the terminator's peak RSS (VmHWM) is 150 MB or more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks import proxies
from benchmarks.run import Sink, run_json

LIMIT_MB = 150


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="repro-rss-"))
    tls = proxies.Tls.make(tmp)
    sink = Sink(tmp / "sink")
    ours = proxies.start_ours(tmp / "ours", tls, sink.port)
    try:
        res = run_json(["associations", "--port", str(ours.port), "--conns", str(args.conns), "--seconds", "3"], 300)
        peak = ours.peak_rss_mb()
    finally:
        ours.stop()
        sink.stop()
    print(f"{res.get('established')} of {args.conns} associations up; terminator peak RSS {peak:.0f} MB "
          f"(target < {LIMIT_MB} MB)")
    return 1 if peak >= LIMIT_MB else 0


if __name__ == "__main__":
    sys.exit(main())
