"""A rehearsal environment on loopback: `dicomtls --demo`.

Everything a first run needs, on a machine with nothing else installed: an isolated DICOMTLS_HOME in
the demo folder, a generated test pair named like Butterfly's, a demo PACS (pynetdicom Verification +
Storage SCP on 127.0.0.1), and either the built-in terminator (started in-process after apply) or
the NITRO simulator. Used by the wizard's --demo and by tests; it knows nothing about the wizard.

The demo folder persists (by default STATE/demo/<backend>, STATE being the user state dir), so a
second run starts from the plan the first one saved, as a real re-run does (the worklist port
after the store port). It is 0700 and its keys 0600. `fresh=True` empties it first; only a folder
carrying the demo's marker file is ever emptied.

Built-in backend: apply is the real one, so it starts a background `dicomtls serve` (state and logs
in the demo folder); stop() ends that process, so a rehearsal leaves nothing running.

NetScaler backend: the NITRO simulator only simulates the ADC's management API and carries no DICOM
traffic. So that the echo ladder still runs end to end, after apply the demo stands the built-in
terminator (in this process) in for the ADC's data plane on the same VIP and port, and says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomtls.engine import paths
from dicomtls.engine.advice import advice
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import (
    DEFAULT_CALLING_AE,
    DEFAULT_CERT_FILE,
    DEFAULT_KEY_FILE,
    DEFAULT_PASSWORD_ENV,
    DEFAULT_VSERVER_NAMES,
    Plan,
    load_plan,
)

DEMO_PACS_AE = "DEMO-PACS"
DEMO_SERVICE = "Demo-PACS"
DEMO_PORTS = {"store": 12761, "worklist": 12762}  # the real ones (2761/2762) minus privilege, plus 10000
# Preferred, so that a re-run's saved plan still points at them (another is taken if these are busy).
DEMO_PACS_PORT = 11104
DEMO_NITRO_PORT = 19443
LOOPBACK = "127.0.0.1"
MARKER = ".dicomtls-demo"  # in every demo folder: only such a folder is ever emptied


def demo_dir(backend: str) -> Path:
    """The persistent demo folder of a backend (in the user state dir, or under DICOMTLS_HOME)."""
    return paths.state_dir() / "demo" / backend


def free_port(preferred: int | None = None, host: str = LOOPBACK) -> int:
    """`preferred` if nothing listens there, else a port the kernel picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            bound: int = s.getsockname()[1]
            return bound
    raise OSError("no free port on loopback")


DEMO_WORKLIST = [("0900", "Demo lung scan"), ("1030", "Demo cardiac scan"), ("1400", "Demo abdominal scan")]


def demo_worklist(day: str, station_ae: str = DEFAULT_CALLING_AE) -> list[Any]:
    """The demo's scheduled procedure steps for `day` (YYYYMMDD): plainly fictitious people, one per slot."""
    from pydicom.dataset import Dataset

    items = []
    for n, (time, what) in enumerate(DEMO_WORKLIST, 1):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName, ds.PatientID = f"Fictitious^Demo Patient {n}", f"DEMO-{n:04d}"
        ds.AccessionNumber, ds.RequestedProcedureDescription = f"DEMO-ACC-{n:04d}", what
        sps = Dataset()
        sps.Modality, sps.ScheduledStationAETitle = "US", station_ae
        sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime = day, time
        sps.ScheduledProcedureStepDescription, sps.ScheduledProcedureStepID = what, f"DEMO-SPS-{n}"
        ds.ScheduledProcedureStepSequence = [sps]
        items.append(ds)
    return items


def _matches(item: Any, query: Any) -> bool:
    """Single-value and range matching of the keys the demo's steps carry (PS3.4 C.2.2.2)."""
    want = query.ScheduledProcedureStepSequence[0] if query.get("ScheduledProcedureStepSequence") else None
    have = item.ScheduledProcedureStepSequence[0]
    if want is None:
        return True
    for key in ("Modality", "ScheduledStationAETitle"):
        value = str(want.get(key, "") or "").strip()
        if value and value != have.get(key):
            return False
    dates = str(want.get("ScheduledProcedureStepStartDate", "") or "").strip()
    if dates:
        first, _, last = dates.partition("-") if "-" in dates else (dates, "", dates)
        day = have.ScheduledProcedureStepStartDate
        if not ((first or "00000000") <= day <= (last or "99999999")):
            return False
    return True


