"""Load generators for the benchmark, each run as its own process and printing one JSON line.

    python -m benchmarks.clients bulk --port P --bytes N [--plain]
        One association: A-ASSOCIATE-RQ/AC, then N bytes as P-DATA-TF (1 GiB PDUs) from one 1 MiB
        buffer in a tight sendall loop (OpenSSL encrypts with the GIL released), then A-RELEASE-RQ;
        timed from the first P-DATA byte to the A-RELEASE-RP, so everything sent was received.
    python -m benchmarks.clients handshakes --port P --seconds S [--procs N --threads T]
        New connection each time: TCP, full TLS 1.2 handshake (no resumption: every connection
        uses a fresh session), A-ASSOCIATE-RQ/AC, A-RELEASE-RQ/RP, close. Counts completions.
    python -m benchmarks.clients associations --port P --conns 1000 --seconds 30 [--interval 1]
        asyncio + ssl, one process: opens CONNS associations (at most --ramp handshakes at once),
        then each sends a C-ECHO-RQ every INTERVAL seconds (start times spread over the interval)
        for SECONDS and times each C-ECHO-RSP; then releases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import dul  # noqa: E402

HOST = "127.0.0.1"
CHUNK = 1 << 20
MAX_PDU_BODY = 1 << 30


def client_context() -> ssl.SSLContext:
    """TLS 1.2 with exactly the bcp195-nd suites, no certificate check (loopback, our own cert)."""
    from dicomtls.engine.tlsctx import client_context as policy_context

    return policy_context("bcp195-nd", insecure=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- bulk --------------------------------------------------------------------------------------------

def bulk(port: int, nbytes: int, plain: bool) -> dict:
    raw = socket.create_connection((HOST, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = raw if plain else client_context().wrap_socket(raw)
    s.sendall(dul.associate_rq())
    ac = dul.read_pdu(s)
    if ac[0] != dul.ASSOCIATE_AC:
        raise SystemExit(f"association refused: {ac.hex()}")
    payload = memoryview(os.urandom(CHUNK))
    cpu0, t0 = _cpu(), time.perf_counter()
    left = nbytes
    while left:
        body = min(left, MAX_PDU_BODY)
        s.sendall(dul.p_data_header(body))
        left -= body
        while body:
            k = min(body, CHUNK)
            s.sendall(payload[:k])
            body -= k
    s.sendall(dul.release_rq())
    rp = dul.read_pdu(s)
    t1 = time.perf_counter()
    cpu = _cpu() - cpu0
    if rp[0] != dul.RELEASE_RP:
        raise SystemExit(f"release answered with {rp[:10].hex()}")
    cipher = "" if plain else s.cipher()[0]
    version = "" if plain else s.version()
    s.close()
    secs = t1 - t0
    return {"bytes": nbytes, "seconds": secs, "mb_s": nbytes / secs / 1e6, "client_cpu": cpu,
            "cipher": cipher, "version": version}


# --- handshakes ----------------------------------------------------------------------------------------

def _handshake_worker(port: int, deadline: float, out: list[int], errors: list[str]) -> None:
    ctx = client_context()
    rq = dul.associate_rq()
    n = 0
    while time.time() < deadline:
        try:
            raw = socket.create_connection((HOST, port), timeout=15)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw) as s:  # fresh session: a full handshake each time
                s.sendall(rq)
                ac = dul.read_pdu(s)
                if ac[0] != dul.ASSOCIATE_AC:
                    raise dul.PDUError(f"refused: {ac.hex()}")
                s.sendall(dul.release_rq())
                if dul.read_pdu(s)[0] != dul.RELEASE_RP:
                    raise dul.PDUError("no A-RELEASE-RP")
            n += 1
        except (OSError, ssl.SSLError, dul.PDUError) as exc:
            if len(errors) < 20:
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                errors.append("")
    out.append(n)


def _handshake_proc(port: int, deadline: float, threads: int, q: "multiprocessing.Queue") -> None:
    out: list[int] = []
    errors: list[str] = []
    ts = [threading.Thread(target=_handshake_worker, args=(port, deadline, out, errors)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put((sum(out), errors, _cpu()))


def handshakes(port: int, seconds: float, procs: int, threads: int) -> dict:
    q: multiprocessing.Queue = multiprocessing.Queue()
    t0 = time.time()
    deadline = t0 + seconds
    ps = [multiprocessing.Process(target=_handshake_proc, args=(port, deadline, threads, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.time() - t0
    count = sum(r[0] for r in results)
    errors = [e for r in results for e in r[1]]
    return {"count": count, "seconds": elapsed, "per_s": count / elapsed, "errors": len(errors),
            "error_samples": [e for e in errors if e][:5], "client_cpu": sum(r[2] for r in results)}


# --- many associations ---------------------------------------------------------------------------------

def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


async def _associations(port: int, conns: int, seconds: float, interval: float, ramp: int) -> dict:
    ctx = client_context()
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(ramp)
    start = asyncio.Event()
    state = {"t0": 0.0}
    lat: list[float] = []
    counts = {"established": 0, "rejected": 0, "connect_errors": 0, "echo_errors": 0, "late": 0,
              "released": 0}
    samples: list[str] = []
    setup_done = asyncio.Event()
    pending = {"n": conns}

    def setup_finished() -> None:
        pending["n"] -= 1
        if pending["n"] == 0:
            setup_done.set()

    async def one(i: int) -> None:
        writer = None
        try:
            async with sem:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(HOST, port, ssl=ctx, ssl_handshake_timeout=30), 60)
                    writer.write(dul.associate_rq(calling=f"BENCH{i % 10000}"))
                    ac = await asyncio.wait_for(dul.async_read_pdu(reader), 60)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
                    counts["connect_errors"] += 1
                    if len(samples) < 5:
                        samples.append(f"connect: {type(exc).__name__}: {exc}")
                    return
            if ac[0] != dul.ASSOCIATE_AC:
                counts["rejected"] += 1
                if len(samples) < 5:
                    samples.append(f"rejected: {ac.hex()}")
                return
            counts["established"] += 1
        finally:
            setup_finished()
        try:
            await start.wait()
            due = state["t0"] + (i / conns) * interval
            end = state["t0"] + seconds
            msg = 0
            while due < end:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -interval:
                    counts["late"] += 1
                msg = (msg % 65535) + 1
                t = time.perf_counter()
                writer.write(dul.c_echo_rq(msg))
                rsp = dul.echo_status(await asyncio.wait_for(dul.async_read_pdu(reader), 30))
                lat.append(time.perf_counter() - t)
                if rsp != (msg, 0):
                    counts["echo_errors"] += 1
                due += interval
            writer.write(dul.release_rq())
            rp = await asyncio.wait_for(dul.async_read_pdu(reader), 30)
            if rp[0] == dul.RELEASE_RP:
                counts["released"] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            counts["echo_errors"] += 1
            if len(samples) < 5:
                samples.append(f"echo: {type(exc).__name__}: {exc}")
        finally:
            writer.close()

    t_setup = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(conns)]
    await setup_done.wait()
    setup_s = time.perf_counter() - t_setup
    state["t0"] = loop.time() + 0.5
    start.set()
    cpu0 = _cpu()
    await asyncio.gather(*tasks)
    lat.sort()
    return {"conns": conns, **counts, "echoes": len(lat), "setup_s": setup_s,
            "p50_ms": _percentile(lat, 50) * 1000, "p99_ms": _percentile(lat, 99) * 1000,
            "max_ms": (lat[-1] * 1000) if lat else float("nan"), "client_cpu": _cpu() - cpu0,
            "samples": samples}


def associations(port: int, conns: int, seconds: float, interval: float, ramp: int) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, conns + 100):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return asyncio.run(_associations(port, conns, seconds, interval, ramp))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bulk")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--bytes", type=int, required=True)
    b.add_argument("--plain", action="store_true")
    h = sub.add_parser("handshakes")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--seconds", type=float, default=10)
    h.add_argument("--procs", type=int, default=2)
    h.add_argument("--threads", type=int, default=8)
    a = sub.add_parser("associations")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--conns", type=int, default=1000)
    a.add_argument("--seconds", type=float, default=30)
    a.add_argument("--interval", type=float, default=1.0)
    a.add_argument("--ramp", type=int, default=50)
    args = ap.parse_args(argv)
    if args.cmd == "bulk":
        out = bulk(args.port, args.bytes, args.plain)
    elif args.cmd == "handshakes":
        out = handshakes(args.port, args.seconds, args.procs, args.threads)
    else:
        out = associations(args.port, args.conns, args.seconds, args.interval, args.ramp)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
