"""Real DICOM peers for tests, all on loopback and on free ports: a pynetdicom SCP (in-process),
DCMTK's storescp (subprocess) and Orthanc, the Debian PACS (subprocess).

Each is a context manager that returns once the peer is ready (its port answers or, for Orthanc,
its REST API does), never after a fixed sleep, and stops the peer on exit. Pytest fixtures wrapping
them are at the bottom; tests/conftest.py registers them for every test folder.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import stop

LOOPBACK = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it), for peers we cannot hand a socket."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, deadline: float = 20.0,
                  log: Path | None = None) -> None:
    """Poll until something accepts on 127.0.0.1:port. A connect-and-close probe does not block
    DCMTK's single-threaded TLS accept loop (docs/research/dicom-tls.md §5.5)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode} before listening on {port}" + _tail(log))
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.02)  # poll interval, not a readiness guess
    raise RuntimeError(f"nothing listened on {LOOPBACK}:{port} within {deadline} s" + _tail(log))


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return "\n--- peer log (tail) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])


# --- pynetdicom SCP, in this process ---------------------------------------------------------------

@dataclass
class Peer:
    port: int
    ae_title: str
    host: str = LOOPBACK
    log: Path | None = None
    extra: dict = field(default_factory=dict)


@contextlib.contextmanager
def pynetdicom_scp(ae_title: str = "PACS", *, ssl_context: ssl.SSLContext | None = None,
                   echo_status: int = 0x0000, require_called_aet: bool = True,
                   calling_aes: list[str] | None = None) -> Iterator[Peer]:
    """A Verification SCP on 127.0.0.1:<free>; `echo_status` is what its C-ECHO handler answers;
    `calling_aes` (if given) are the only calling AE titles it accepts (others: rejected 1/1/3)."""
    from pynetdicom import AE, evt

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION)
    ae.require_called_aet = require_called_aet
    # pynetdicom keeps an association slot for every connection that never sends an A-ASSOCIATE-RQ
    # (a port probe, a failed pin, a TLS check) until its ACSE timeout, 30 s by default, and allows
    # 10 at once: many failure tests in a row would then be rejected 2/3/2. Widen both.
    ae.maximum_associations = 100
    ae.acse_timeout = 5
    if calling_aes:
        ae.require_calling_aet = calling_aes
    handlers = [(evt.EVT_C_ECHO, lambda event: echo_status)]
    server = ae.start_server((LOOPBACK, 0), block=False, ssl_context=ssl_context, evt_handlers=handlers)
    try:
        yield Peer(port=server.server_address[1], ae_title=ae_title)
    finally:
        server.shutdown()


def server_context(cert: Path, key: Path, *, min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                   max_version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    """A TLS server context for the pynetdicom SCP (no client certificate asked)."""
    cx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cx.load_cert_chain(str(cert), str(key))
    if ciphers:
        cx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # a TLS 1.0 server is the point of some tests
        warnings.simplefilter("ignore", DeprecationWarning)
        cx.minimum_version = min_version
        if max_version is not None:
            cx.maximum_version = max_version
    return cx


# --- DCMTK storescp --------------------------------------------------------------------------------

@contextlib.contextmanager
def storescp(folder: Path, *, cert: Path | None = None, key: Path | None = None, ae_title: str = "STORESCP",
             profile: str | None = None) -> Iterator[Peer]:
    """DCMTK `storescp` (3.6.7): with cert/key it speaks DICOM-TLS (`+tls KEY CERT`), asking no client
    certificate (`-ic`: Butterfly's client certificate is not part of the test). `profile` is a DCMTK
    profile flag such as "+pa" (the old AES profile)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "storescp.log"
    cmd = ["storescp", "-ll", "info", "-aet", ae_title, "-od", str(folder), "--ignore"]
    if cert is not None and key is not None:
        cmd += ["+tls", str(key), str(cert), "-ic"]
        if profile:
            cmd.append(profile)
    cmd.append(str(port))
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, log=log)
        yield Peer(port=port, ae_title=ae_title, log=log)
    finally:
        stop(proc)


# --- Orthanc -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def orthanc_pacs(folder: Path, *, ae_title: str = "ORTHANC", config: dict | None = None) -> Iterator[Peer]:
    """Orthanc 1.10.1 (Debian) as a plain-DICOM PACS with DicomCheckCalledAet on, so a wrong called AE
    is rejected 1/1/7 as on a real PACS. Orthanc 1.10.1 has no DICOM bind option and listens on
    every interface; tests only ever connect to 127.0.0.1. `config` adds or overrides keys."""
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    cfg = {
        "Name": "dicomtls-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "Plugins": [],  # never load /usr/share/orthanc/plugins
        "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomAet": ae_title, "DicomPort": dicom_port, "DicomCheckCalledAet": True,
        "DicomScpTimeout": 10,
    }
    cfg.update(config or {})
    cfg_path = folder / "orthanc.json"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    log = folder / "orthanc.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([ORTHANC_BIN, "--verbose", str(cfg_path)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=folder)
    try:
        system = _wait_for_orthanc(http_port, proc, log)
        wait_for_port(dicom_port, proc, log=log)
        yield Peer(port=dicom_port, ae_title=ae_title, log=log,
                   extra={"http_port": http_port, "system": system})
    finally:
        stop(proc)


def _wait_for_orthanc(http_port: int, proc: subprocess.Popen, log: Path, deadline: float = 30.0) -> dict:
    end = time.monotonic() + deadline
    url = f"http://{LOOPBACK}:{http_port}/system"
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {proc.returncode}" + _tail(log))
        try:
            with urllib.request.urlopen(url, timeout=1) as rsp:
                return json.loads(rsp.read())
        except OSError:
            time.sleep(0.05)  # poll interval
    raise RuntimeError(f"Orthanc's REST API did not answer at {url} within {deadline} s" + _tail(log))


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    from tests.support.tlsfiles import make_tls_files

    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory) -> Iterator[Peer]:
    """One plain Orthanc PACS (AE ORTHANC) per test module."""
    if not Path(ORTHANC_BIN).exists():
        pytest.fail("Orthanc is not installed: run scripts/bootstrap --test (apt-get install orthanc)")
    with orthanc_pacs(tmp_path_factory.mktemp("orthanc")) as peer:
        yield peer


@pytest.fixture(scope="module")
def storescp_tls(tmp_path_factory, tls_files) -> Iterator[Peer]:
    """DCMTK storescp speaking DICOM-TLS with the test server certificate (AE STORESCP)."""
    with storescp(tmp_path_factory.mktemp("storescp"), cert=tls_files.server_cert,
                  key=tls_files.server_key) as peer:
        yield peer