class DemoPacs:
    """A small PACS: answers C-ECHO, stores nothing but a count of C-STOREs (called AE must match), and
    answers Modality Worklist C-FINDs with the demo's fictitious steps, scheduled today."""

    def __init__(self, ae_title: str = DEMO_PACS_AE, host: str = LOOPBACK, port: int = 0) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.events import EventHandlerType
        from pynetdicom.presentation import AllStoragePresentationContexts

        # pynetdicom.sop_class makes its names (Verification, ...) at import time, out of mypy's sight: the UIDs
        from dicomtls.engine.verify import VERIFICATION_UID
        from dicomtls.engine.worklist import MWL_FIND_UID

        self.ae_title = ae_title
        self.host = host
        self.stored = 0
        self.echoes: list[str] = []  # calling AE of each C-ECHO
        self._lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.require_called_aet = True  # like a real PACS: a wrong called AE is rejected, so the test catches it
        ae.add_supported_context(VERIFICATION_UID)
        ae.add_supported_context(MWL_FIND_UID)
        self.finds = 0
        for cx in AllStoragePresentationContexts:
            assert cx.abstract_syntax is not None  # each of pynetdicom's storage contexts names its SOP class
            ae.add_supported_context(cx.abstract_syntax)
        handlers: list[EventHandlerType] = [(evt.EVT_C_ECHO, self._on_echo), (evt.EVT_C_STORE, self._on_store),
                                            (evt.EVT_C_FIND, self._on_find)]
        server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        assert server is not None  # block=False returns the server, running in its own thread
        self._server = server
        self.port: int = server.server_address[1]

    def _on_echo(self, event: Any) -> int:
        with self._lock:
            self.echoes.append(event.assoc.requestor.ae_title)
        return 0x0000

    def _on_store(self, event: Any) -> int:
        with self._lock:
            self.stored += 1
        return 0x0000

    def _on_find(self, event: Any) -> Any:
        import datetime as dt

        with self._lock:
            self.finds += 1
        for item in demo_worklist(dt.date.today().strftime("%Y%m%d")):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if _matches(item, event.identifier):
                yield 0xFF00, item
        yield 0x0000, None

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
    plan_file: Path | None = None  # where the plan lives if not in the demo folder (--plan)
    _old_env: dict[str, str | None] = field(default_factory=dict)

    @property
    def plan_path(self) -> Path:
        return self.plan_file or self.home / "config" / "plan.toml"

    @classmethod
    def start(cls, backend: str = "builtin", home: Path | None = None, *, plan_path: Path | None = None,
              fresh: bool = False, nitro_modes: dict[str, Any] | None = None) -> Demo:
        """Make (or reuse) the folder, the pair and the PACS (and the simulator, in `nitro_modes`: the
        field modes default_profile, release, ha, partition); point DICOMTLS_HOME at the folder."""
        from dicomtls.engine.rehearsal.pairs import make_self_signed

        home = Path(home) if home else demo_dir(backend)
        _prepare_folder(home, fresh)
        old = {k: os.environ.get(k) for k in ("DICOMTLS_HOME", DEFAULT_PASSWORD_ENV)}
        os.environ["DICOMTLS_HOME"] = str(home)
        certs = home / "downloads"
        cert, key = certs / DEFAULT_CERT_FILE, certs / DEFAULT_KEY_FILE
        if not (cert.exists() and key.exists()):
            make_self_signed(cert, key, common_name="dicomtls-demo", overwrite=True)
        pacs = DemoPacs(port=free_port(DEMO_PACS_PORT))
        demo = cls(backend=backend, home=home, pacs=pacs, cert=cert, key=key, _old_env=old,
                   plan_file=Path(plan_path).expanduser().absolute() if plan_path else None)
        demo.ports = {role: free_port(p) for role, p in DEMO_PORTS.items()}
        if backend == "netscaler":
            try:
                from dicomtls.engine.rehearsal.nitro_sim import start_in_thread

                # A fresh random password, as a real ADC would not have nsroot/nsroot either. The
                # management certificate is kept in the folder, so a re-run's pinned fingerprint holds.
                cert_pem, key_pem = _management_pair(home / "nitro")
                demo.nitro = start_in_thread(port=free_port(DEMO_NITRO_PORT), tls=True,
                                             password=secrets.token_urlsafe(12), cert_pem=cert_pem, key_pem=key_pem,
                                             **(nitro_modes or {}))
            except Exception:
                demo.stop()
                raise
            os.environ[DEFAULT_PASSWORD_ENV] = demo.nitro.password
        return demo

    def plan(self) -> Plan:
        """The plan the wizard pre-fills its screens from: the one saved by an earlier run (with this
        run's demo addresses), else the rehearsal's starting plan."""
        saved = self.saved_plan()
        return self._this_run(saved) if saved is not None else self.start_plan()

    def start_plan(self) -> Plan:
        """The rehearsal's starting plan: the store port to the demo PACS."""
        data: dict[str, Any] = {
            "backend": self.backend,
            "certificate": {"cert": str(self.cert), "key": str(self.key)},
            "service": [{"name": DEMO_SERVICE, "host": LOOPBACK, "port": self.pacs.port,
                         "ae_title": self.pacs.ae_title}],
            "virtual_server": [{"name": DEFAULT_VSERVER_NAMES["store"], "ip": LOOPBACK, "port": self.ports["store"],
                                "role": "store", "service": DEMO_SERVICE, "calling_ae": DEFAULT_CALLING_AE}],
        }
        if self.backend == "netscaler":
            data["netscaler"] = {"url": self.nitro.url, "username": self.nitro.username,
                                 "password_env": DEFAULT_PASSWORD_ENV}
        return Plan.model_validate(data).with_base_dir(self.plan_path.parent)

    def saved_plan(self) -> Plan | None:
        """The plan an earlier run saved at plan_path, as it is on disk (None if there is none yet)."""
        if not self.plan_path.exists():
            return None
        try:
            return load_plan(self.plan_path)
        except UserError as exc:
            raise UserError(f"the demo's saved plan cannot be used: {exc.problem}", "fix it, or start over",
                            advice=advice("demo.saved_plan_invalid", path=self.plan_path)) from None

    def _this_run(self, saved: Plan) -> Plan:
        """`saved` pointed at what runs now: the demo PACS's port and the simulator change between runs."""
        data = saved.model_dump(exclude_none=True)
        data["backend"] = self.backend
        for svc in data["service"]:
            if svc["name"] == DEMO_SERVICE and not svc.get("members"):
                svc.update(host=LOOPBACK, port=self.pacs.port)
        if self.backend == "netscaler":
            ns = data.get("netscaler") or {"password_env": DEFAULT_PASSWORD_ENV}
            if ns.get("url") != self.nitro.url:
                ns.pop("fingerprint", None)  # another simulator answers there now: pin it again
            ns.update(url=self.nitro.url, username=self.nitro.username)
            data["netscaler"] = ns
        else:
            data.pop("netscaler", None)
        return Plan.model_validate(data).with_base_dir(saved.base_dir)

    def after_apply(self, plan: Plan) -> str:
        """After a successful apply: say what runs where (NetScaler: start the stand-in data plane)."""
        ports = ", ".join(f"{v.ip}:{v.port}" for v in plan.virtual_server)
        if plan.backend == "builtin":
            pid = self.serve_pid()
            return (f"Demo: `dicomtls serve` (pid {pid}) listens on {ports}; it is stopped when the demo ends.")
        from dicomtls.engine.terminator import run_in_thread

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
        from dicomtls.engine.terminator.config import StateFiles
        from dicomtls.engine.terminator.runner import running_pid

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


def _prepare_folder(home: Path, fresh: bool) -> None:
    """The demo folder, 0700 (it holds private keys) and marked as the demo's; emptied first if `fresh`."""
    if fresh and home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise UserError(f"{home} is not a demo folder (it has no {MARKER} file); nothing was deleted",
                            "remove it yourself if it is an old demo folder",
                            advice=advice("demo.not_a_demo_folder", path=home))
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)  # also when it existed: the pair and the terminator's key are inside
    (home / MARKER).write_text("made by the dicomtls demo; starting the demo afresh empties this folder\n")


def _management_pair(folder: Path) -> tuple[bytes, bytes]:
    """The simulator's management certificate and key, made once per demo folder (key 0600)."""
    from dicomtls.engine.rehearsal.nitro_sim.certs import make_management_cert

    cert, key = folder / "ns-mgmt-cert.pem", folder / "ns-mgmt-key.pem"
    if cert.exists() and key.exists():
        return cert.read_bytes(), key.read_bytes()
    cert_pem, key_pem = make_management_cert()
    paths.write_private(key, key_pem)
    paths.write_public(cert, cert_pem)
    return cert_pem, key_pem
