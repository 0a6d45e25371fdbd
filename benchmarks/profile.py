"""Where our terminator's CPU time goes under one benchmark load: py-spy samples `dicomtls serve`
(all threads, native frames off) while benchmarks.clients drives it; prints the functions with the
most samples, by own time (leaf) and by inclusive time.

    .venv/bin/pip install py-spy      # a profiling tool, not a project dependency
    .venv/bin/python benchmarks/profile.py handshakes [--seconds 8] [--gil]
    .venv/bin/python benchmarks/profile.py bulk [--bytes N]
    .venv/bin/python benchmarks/profile.py associations [--conns 1000 --seconds 20] [--ours-cap 1100]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import proxies  # noqa: E402
from benchmarks.run import Sink, run_json  # noqa: E402


def summarize(raw: Path, top: int = 15) -> str:
    """py-spy --format raw: one 'frame;frame;...;leaf count' line per distinct stack."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    out = [f"{total} samples", "", "own time (leaf frames):"]
    out += [f"  {100 * c / total:5.1f} %  {f}" for f, c in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * c / total:5.1f} %  {f}" for f, c in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=["handshakes", "bulk", "associations"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--bytes", type=int, default=2 * 2**30)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--ours-cap", type=int, default=None, help="raise MAX_ASSOCIATIONS (what-if)")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--gil", action="store_true",
                    help="only samples of the thread holding the GIL: where the Python time goes, without the "
                         "waits for the GIL that the default view counts")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        ap.error("py-spy is not installed: .venv/bin/pip install py-spy")
    tmp = Path(tempfile.mkdtemp(prefix="dicomtls-profile-"))
    tls = proxies.Tls.make(tmp)
    sink = Sink(tmp / "sink")
    ours = proxies.start_ours(tmp / "ours", tls, sink.port, max_associations=args.ours_cap)
    raw = tmp / "profile.txt"
    recorder = subprocess.Popen([spy, "record", "--pid", str(ours.pid), "--rate", str(args.rate), "--threads",
                                 "--format", "raw", "--output", str(raw), "--nonblocking",
                                 *(["--gil"] if args.gil else [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let py-spy attach before the load starts (a profile, not a readiness check)
        cpu0 = ours.cpu_seconds()
        if args.scenario == "handshakes":
            res = run_json(["handshakes", "--port", str(ours.port), "--seconds", str(args.seconds)], args.seconds + 60)
        elif args.scenario == "bulk":
            res = run_json(["bulk", "--port", str(ours.port), "--bytes", str(args.bytes)], 600)
        else:
            res = run_json(["associations", "--port", str(ours.port), "--conns", str(args.conns),
                            "--seconds", str(args.seconds)], args.seconds + 240)
        res["terminator_cpu_s"] = ours.cpu_seconds() - cpu0
        res["peak_rss_mb"] = ours.peak_rss_mb()
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes the profile and exits
        try:
            recorder.wait(60)
        except subprocess.TimeoutExpired:
            recorder.kill()
        ours.stop()
        sink.stop()
    print(res)
    if raw.exists():
        print(summarize(raw))
        print(f"\nraw profile: {raw}")
    else:
        print("py-spy wrote no profile:", recorder.stderr.read() if recorder.stderr else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
