"""Certificate renewal under load on the built-in terminator: DCMTK storescu sends objects without a
pause through `dicomtls serve` (started by `dicomtls apply`) into DCMTK storescp, while the pair is
renewed by `dicomtls apply` with Butterfly's new certificate and key.

Checks: every object reaches storescp (by SOP Instance UID) and every storescu run succeeds: zero
lost or failed; an association opened before the renewal finishes on the old certificate after it;
new handshakes present the new certificate (SHA-256 fingerprint)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dicomtls.engine.rehearsal.pairs import make_self_signed
from tests.reliability.test_soak import make_objects
from tests.support.peers import LOOPBACK, free_port, wait_for_port
from tests.support.processes import stop
from tests.support.tlsfiles import fingerprint_of
from tests.terminator.helpers import REPO, peer_fingerprint, tls_connect, wait_for, write_plan

pytestmark = pytest.mark.interop

OBJECTS = 240
BATCH = 20
RENEW_AFTER = 3  # batches stored before the renewal


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DICOMTLS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


@contextlib.contextmanager
def storing_scp(folder: Path):
    """storescp that keeps every object as SC.<SOP Instance UID> (-uf), so losses can be counted; one
    process per association (--fork), as the held-open association must not block the senders."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder.parent / "storescp.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["storescp", "--fork", "-aet", "PACS", "-od", str(folder), "-uf",
                                 str(port)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, log=log)
        yield port
    finally:
        stop(proc)


@contextlib.contextmanager
def applied_terminator(state: Path):
    """Stops the terminator `dicomtls apply` started in the background (by its pid file)."""
    try:
        yield
    finally:
        pid_file = state / "serve.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                         open(f"/proc/{pid}/stat").read().split()[2] == "Z", 30, "the terminator to exit")


def open_association(port: int):
    """A pynetdicom association over TLS, left open (the sender in the middle of a study)."""
    from pynetdicom import AE

    from dicomtls.engine.tlsctx import client_context

    ae = AE(ae_title="BUTTERFLY")
    ae.network_timeout = None  # it idles across the renewal on purpose
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate(LOOPBACK, port, ae_title="PACS",
                         tls_args=(client_context("bcp195-nd", None, insecure=True), None))
    assert assoc.is_established
    return assoc


def test_renewal_while_storescu_sends(tmp_path):
    old_cert, old_key = tmp_path / "old" / "cert.pem", tmp_path / "old" / "key.pem"
    new_cert, new_key = tmp_path / "new" / "cert.pem", tmp_path / "new" / "key.pem"
    for c, k, cn in ((old_cert, old_key, "butterfly-2026"), (new_cert, new_key, "butterfly-2027")):
        c.parent.mkdir()
        make_self_signed(c, k, common_name=cn, days=365)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(old_cert, site / "Butterfly_SCP_Cert.pem")
    shutil.copy(old_key, site / "Butterfly_SCP_key.pem")
    objects = make_objects(tmp_path / "objects", OBJECTS)
    files = sorted(objects)
    home = tmp_path / "home"
    port = free_port()

    with storing_scp(tmp_path / "received") as pacs_port, applied_terminator(site / "state"):
        plan = write_plan(site, site / "Butterfly_SCP_Cert.pem", site / "Butterfly_SCP_key.pem",
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}],
                          [{"name": "store", "port": port, "service": "PACS"}])
        first = cli(home, "apply", str(plan), "--yes")
        assert first.returncode == 0, first.stdout + first.stderr
        with tls_connect(port) as s:
            assert peer_fingerprint(s) == fingerprint_of(old_cert)

        runs: list[subprocess.CompletedProcess] = []
        batches = [files[i:i + BATCH] for i in range(0, len(files), BATCH)]
        sender_failed: list[BaseException] = []
        took: list[float] = []

        def send() -> None:
            try:
                for batch in batches:
                    t = time.monotonic()
                    runs.append(subprocess.run(
                        ["storescu", "+tla", "-ic", "-aet", "BUTTERFLY", "-aec", "PACS", LOOPBACK, str(port),
                         *map(str, batch)], capture_output=True, text=True, timeout=120))
                    took.append(time.monotonic() - t)
            except BaseException as exc:  # surfaced below
                sender_failed.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        wait_for(lambda: len(runs) >= RENEW_AFTER, 120, f"{RENEW_AFTER} batches stored")
        # Opened on the old certificate, finished after the renewal (opened only now: storescp drops an
        # idle association after its 30 s ACSE timeout).
        spanning = open_association(port)
        old_seen = peer_fingerprint(spanning.dul.socket.socket)
        shutil.copy(new_cert, site / "Butterfly_SCP_Cert.pem")  # Butterfly's new pair, same file names
        shutil.copy(new_key, site / "Butterfly_SCP_key.pem")
        renew = cli(home, "apply", str(plan), "--yes")
        during = len(runs)
        assert renew.returncode == 0, renew.stdout + renew.stderr
        assert "reloaded pid" in renew.stdout
        sender.join(300)
        assert not sender.is_alive() and not sender_failed, sender_failed

        with tls_connect(port) as s:  # a new handshake gets the new certificate
            assert peer_fingerprint(s) == fingerprint_of(new_cert)
        status = spanning.send_c_echo()  # the old association still works, on the old certificate
        assert status.Status == 0x0000, took
        spanning.release()
        assert old_seen == fingerprint_of(old_cert)

    assert during < len(batches), "the renewal happened after the sending ended: nothing was tested"
    assert max(took) < 15, f"a storescu run stalled: seconds per batch {[round(t, 2) for t in took]}"
    failed = [r for r in runs if r.returncode != 0 or "E:" in r.stderr]
    assert not failed, failed[0].stderr[-2000:]
    stored = {p.name for p in (tmp_path / "received").iterdir()}
    missing = [uid for uid, _ in objects.values() if not any(uid in name for name in stored)]
    assert len(runs) == len(batches) and not missing, f"{len(missing)} of {OBJECTS} objects lost"
    log = (site / "state" / "serve.log").read_text()
    assert '"event": "reloaded"' in log and '"cert_changed": true' in log
