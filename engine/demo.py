"""A rehearsal environment on loopback: `dicomtls --demo`.

Everything a first run needs, on a machine with nothing else installed: an isolated DICOMTLS_HOME in
a temp folder, a generated test pair named like Butterfly's, a demo PACS (pynetdicom Verification +
Storage SCP on 127.0.0.1), and either the built-in terminator (started in-process after apply) or
the NITRO simulator. Used by the wizard's --demo and by tests; it knows nothing about the wizard.

Built-in backend: apply is the real one, so it starts a background `dicomtls serve` (state and logs
in the demo folder); stop() ends that process, so a rehearsal leaves nothing running.

NetScaler backend: the NITRO simulator only simulates the ADC's management API and carries no DICOM
traffic. So that the echo ladder still runs end to end, after apply the demo stands the built-in
terminator (in this process) in for the ADC's data plane on the same VIP and port, and says so.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.plan import (DEFAULT_CALLING_AE, DEFAULT_CERT_FILE, DEFAULT_KEY_FILE, DEFAULT_PASSWORD_ENV,
                         DEFAULT_VSERVER_NAMES, Plan)

DEMO_PACS_AE = "DEMO-PACS"
DEMO_PORTS = {"store": 12761, "worklist": 12762}  # the real ones (2761/2762) minus privilege, plus 10000
LOOPBACK = "127.0.0.1"


def free_port(preferred: int | None = None, host: str = LOOPBACK) -> int:
    """`preferred` if nothing listens there, else a port the kernel picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on loopback")


class DemoPacs:
    """A small PACS: answers C-ECHO and stores nothing but a count of C-STOREs (called AE must match)."""

    def __init__(self, ae_title: str = DEMO_PACS_AE, host: str = LOOPBACK, port: int = 0) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.presentation import AllStoragePresentationContexts
        from pynetdicom.sop_class import Verification

        self.ae_title = ae_title
        self.host = host
        self.stored = 0
        self.echoes: list[str] = []  # calling AE of each C-ECHO
        self._lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.require_called_aet = True  # like a real PACS: a wrong called AE is rejected, so the test catches it
        ae.add_supported_context(Verification)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax)
        handlers = [(evt.EVT_C_ECHO, self._on_echo), (evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]

    def _on_echo(self, event: Any) -> int:
        with self._lock:
            self.echoes.append(event.assoc.requestor.ae_title)
        return 0x0000

    def _on_store(self, event: Any) -> int:
        with self._lock:
            self.stored += 1
        return 0x0000

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class Demo:
    backend: str
    home: Path
    pacs: DemoPacs
    cert: Path
    key: Path
    nitro: Any = None  # the NITRO simulator handle (netscaler)
    terminator: Any = None  # the in-process terminator handle, once applied
    ports: dict[str, int] = field(default_factory=dict)
    _old_env: dict[str, str | None] = field(default_factory=dict)

    @property
    def plan_path(self) -> Path:
        return self.home / "config" / "plan.toml"

    @classmethod
    def start(cls, backend: str = "builtin", home: Path | None = None, nitro_modes: dict[str, Any] | None = None) -> Demo:
        """Make the folder, the pair and the PACS (and the simulator); point DICOMTLS_HOME at the folder."""
        from engine.certs import make_self_signed

        home = Path(home) if home else Path(tempfile.mkdtemp(prefix="dicomtls-demo-"))
        home.mkdir(parents=True, exist_ok=True)
        old = {k: os.environ.get(k) for k in ("DICOMTLS_HOME", DEFAULT_PASSWORD_ENV)}
        os.environ["DICOMTLS_HOME"] = str(home)
        certs = home / "downloads"
        cert, key = certs / DEFAULT_CERT_FILE, certs / DEFAULT_KEY_FILE
        if not (cert.exists() and key.exists()):
            make_self_signed(cert, key, common_name="dicomtls-demo", overwrite=True)
        pacs = DemoPacs()
        demo = cls(backend=backend, home=home, pacs=pacs, cert=cert, key=key, _old_env=old)
        demo.ports = {role: free_port(p) for role, p in DEMO_PORTS.items()}
        if backend == "netscaler":
            try:
                from engine.rehearsal.nitro_sim import start_in_thread

                # A fresh random password, as a real ADC would not have nsroot/nsroot either.
                # nitro_modes: the simulator's field modes (default_profile, firmware, ha, partition)
                demo.nitro = start_in_thread(port=0, tls=True, password=secrets.token_urlsafe(12),
                                             **(nitro_modes or {}))
            except Exception:
                demo.stop()
                raise
            os.environ[DEFAULT_PASSWORD_ENV] = demo.nitro.password
        return demo

    def plan(self) -> Plan:
        """The rehearsal's starting plan (the wizard pre-fills its screens from it)."""
        data: dict[str, Any] = {
            "backend": self.backend,
            "certificate": {"cert": str(self.cert), "key": str(self.key)},
            "service": [{"name": "Demo-PACS", "host": LOOPBACK, "port": self.pacs.port,
                         "ae_title": self.pacs.ae_title}],
            "virtual_server": [{"name": DEFAULT_VSERVER_NAMES["store"], "ip": LOOPBACK, "port": self.ports["store"],
                                "role": "store", "service": "Demo-PACS", "calling_ae": DEFAULT_CALLING_AE}],
        }
        if self.backend == "netscaler":
            data["netscaler"] = {"url": self.nitro.url, "username": self.nitro.username,
                                 "password_env": DEFAULT_PASSWORD_ENV}
        return Plan.model_validate(data).with_base_dir(self.plan_path.parent)

    def after_apply(self, plan: Plan) -> str:
        """After a successful apply: say what runs where (NetScaler: start the stand-in data plane)."""
        ports = ", ".join(f"{v.ip}:{v.port}" for v in plan.virtual_server)
        if plan.backend == "builtin":
            pid = self.serve_pid()
            return (f"Demo: `dicomtls serve` (pid {pid}) listens on {ports}; it is stopped when the demo ends.")
        from engine.terminator import run_in_thread

        if self.terminator is not None:
            self.terminator.stop()
            self.terminator = None
        data_plane = Plan.model_validate({**plan.model_dump(exclude_none=True), "backend": "builtin",
                                          "netscaler": None}).with_base_dir(plan.base_dir)
        self.terminator = run_in_thread(data_plane)
        self.terminator.wait_ready()
        return (f"Demo: the NITRO simulator has no data plane, so the built-in terminator stands in for the "
                f"ADC's VIP on {ports}.")

    def serve_pid(self) -> int | None:
        """The background `dicomtls serve` that the built-in backend's apply started in the demo folder."""
        from engine.terminator.config import StateFiles
        from engine.terminator.runner import running_pid

        return running_pid(StateFiles(self.home / "state"))

    def stop(self) -> None:
        for thing in (self.terminator, self.nitro, self.pacs):
            if thing is not None:
                try:
                    thing.stop()
                except Exception:
                    pass
        self.terminator = None
        pid = self.serve_pid()
        if pid is not None:
            _terminate(pid)
        for k, v in self._old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _terminate(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM (serve drains and exits), then SIGKILL if it is still there after `timeout`."""
    import signal
    import time

    def gone() -> bool:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, or it lingers as a zombie
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not gone():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)  # poll interval while the process drains
