"""The three terminators under test, started on loopback with the same certificate and the same
policy (bcp195-nd: TLS 1.2 only, the four RSA AES-GCM suites from engine/ciphers.py, RFC 7919
ffdhe2048 for the DHE suites, no session tickets, no compression, server cipher order, the same
ECDHE groups), each forwarding to one backend port:

- ours:    `dicomtls serve PLAN` (a generated plan), as a subprocess;
- stunnel: stunnel4 (Debian), foreground, one process with a thread per connection;
- haproxy: HAProxy (Debian), `mode tcp` + `bind ... ssl`, foreground, default threads (one per CPU).

Each Proc knows its pid, so the benchmark can read CPU time (/proc/PID/stat) and peak RSS
(/proc/PID/status VmHWM) of exactly that process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
CURVES = "X25519:P-256:X448:P-521:P-384"  # OpenSSL 3's default group order, which ours uses
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path | None = None, deadline: float = 30.0) -> None:
    """Poll until 127.0.0.1:port accepts (a connect, then close) or the process dies."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}\n{tail}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.02)  # poll interval
    raise RuntimeError(f"nothing listened on {port} within {deadline} s")


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen
    log: Path
    files: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the process (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_mb(self) -> float:
        return self.status_kb("VmHWM") / 1024

    def rss_mb(self) -> float:
        return self.status_kb("VmRSS") / 1024

    def threads(self) -> int:
        return self.status_kb("Threads")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


@dataclass
class Tls:
    """The shared certificate material, in each tool's preferred shape."""

    cert: Path
    key: Path
    dh: Path
    combined: Path  # cert + key + DH parameters (HAProxy crt, stunnel cert)

    @classmethod
    def make(cls, folder: Path) -> "Tls":
        from dicomtls.engine.rehearsal.pairs import make_self_signed
        from dicomtls.engine.terminator.tlsserver import FFDHE2048_PEM

        cert, key, dh, combined = (folder / n for n in ("cert.pem", "key.pem", "dh.pem", "combined.pem"))
        make_self_signed(cert, key, common_name="localhost", key_type="RSA", bits=2048, overwrite=True)
        dh.write_bytes(FFDHE2048_PEM)
        combined.write_bytes(cert.read_bytes() + key.read_bytes() + FFDHE2048_PEM)
        os.chmod(combined, 0o600)
        return cls(cert, key, dh, combined)


def cipher_string() -> str:
    from dicomtls.engine.ciphers import POLICIES

    return POLICIES["bcp195-nd"].openssl_cipher_string


def _spawn(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd)


def start_ours(folder: Path, tls: Tls, backend_port: int, *, max_associations: int | None = None,
               prelude: str = "", idle_timeout: float = 900.0, cpus: str | None = None,
               port: int | None = None) -> Proc:
    """`dicomtls serve PLAN`. `cpus` pins it with taskset (its pump loops follow: one per CPU it may use).
    For what-if runs only: `max_associations` overrides the terminator's built-in cap
    (engine.terminator.admission.MAX_ASSOCIATIONS) and `prelude` is Python run before serving (e.g. to
    try another pump buffer); the product itself is never edited."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()  # a given port: a what-if that shares one listener between processes
    plan = folder / "plan.toml"
    plan.write_text(
        'backend = "builtin"\n'
        f'[certificate]\ncert = "{tls.cert}"\nkey = "{tls.key}"\n'
        '[cipher_policy]\nprofile = "bcp195-nd"\n'
        f'[[service]]\nname = "sink"\nhost = "{LOOPBACK}"\nport = {backend_port}\nae_title = "ANY-SCP"\n'
        f'[[virtual_server]]\nname = "bench"\nip = "{LOOPBACK}"\nport = {port}\nrole = "store"\nservice = "sink"\n'
        f'[builtin]\nstate_dir = "{folder / "state"}"\nidle_timeout = {idle_timeout}\n')
    env = dict(os.environ, DICOMTLS_HOME=str(folder / "home"), PYTHONUNBUFFERED="1")
    if max_associations is not None:
        prelude += f"\nimport dicomtls.engine.terminator.admission as _s; _s.MAX_ASSOCIATIONS = {int(max_associations)}"
    if prelude:
        cmd = [sys.executable, "-c", prelude + "\nimport sys\nfrom dicomtls.engine.terminator.__main__ import main\n"
               "sys.exit(main([sys.argv[1]]))", str(plan)]  # in-process: `dicomtls serve` execs, losing the prelude
    else:
        cmd = [sys.executable, "-m", "dicomtls.cli.main", "serve", str(plan)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]  # taskset execs the command: the pid stays the terminator's
    log = folder / "serve.log"
    p = _spawn(cmd, log, env=env, cwd=REPO)
    wait_port(port, p, log)
    return Proc("ours", port, p, log)


def start_stunnel(folder: Path, tls: Tls, backend_port: int) -> Proc:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "stunnel.conf"
    log = folder / "stunnel.log"
    conf.write_text(
        "foreground = yes\n"
        "pid =\n"
        f"output = {log}\n"
        "debug = notice\n"
        "[dicom]\n"
        f"accept = {LOOPBACK}:{port}\n"
        f"connect = {LOOPBACK}:{backend_port}\n"
        f"cert = {tls.combined}\n"  # cert + key + DH parameters (static DH, as the man page advises)
        "sslVersionMin = TLSv1.2\n"
        "sslVersionMax = TLSv1.2\n"
        f"ciphers = {cipher_string()}\n"
        f"curves = {CURVES}\n"
        "options = NO_TICKET\n"
        "options = CIPHER_SERVER_PREFERENCE\n"
        "options = NO_COMPRESSION\n"
        "socket = l:TCP_NODELAY=1\n"
        "socket = r:TCP_NODELAY=1\n")
    binary = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"
    p = _spawn([binary, str(conf)], folder / "stunnel.stdout")
    wait_port(port, p, log)
    return Proc("stunnel", port, p, log)


def start_haproxy(folder: Path, tls: Tls, backend_port: int, cpus: str | None = None) -> Proc:
    """HAProxy 2.6 with its defaults (a thread per CPU it may use); `cpus` pins it with taskset."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "haproxy.cfg"
    conf.write_text(
        "global\n"
        "  maxconn 5000\n"
        "  tune.ssl.default-dh-param 2048\n"
        "defaults\n"
        "  mode tcp\n"
        "  timeout connect 5s\n"
        "  timeout client 15m\n"
        "  timeout server 15m\n"
        "frontend dicom\n"
        f"  bind {LOOPBACK}:{port} ssl crt {tls.combined} ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2 "
        f"ciphers {cipher_string()} curves {CURVES} no-tls-tickets\n"
        "  default_backend pacs\n"
        "backend pacs\n"
        f"  server sink {LOOPBACK}:{backend_port}\n")
    log = folder / "haproxy.log"
    cmd = ["haproxy", "-db", "-f", str(conf)]
    p = _spawn(["taskset", "-c", cpus, *cmd] if cpus is not None else cmd, log)
    wait_port(port, p, log)
    return Proc("haproxy", port, p, log)


STARTERS = {"ours": start_ours, "stunnel": start_stunnel, "haproxy": start_haproxy}


def versions() -> dict[str, str]:
    def first_line(cmd: list[str], match: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        for line in (out.stdout + out.stderr).splitlines():
            if match in line:
                return line.strip()
        return "?"

    import platform
    import ssl

    return {
        "python": platform.python_version(),
        "openssl (python)": ssl.OPENSSL_VERSION,
        "openssl (system)": first_line(["openssl", "version"], "OpenSSL"),
        "stunnel": first_line([shutil.which("stunnel4") or "stunnel4", "-version"], "stunnel "),
        "haproxy": first_line(["haproxy", "-v"], "HAProxy version"),
        "dcmtk": first_line(["storescu", "--version"], "storescu"),
    }


def machine() -> dict[str, str]:
    import platform

    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            flags = " ".join(f for f in ("aes", "vaes", "pclmulqdq", "avx2", "avx512f") if f in have)
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"nproc": str(os.cpu_count()), "cpu": model, "cpu flags": flags, "kernel": platform.release(),
            "memory": f"{int(mem) // 1024} MiB"}
