"""What-if for the pump's buffers (not the product): the same terminator with its two per-association
buffers as shipped (256 KiB bytearrays, zero-filled so fully resident), as 64 KiB bytearrays, and as
256 KiB anonymous mmaps (pages become resident only when touched). Measures 2 GiB bulk throughput
and 1,000 echoing associations (cap raised) for each.

    .venv/bin/python benchmarks/whatif_buffers.py
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import proxies
from benchmarks.run import Sink, run_json

MMAP = """
import mmap, dicomtls.engine.terminator.buffers as _p
def _init(self, size):
    self.buf = mmap.mmap(-1, size); self.mv = memoryview(self.buf); self.start = self.end = 0
_p.Buffer.__init__ = _init
"""
SMALL = """
import dicomtls.engine.terminator.pump as _p
_d = list(_p.Pump.__init__.__defaults__); _d[-1] = 64 * 1024; _p.Pump.__init__.__defaults__ = tuple(_d)
"""
variants = {"as shipped (256 KiB bytearray x2)": "", "64 KiB bytearray x2": SMALL, "256 KiB mmap x2": MMAP}
tmp = Path(tempfile.mkdtemp(prefix="whatif-"))
tls = proxies.Tls.make(tmp)
sink = Sink(tmp / "sink")
for name, pre in variants.items():  # noqa: E305
    out = {}
    for kind in ("bulk", "assoc"):
        p = proxies.start_ours(tmp / (name[:10].replace(" ", "_") + kind), tls, sink.port, max_associations=1100, prelude=pre)
        if kind == "bulk":
            r = run_json(["bulk", "--port", str(p.port), "--bytes", str(2 * 2**30)], 300)
            out["bulk MB/s"] = round(r.get("mb_s", 0))
        else:
            r = run_json(["associations", "--port", str(p.port), "--conns", "1000", "--seconds", "20"], 300)
            out.update({"up": r.get("established"), "p50": round(r.get("p50_ms", 0), 2),
                        "p99": round(r.get("p99_ms", 0), 2), "peak RSS MB": round(p.peak_rss_mb())})
        p.stop()
    print(name, json.dumps(out), flush=True)
sink.stop()
