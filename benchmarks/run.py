"""Our terminator beside stunnel and HAProxy, on loopback, in one run.

    .venv/bin/python benchmarks/run.py            # full run (about 9 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # smoke run (about 2 minutes)
    .venv/bin/python benchmarks/run.py --only bulk,handshakes --save /tmp/bench.md

Each terminator gets the same certificate (RSA 2048, self-signed), the same policy (bcp195-nd) and
the same sink; every scenario starts all of them afresh (so peak RSS belongs to that scenario) and
runs them in alternating rounds (the order rotates each round). Scenarios:

  bulk          a TLS client pushes --bytes (2 GiB) through one association into a discarding sink: MB/s
                and terminator CPU seconds per GB; baselines: the client straight into a Python TLS
                sink, and in plain TCP into the sink (what the client and sink can do without a proxy)
  dicom         storescu +tls sends 200 objects of 3 MB into DCMTK storescp --ignore: objects/s
                (baseline: storescu straight into storescp +tls)
  handshakes    new connection each time: full TLS 1.2 handshake (RSA 2048) + A-ASSOCIATE-RQ/AC +
                A-RELEASE: per second, and per terminator CPU second
  associations  1,000 concurrent associations, each a C-ECHO every second for 30 s: p50/p99 echo
                latency, peak RSS (VmHWM) and threads of each terminator. While the shipped cap
                (MAX_ASSOCIATIONS) is below the connection count, "ours-uncapped" also runs: the
                same code with the cap raised (a what-if, not the product).

The handshake scenario also runs ours and HAProxy pinned to one CPU (taskset -c 0), to show what the
second core brings.

Targets: issue 6 (against stunnel): >= 1.0x on bulk, >= 0.8x on handshakes, <= 1.5x stunnel's p99 on
associations with peak RSS < 150 MB. Issue 15 (against HAProxy): >= 0.8x handshakes per s and per CPU
second, p99 <= 2x with peak RSS <= 60 MB and bounded threads, bulk >= 1.0x with CPU per GB <= 1.0x,
all CPUs >= 1.7x one. benchmarks/RESULTS.md has the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import proxies  # noqa: E402
from benchmarks.proxies import LOOPBACK, REPO, Proc, Tls, free_port, wait_port  # noqa: E402

PY = sys.executable
SCENARIOS = ("bulk", "dicom", "handshakes", "associations")
TERMINATORS = ("ours", "stunnel", "haproxy")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- helpers -------------------------------------------------------------------------------------------

def run_json(args: list[str], timeout: float) -> dict[str, Any]:
    """Run a benchmarks.clients command; its last stdout line is JSON. Failures become {"error": ...}."""
    try:
        out = subprocess.run([PY, "-m", "benchmarks.clients", *args], capture_output=True, text=True,
                             timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip()[-500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


class Sink:
    """benchmarks.dicom_sink as a subprocess (asyncio by default)."""

    def __init__(self, folder: Path, *extra: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.err = open(folder / "sink.err", "wb")
        self.proc = subprocess.Popen([PY, "-m", "benchmarks.dicom_sink", *extra], stdout=subprocess.PIPE,
                                     stderr=self.err, cwd=REPO, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("LISTENING"):
            raise RuntimeError(f"sink did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()


class Storescp:
    def __init__(self, folder: Path, tls: Tls | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = ["storescp", "--ignore", "-aet", "STORESCP"]
        if tls is not None:
            cmd += ["+tls", str(tls.key), str(tls.cert), "-ic"]
        cmd.append(str(self.port))
        self.out = open(folder / "storescp.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.out.close()


def start_terminators(names: list[str], folder: Path, tls: Tls, backend_port: int,
                      ours_cap: int | None = None) -> dict[str, Proc]:
    procs: dict[str, Proc] = {}
    try:
        for name in names:
            if name == "ours-uncapped":
                procs[name] = proxies.start_ours(folder / name, tls, backend_port, max_associations=ours_cap)
            elif name == "ours-1core":
                procs[name] = proxies.start_ours(folder / name, tls, backend_port, cpus="0")
            elif name == "haproxy-1core":
                procs[name] = proxies.start_haproxy(folder / name, tls, backend_port, cpus="0")
            else:
                procs[name] = proxies.STARTERS[name](folder / name, tls, backend_port)
    except BaseException:
        for p in procs.values():
            p.stop()
        raise
    return procs


def stop_all(procs: dict[str, Proc]) -> None:
    for p in procs.values():
        p.stop()


def rotated(items: list[str], r: int) -> list[str]:
    k = r % len(items)
    return items[k:] + items[:k]


class RssSampler:
    """Samples VmRSS and the thread count of a process every 0.5 s (VmHWM gives the exact peak)."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.max_threads = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.max_threads = max(self.max_threads, self.proc.threads())
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._t.join(2)


