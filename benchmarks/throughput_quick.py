"""Quick bulk-throughput check: our terminator against stunnel, same machine, same run.

    python -m benchmarks.throughput_quick [--mib 512] [--rounds 3]

Both terminators get the same RSA-2048 certificate and the bcp195-nd policy (TLS 1.2, the four RSA
AES-GCM suites) and forward to the same raw-PDU DICOM sink (benchmarks.dicom_sink). One client
process per run sends an A-ASSOCIATE-RQ, MiB of P-DATA, then A-RELEASE-RQ, timed until the
A-RELEASE-RP (benchmarks.clients bulk). Rounds alternate which terminator goes first. Prints MB/s
per run, the median per terminator, the ratio ours/stunnel and each terminator's CPU seconds per GB.
The full benchmark (HAProxy, storescu, handshakes, many associations) is benchmarks.run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import proxies  # noqa: E402
from benchmarks.run import Sink, run_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=512, help="MiB per run (default 512)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per terminator (default 3)")
    args = ap.parse_args(argv)
    nbytes = args.mib << 20
    with tempfile.TemporaryDirectory(prefix="dicomtls-tput-") as d:
        tmp = Path(d)
        tls = proxies.Tls.make(tmp)
        sink = Sink(tmp / "sink")
        procs = {}
        try:
            procs = {"ours": proxies.start_ours(tmp / "ours", tls, sink.port),
                     "stunnel": proxies.start_stunnel(tmp / "stunnel", tls, sink.port)}
            rates: dict[str, list[float]] = {n: [] for n in procs}
            cpu: dict[str, list[float]] = {n: [] for n in procs}
            for r in range(args.rounds):
                for name in (list(procs) if r % 2 == 0 else list(procs)[::-1]):
                    p = procs[name]
                    c0 = p.cpu_seconds()
                    res = run_json(["bulk", "--port", str(p.port), "--bytes", str(nbytes)], 60 + nbytes / 20e6)
                    if "error" in res:
                        print(f"{name}: {res['error']}", file=sys.stderr)
                        return 1
                    rates[name].append(res["mb_s"])
                    cpu[name].append((p.cpu_seconds() - c0) / (nbytes / 1e9))
                    print(f"round {r + 1} {name:8} {res['mb_s']:7.0f} MB/s  {res['version']} {res['cipher']}")
        finally:
            for p in procs.values():
                p.stop()
            sink.stop()
    med = {n: statistics.median(v) for n, v in rates.items()}
    for n in procs:
        print(f"{n:8} median {med[n]:7.0f} MB/s   terminator CPU {statistics.median(cpu[n]):.2f} s/GB")
    print(f"ratio ours/stunnel: {med['ours'] / med['stunnel']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
