"""Where a full handshake's CPU goes, below Python: our terminator and HAProxy under the same handshake load
(benchmarks/clients.py handshakes: new connection, TLS 1.2 RSA-2048, A-ASSOCIATE, A-RELEASE), each sampled
with `perf record -e cpu-clock` (software clock: works where a VM has no hardware counters), then the CPU
per connection (from /proc) split by shared object: libcrypto, libssl, the kernel, libc, libpython, ...

    .venv/bin/python benchmarks/native_profile.py [--seconds 12] [--rounds 2] [--save FILE]

Needs perf (Debian: apt-get install linux-perf). The box is shared by client, sink and terminator, so compare
the two columns of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import proxies
from benchmarks.run import Sink, run_json

GROUPS = [("libcrypto", "libcrypto"), ("libssl", "libssl"), ("kernel", "[kernel"), ("libc", "libc.so"),
          ("Python interpreter", "libpython"), ("Python's C modules", "cpython-3"), ("haproxy", "haproxy")]


def _dso_shares(data: Path) -> dict[str, float]:
    """perf report by shared object: {group: share of samples}."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "--no-children", "-q"],
                         capture_output=True, text=True, check=True).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%"):
            continue
        pct, dso = float(parts[0].rstrip("%")) / 100, " ".join(parts[1:])
        name = next((g for g, needle in GROUPS if needle in dso), "other")
        shares[name] = shares.get(name, 0.0) + pct
    return shares


def profile(which: str, folder: Path, tls: proxies.Tls, sink: Sink, seconds: float) -> dict[str, float]:
    p = proxies.start_ours(folder, tls, sink.port) if which == "ours" else \
        proxies.start_haproxy(folder, tls, sink.port)
    res: dict = {}
    try:
        load = threading.Thread(target=lambda: res.update(run_json(
            ["handshakes", "--port", str(p.port), "--seconds", str(seconds), "--procs", "2", "--threads", "8"],
            seconds + 60)))
        cpu0 = p.cpu_seconds()
        load.start()
        time.sleep(1.0)  # past the load's ramp-up: the sampled window is steady state
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-p", str(p.pid),
                        "-o", str(folder / "perf.data"), "--", "sleep", str(seconds - 2)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        load.join()
        cpu = p.cpu_seconds() - cpu0
    finally:
        p.stop()
    us = 1e6 * cpu / res["count"]
    return {"us_per_conn": us, **{g: s * us for g, s in _dso_shares(folder / "perf.data").items()}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    if not shutil.which("perf"):
        print("perf is missing: apt-get install linux-perf", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="native-"))
    tls = proxies.Tls.make(tmp)
    sink = Sink(tmp / "sink")
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "haproxy": []}
    try:
        for r in range(a.rounds):
            for which in (["ours", "haproxy"] if r % 2 == 0 else ["haproxy", "ours"]):
                runs[which].append(profile(which, tmp / f"{which}-{r}", tls, sink, a.seconds))
                print(f"round {r + 1} {which}: {runs[which][-1]['us_per_conn']:.0f} µs per connection", flush=True)
    finally:
        sink.stop()
    rows = ["us_per_conn"] + [g for g, _ in GROUPS] + ["other"]

    def med(which: str, key: str) -> float:
        return statistics.median(run.get(key, 0.0) for run in runs[which])

    lines = [f"CPU per connection by shared object, µs (median of {a.rounds} rounds of {a.seconds:g} s; perf cpu-clock)",
             "", "| | ours | HAProxy | ours − HAProxy |", "|---|---|---|---|"]
    for key in rows:
        label = "**total**" if key == "us_per_conn" else key
        o, h = med("ours", key), med("haproxy", key)
        if o or h:
            lines.append(f"| {label} | {o:.0f} | {h:.0f} | {o - h:+.0f} |")
    text = "\n".join(lines)
    print(text)
    if a.save:
        a.save.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