# --- scenarios -----------------------------------------------------------------------------------------

def bench_bulk(cfg: argparse.Namespace, tmp: Path, tls: Tls, names: list[str]) -> dict[str, list[dict]]:
    sink = Sink(tmp / "bulk-sink")
    tls_sink = Sink(tmp / "bulk-tls-sink", "--tls", str(tls.cert), str(tls.key))
    procs = start_terminators(names, tmp / "bulk", tls, sink.port)
    results: dict[str, list[dict]] = {n: [] for n in [*names, "direct TLS (no proxy)", "plain TCP (no proxy)"]}
    timeout = 60 + cfg.bytes / 20e6
    try:
        for r in range(cfg.rounds):
            for name in rotated(list(results), r):
                if name == "direct TLS (no proxy)":
                    res = run_json(["bulk", "--port", str(tls_sink.port), "--bytes", str(cfg.bytes)], timeout)
                elif name == "plain TCP (no proxy)":
                    res = run_json(["bulk", "--port", str(sink.port), "--bytes", str(cfg.bytes), "--plain"], timeout)
                else:
                    p = procs[name]
                    cpu0 = p.cpu_seconds()
                    res = run_json(["bulk", "--port", str(p.port), "--bytes", str(cfg.bytes)], timeout)
                    res["proxy_cpu_s_per_gb"] = (p.cpu_seconds() - cpu0) / (cfg.bytes / 1e9)
                    res["peak_rss_mb"] = p.peak_rss_mb()
                results[name].append(res)
                log(f"bulk round {r + 1} {name}: " + (f"{res['mb_s']:.0f} MB/s" if "mb_s" in res else res["error"]))
    finally:
        stop_all(procs)
        sink.stop()
        tls_sink.stop()
    return results


def _storescu(port: int, files: list[Path], timeout: float) -> dict[str, Any]:
    cmd = ["storescu", "-v", "+tla", "-ic", "-aet", "BUTTERFLY", "-aec", "STORESCP", LOOPBACK, str(port),
           *map(str, files)]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"storescu timed out after {timeout:.0f} s"}
    secs = time.perf_counter() - t0
    ok = (out.stdout + out.stderr).count("Received Store Response (Success)")
    if out.returncode != 0 or ok != len(files):
        return {"error": f"storescu exit {out.returncode}, {ok}/{len(files)} stored: "
                         f"{(out.stderr or out.stdout).strip()[-300:]}"}
    return {"objects": ok, "seconds": secs, "objects_s": ok / secs,
            "mb_s": sum(f.stat().st_size for f in files) / secs / 1e6}


def bench_dicom(cfg: argparse.Namespace, tmp: Path, tls: Tls, names: list[str]) -> dict[str, list[dict]]:
    from benchmarks.dicomfiles import make_image

    folder = tmp / "dicom"
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "image.dcm"
    make_image(image, cfg.object_bytes)
    files = [image] * cfg.objects  # the same 3 MB object, stored N times on one association
    scp = Storescp(folder / "scp")
    scp_tls = Storescp(folder / "scp-tls", tls)
    procs = start_terminators(names, folder, tls, scp.port)
    results: dict[str, list[dict]] = {n: [] for n in [*names, "direct (storescp +tls)"]}
    try:
        for r in range(cfg.rounds):
            for name in rotated(list(results), r):
                port = scp_tls.port if name.startswith("direct") else procs[name].port
                cpu0 = procs[name].cpu_seconds() if name in procs else 0.0
                res = _storescu(port, files, 120 + cfg.objects * cfg.object_bytes / 5e6)
                if name in procs:
                    res["proxy_cpu_s"] = procs[name].cpu_seconds() - cpu0
                    res["peak_rss_mb"] = procs[name].peak_rss_mb()
                results[name].append(res)
                log(f"dicom round {r + 1} {name}: "
                    + (f"{res['objects_s']:.1f} objects/s" if "objects_s" in res else res["error"]))
    finally:
        stop_all(procs)
        scp.stop()
        scp_tls.stop()
    return results


