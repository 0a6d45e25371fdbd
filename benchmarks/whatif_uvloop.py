"""What-if (not the product): the terminator on uvloop's event loop instead of asyncio's, beside the shipped one
and HAProxy, in alternating rounds of the handshake load; prints handshakes per terminator CPU second.

    .venv/bin/pip install uvloop && .venv/bin/python benchmarks/whatif_uvloop.py [ROUNDS] [SECONDS]

The issue that asked for it (15) named uvloop because its TLS is Cython; our pump loop drives OpenSSL on its
own sockets and uses asyncio only to watch one epoll descriptor, so only the loop itself would change.
"""

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import proxies
from benchmarks.run import Sink, rotated, run_json

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
seconds = sys.argv[2] if len(sys.argv) > 2 else "8"
names = ["ours", "uvloop", "haproxy"]
tmp = Path(tempfile.mkdtemp(prefix="whatif-uvloop-"))
tls = proxies.Tls.make(tmp)
sink = Sink(tmp / "sink")
procs = {"ours": proxies.start_ours(tmp / "ours", tls, sink.port),
         "uvloop": proxies.start_ours(tmp / "uvloop", tls, sink.port, prelude="import uvloop; uvloop.install()"),
         "haproxy": proxies.start_haproxy(tmp / "haproxy", tls, sink.port)}
per_cpu: dict[str, list[float]] = {n: [] for n in names}
try:
    for r in range(rounds):
        for n in rotated(names, r):
            p = procs[n]
            cpu0 = p.cpu_seconds()
            out = run_json(["handshakes", "--port", str(p.port), "--seconds", seconds, "--procs", "2", "--threads", "8"],
                           90)
            per_cpu[n].append(out["count"] / (p.cpu_seconds() - cpu0))
            print(f"round {r + 1} {n}: {per_cpu[n][-1]:.0f} handshakes per CPU s, {out['per_s']:.0f}/s, "
                  f"{out['errors']} errors", flush=True)
finally:
    for p in procs.values():
        p.stop()
    sink.stop()
for n in ("ours", "uvloop"):
    ratios = [a / b for a, b in zip(per_cpu[n], per_cpu["haproxy"])]
    print(f"{n} / haproxy per round: {[round(x, 3) for x in ratios]}, median {statistics.median(ratios):.3f}")
print("uvloop / ours per round:", [round(a / b, 3) for a, b in zip(per_cpu["uvloop"], per_cpu["ours"])])
