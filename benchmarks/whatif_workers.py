"""What-if (not the product): would worker processes sharing one listener (SO_REUSEPORT, man 7 socket) let the
terminator use both cores of this box? Two `dicomtls serve` processes on one port (each its own state dir; the
kernel spreads connections between them) beside one process on every CPU, one pinned to CPU 0, and HAProxy on
every CPU and pinned, in alternating rounds of the handshake load. Prints handshakes per second and per
terminator CPU second (both processes' CPU counted), the all-CPU/pinned ratios, and the two processes' idle RSS.

    .venv/bin/python benchmarks/whatif_workers.py [ROUNDS] [SECONDS]
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import proxies
from benchmarks.run import Sink, rotated, run_json

# bind_listener as shipped, plus SO_REUSEPORT: the second process binds the port the first one holds.
REUSEPORT = """
import ipaddress, socket
import dicomtls.engine.terminator.server as _s
def _bind(cfg):
    family = socket.AF_INET6 if ipaddress.ip_address(cfg.ip).version == 6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((cfg.ip, cfg.port)); s.listen(_s.LISTEN_BACKLOG); s.setblocking(False)
    return s
_s.bind_listener = _bind
"""


def started(proc: proxies.Proc, deadline: float = 30.0) -> None:
    """Readiness of a process whose port another one already answers on: its own `started` record."""
    end = time.monotonic() + deadline
    while '"event": "started"' not in proc.log.read_text(errors="replace"):
        if time.monotonic() > end or not proc.alive():
            raise SystemExit(f"{proc.name} did not start: {proc.log.read_text()[-2000:]}")
        time.sleep(0.05)  # poll interval


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
seconds = sys.argv[2] if len(sys.argv) > 2 else "8"
tmp = Path(tempfile.mkdtemp(prefix="whatif-workers-"))
tls = proxies.Tls.make(tmp)
sink = Sink(tmp / "sink")
pair_port = proxies.free_port()
workers = [proxies.start_ours(tmp / f"worker{i}", tls, sink.port, prelude=REUSEPORT, port=pair_port) for i in (0, 1)]
for w in workers:
    started(w)
idle_rss = sum(w.rss_mb() for w in workers)
single = {"ours": proxies.start_ours(tmp / "ours", tls, sink.port),
          "ours-1core": proxies.start_ours(tmp / "ours1", tls, sink.port, cpus="0"),
          "haproxy": proxies.start_haproxy(tmp / "haproxy", tls, sink.port),
          "haproxy-1core": proxies.start_haproxy(tmp / "haproxy1", tls, sink.port, cpus="0")}
names = ["ours-2proc", *single]
per_s: dict[str, list[float]] = {n: [] for n in names}
per_cpu: dict[str, list[float]] = {n: [] for n in names}
try:
    for r in range(rounds):
        for n in rotated(names, r):
            procs = workers if n == "ours-2proc" else [single[n]]
            cpu0 = sum(p.cpu_seconds() for p in procs)
            out = run_json(["handshakes", "--port", str(procs[0].port), "--seconds", seconds, "--procs", "2",
                            "--threads", "8"], 90)
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            per_s[n].append(out["per_s"])
            per_cpu[n].append(out["count"] / cpu)
            print(f"round {r + 1} {n}: {out['per_s']:.0f}/s, {per_cpu[n][-1]:.0f} per CPU s, {out['errors']} errors",
                  flush=True)
finally:
    for p in [*workers, *single.values()]:
        p.stop()
    sink.stop()


def med(d: dict[str, list[float]], n: str) -> float:
    return statistics.median(d[n])


for n in names:
    print(f"{n:14} {med(per_s, n):6.0f}/s  {med(per_cpu, n):6.0f} per CPU s")
print(f"two processes / one pinned: {med(per_s, 'ours-2proc') / med(per_s, 'ours-1core'):.2f}x "
      f"(one process on every CPU / pinned: {med(per_s, 'ours') / med(per_s, 'ours-1core'):.2f}x; HAProxy "
      f"{med(per_s, 'haproxy') / med(per_s, 'haproxy-1core'):.2f}x); two processes / HAProxy: "
      f"{med(per_s, 'ours-2proc') / med(per_s, 'haproxy'):.2f}x per s, "
      f"{med(per_cpu, 'ours-2proc') / med(per_cpu, 'haproxy'):.2f}x per CPU s; the two processes idle: {idle_rss:.1f} MB")