def bench_handshakes(cfg: argparse.Namespace, tmp: Path, tls: Tls, names: list[str]) -> dict[str, list[dict]]:
    sink = Sink(tmp / "hs-sink")
    if len(os.sched_getaffinity(0)) > 1:  # the same, pinned to one CPU: does it use the cores it has?
        names = [*names, *(f"{n}-1core" for n in ("ours", "haproxy") if n in names)]
    procs = start_terminators(names, tmp / "handshakes", tls, sink.port)
    results: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for r in range(cfg.rounds):
            for name in rotated(names, r):
                p = procs[name]
                cpu0 = p.cpu_seconds()
                res = run_json(["handshakes", "--port", str(p.port), "--seconds", str(cfg.hs_seconds),
                                "--procs", "2", "--threads", "8"], cfg.hs_seconds + 60)
                if "count" in res:
                    cpu = p.cpu_seconds() - cpu0
                    res["proxy_cpu_s"] = cpu
                    res["per_cpu_s"] = res["count"] / cpu if cpu else float("nan")
                    res["peak_rss_mb"] = p.peak_rss_mb()
                results[name].append(res)
                log(f"handshakes round {r + 1} {name}: "
                    + (f"{res['per_s']:.0f}/s, {res['errors']} errors" if "per_s" in res else res["error"]))
    finally:
        stop_all(procs)
        sink.stop()
    return results


def bench_associations(cfg: argparse.Namespace, tmp: Path, tls: Tls, names: list[str]) -> dict[str, list[dict]]:
    sink = Sink(tmp / "assoc-sink")
    runs = list(names)
    if "ours" in names and cfg.ours_cap:
        runs.insert(runs.index("ours") + 1, "ours-uncapped")
    results: dict[str, list[dict]] = {n: [] for n in runs}
    try:
        for r in range(cfg.assoc_rounds):
            for name in rotated(runs, r):
                # One terminator at a time, started fresh: its VmHWM is this run's peak.
                procs = start_terminators([name], tmp / f"assoc-{r}", tls, sink.port, ours_cap=cfg.ours_cap)
                p = procs[name]
                sampler = RssSampler(p)
                cpu0 = p.cpu_seconds()
                try:
                    res = run_json(["associations", "--port", str(p.port), "--conns", str(cfg.conns),
                                    "--seconds", str(cfg.assoc_seconds)], cfg.assoc_seconds + 240)
                    res["peak_rss_mb"] = p.peak_rss_mb()
                    res["proxy_cpu_s"] = p.cpu_seconds() - cpu0
                    res["alive"] = p.alive()
                finally:
                    sampler.stop()
                    res["max_threads"] = sampler.max_threads
                    stop_all(procs)
                results[name].append(res)
                log(f"associations round {r + 1} {name}: " + (
                    f"{res['established']}/{cfg.conns} up, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
                    f"peak RSS {res['peak_rss_mb']:.0f} MB" if "p99_ms" in res else res.get("error", "?")))
    finally:
        sink.stop()
    return results


# --- reporting -----------------------------------------------------------------------------------------

def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return _fmt(med)
    return f"{_fmt(med)} ({_fmt(min(values))}–{_fmt(max(values))})"


def _fmt(v: float) -> str:
    if v != v:  # NaN
        return "n/a"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _vals(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if key in r and isinstance(r[key], (int, float))]


def _ratio(results: dict[str, list[dict]], key: str, a: str = "ours", b: str = "stunnel") -> str:
    va, vb = _vals(results.get(a, []), key), _vals(results.get(b, []), key)
    if not va or not vb or not statistics.median(vb):
        return "n/a"
    return f"{statistics.median(va) / statistics.median(vb):.3g}×"


