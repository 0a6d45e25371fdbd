"""How long `dicomtls serve PLAN` takes to start (exec to listening) and to reload (SIGHUP to its `reloaded`
record), N times each; prints the median and the range. Run it at two commits to compare.

    .venv/bin/python benchmarks/start_reload.py [N]
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import proxies

n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
tmp = Path(tempfile.mkdtemp(prefix="start-reload-"))
tls = proxies.Tls.make(tmp)
port = proxies.free_port()
plan = tmp / "plan.toml"
plan.write_text(f'backend = "builtin"\n[certificate]\ncert = "{tls.cert}"\nkey = "{tls.key}"\n'
                f'[[service]]\nname = "pacs"\nhost = "127.0.0.1"\nport = {proxies.free_port()}\nae_title = "PACS"\n'
                f'[[virtual_server]]\nname = "store"\nip = "127.0.0.1"\nport = {port}\nrole = "store"\nservice = "pacs"\n'
                f'[builtin]\nstate_dir = "{tmp / "state"}"\n')
env = dict(os.environ, DICOMTLS_HOME=str(tmp / "home"))
starts, reloads = [], []
for _ in range(n):
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "dicomtls.cli.main", "serve", str(plan)], stderr=subprocess.PIPE,
                         text=True, env=env)
    while True:  # readiness: the listener accepts
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            break
        except OSError:
            if p.poll() is not None:
                raise SystemExit(p.stderr.read() if p.stderr else "serve exited")
            time.sleep(0.005)  # poll interval
    starts.append(time.monotonic() - t0)
    assert p.stderr is not None
    t1 = time.monotonic()
    p.send_signal(signal.SIGHUP)
    while json.loads(p.stderr.readline()).get("event") not in ("reloaded", "reload_failed"):
        pass
    reloads.append(time.monotonic() - t1)
    p.send_signal(signal.SIGTERM)
    p.wait(30)


def ms(xs: list[float]) -> str:
    return f"{1000 * statistics.median(xs):.0f} ms ({1000 * min(xs):.0f}–{1000 * max(xs):.0f})"


print(f"start (exec to listening): {ms(starts)}; reload (SIGHUP to reloaded): {ms(reloads)}; {n} runs")