def _errors(runs: list[dict]) -> str:
    errs = [r["error"] for r in runs if "error" in r]
    return f"{len(errs)} failed: {errs[0][:120]}" if errs else ""


def table(title: str, results: dict[str, list[dict]], columns: list[tuple[str, str]],
          ratio_keys: list[tuple[str, str]]) -> str:
    lines = [f"### {title}", "", "| terminator | " + " | ".join(c[1] for c in columns) + " | notes |",
             "|---|" + "---|" * (len(columns) + 1)]
    for name, runs in results.items():
        cells = [summary(_vals(runs, key)) for key, _ in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_errors(runs)} |")
    lines.append("")
    for key, label in ratio_keys:
        lines.append(f"- ours / stunnel, {label}: **{_ratio(results, key)}**"
                     + (f" (ours / haproxy: {_ratio(results, key, b='haproxy')})" if "haproxy" in results else ""))
    lines.append("")
    return "\n".join(lines)


def report(cfg: argparse.Namespace, all_results: dict[str, dict[str, list[dict]]]) -> str:
    out = ["## Results", "", "Values: median (min–max) over the rounds.", ""]
    if "bulk" in all_results:
        res = all_results["bulk"]
        ciphers = sorted({f"{r.get('version')} {r.get('cipher')}" for runs in res.values() for r in runs if r.get("cipher")})
        out.append(table(f"1. Bulk throughput: {cfg.bytes / 2**30:g} GiB per run, {cfg.rounds} rounds", res,
                         [("mb_s", "MB/s"), ("proxy_cpu_s_per_gb", "terminator CPU s per GB"),
                          ("client_cpu", "client CPU s"), ("peak_rss_mb", "peak RSS MB")],
                         [("mb_s", "throughput"), ("proxy_cpu_s_per_gb", "CPU per GB (lower is better)")]))
        out.append(f"Negotiated: {', '.join(ciphers)}.\n")
    if "dicom" in all_results:
        out.append(table(f"2. DICOM: storescu +tls, {cfg.objects} objects of {cfg.object_bytes / 1e6:.1f} MB into "
                         f"storescp --ignore, {cfg.rounds} rounds", all_results["dicom"],
                         [("objects_s", "objects/s"), ("mb_s", "MB/s"), ("proxy_cpu_s", "terminator CPU s"),
                          ("peak_rss_mb", "peak RSS MB")], [("objects_s", "objects/s")]))
    if "handshakes" in all_results:
        out.append(table(f"3. Full handshakes (RSA 2048, TLS 1.2, new connection + A-ASSOCIATE + A-RELEASE each), "
                         f"{cfg.hs_seconds:g} s per run, 16 client threads, {cfg.rounds} rounds",
                         all_results["handshakes"],
                         [("per_s", "per second"), ("per_cpu_s", "per terminator CPU second"),
                          ("errors", "client errors"), ("peak_rss_mb", "peak RSS MB")],
                         [("per_s", "handshakes/s"), ("per_cpu_s", "handshakes per CPU second")]))
        for name in ("ours", "haproxy"):
            if f"{name}-1core" in all_results["handshakes"]:
                ratio = _ratio(all_results["handshakes"], "per_s", a=name, b=f"{name}-1core")
                out.append(f"- {name} on every CPU / {name} pinned to one (`taskset -c 0`), handshakes/s"
                           + (" (target ≥ 1.7)" if name == "ours" else "") + f": **{ratio}**")
        out.append("")
    if "associations" in all_results:
        out.append(table(f"4. {cfg.conns} concurrent associations, C-ECHO each every second for "
                         f"{cfg.assoc_seconds:g} s, {cfg.assoc_rounds} round(s)", all_results["associations"],
                         [("established", "associations up"), ("rejected", "rejected"), ("echoes", "echoes"),
                          ("echo_errors", "echo errors"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                          ("max_ms", "max ms"), ("peak_rss_mb", "peak RSS MB"), ("max_threads", "threads"),
                          ("proxy_cpu_s", "CPU s")],
                         [("p99_ms", "p99 latency (target ≤ 1.5)")]))
        if "ours-uncapped" in all_results["associations"]:
            ratio = _ratio(all_results["associations"], "p99_ms", a="ours-uncapped")
            out.append(f"- ours-uncapped / stunnel, p99: **{ratio}**\n")
    return "\n".join(out)


def machine_section() -> str:
    lines = ["## Machine", ""]
    for k, v in {**proxies.machine(), **proxies.versions()}.items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes and fewer rounds (a smoke run)")
    ap.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    ap.add_argument("--terminators", default=",".join(TERMINATORS), help="comma-separated: ours,stunnel,haproxy")
    ap.add_argument("--rounds", type=int, help="rounds for bulk, dicom and handshakes (default 3; quick 2)")
    ap.add_argument("--bytes", type=int, help="bytes per bulk run (default 2 GiB; quick 256 MiB)")
    ap.add_argument("--conns", type=int, help="concurrent associations (default 1000; quick 300)")
    ap.add_argument("--ours-cap", type=int, default=None,
                    help="also run 'ours-uncapped' with MAX_ASSOCIATIONS raised to this (default: conns + 100 if the "
                         "shipped cap is below conns, else skip; 0: skip)")
    ap.add_argument("--save", type=Path, help="also write the markdown report (machine + tables) to this file")
    ap.add_argument("--json", type=Path, help="also write the raw results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, configs)")
    cfg = ap.parse_args(argv)
    quick = cfg.quick
    cfg.rounds = cfg.rounds or (2 if quick else 3)
    cfg.bytes = cfg.bytes or ((256 if quick else 2048) * 2**20)
    cfg.objects = 40 if quick else 200
    cfg.object_bytes = 3 * 10**6
    cfg.hs_seconds = 3.0 if quick else 8.0
    cfg.conns = cfg.conns or (300 if quick else 1000)
    cfg.assoc_seconds = 10.0 if quick else 30.0
    cfg.assoc_rounds = 1 if quick else 2
    if cfg.ours_cap is None:
        from dicomtls.engine.terminator.config import MAX_ASSOCIATIONS

        # The what-if only matters while the shipped cap is below the connection count.
        cfg.ours_cap = cfg.conns + 100 if MAX_ASSOCIATIONS < cfg.conns else 0
    only = [s.strip() for s in (cfg.only or ",".join(SCENARIOS)).split(",") if s.strip()]
    bad = [s for s in only if s not in SCENARIOS]
    names = [t.strip() for t in cfg.terminators.split(",") if t.strip()]
    if bad or any(n not in TERMINATORS for n in names):
        ap.error(f"unknown scenario/terminator: {bad or names}; scenarios are {', '.join(SCENARIOS)}")
    for tool in ("stunnel4", "haproxy", "storescu", "storescp"):
        if shutil.which(tool) is None and not (tool == "stunnel4" and shutil.which("stunnel")):
            ap.error(f"{tool} is not installed (apt-get install stunnel4 haproxy dcmtk)")

    tmp = Path(tempfile.mkdtemp(prefix="dicomtls-bench-"))
    log(f"working folder {tmp}")
    tls = Tls.make(tmp)
    runners: dict[str, Callable] = {"bulk": bench_bulk, "dicom": bench_dicom, "handshakes": bench_handshakes,
                                    "associations": bench_associations}
    all_results: dict[str, dict[str, list[dict]]] = {}
    t0 = time.time()
    try:
        for scenario in only:
            log(f"--- {scenario}")
            all_results[scenario] = runners[scenario](cfg, tmp, tls, names)
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
    finally:
        if not cfg.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    text = (machine_section() + "\n" + report(cfg, all_results)
            + f"\nCommand: `{' '.join(['benchmarks/run.py', *(argv if argv is not None else sys.argv[1:])])}`, "
              f"{time.time() - t0:.0f} s wall.\n")
    print(text)
    if cfg.save:
        cfg.save.write_text(text)
    if cfg.json:
        cfg.json.write_text(json.dumps({"config": {k: str(v) for k, v in vars(cfg).items()},
                                        "results": all_results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
