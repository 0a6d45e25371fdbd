"""Soak: C-STOREs from DCMTK storescu +tls (4 associations in parallel, 25 objects each) through
`dicomtls serve` into Orthanc, while Orthanc is restarted twice and the terminator reloaded (SIGHUP)
five times. Like a real sender, files that storescu did not report stored are sent again later.

Checks: every object storescu reported stored is in Orthanc with identical pixel data (SHA-256);
nothing storescu reported stored is missing (every loss was reported to the sender as a failure);
no storescu run hangs; all objects end up stored; the terminator's RSS and threads do not grow
with the count of stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.support import IDLE_THREADS, start_rig, wait_for
from tests.support.peers import LOOPBACK, ORTHANC_BIN, free_port, wait_for_port
from tests.support.processes import stop as stop_process

pytestmark = pytest.mark.interop

OBJECTS = 2000
PIXEL_BYTES = 8192
SENDERS = 4
BATCH = 25
RELOADS = 5
ORTHANC_RESTARTS = 2
DEADLINE = 150  # seconds for the whole send phase
STORESCU_TIMEOUT = 60
UID_ROOT = "1.2.826.0.1.3680043.9.7433.2."
UID_WIDTH = 12


def make_objects(folder: Path, n: int) -> dict[Path, tuple[str, str]]:
    """n distinct Secondary Capture files: one made by pydicom, the others by patching its UID and
    pixel bytes in place (same lengths). Returns {path: (SOP Instance UID, pixel SHA-256)}."""
    import pydicom

    from benchmarks.dicomfiles import make_image

    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.dcm"
    placeholder = UID_ROOT + "9" * UID_WIDTH
    make_image(template, PIXEL_BYTES, seed=b"template")
    ds = pydicom.dcmread(template)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = placeholder
    ds.save_as(template, enforce_file_format=True)
    raw = template.read_bytes()
    pixels = pydicom.dcmread(template).PixelData
    assert raw.endswith(pixels) and raw.count(placeholder.encode()) == 2
    head = raw[:-len(pixels)]
    out = {}
    for i in range(n):
        uid = UID_ROOT + str(i).zfill(UID_WIDTH)
        px = os.urandom(len(pixels))
        path = folder / f"obj{i:05d}.dcm"
        path.write_bytes(head.replace(placeholder.encode(), uid.encode()) + px)
        out[path] = (uid, hashlib.sha256(px).hexdigest())
    template.unlink()
    return out


class Orthanc:
    """Orthanc 1.10.1 (Debian) on fixed ports and one storage folder, so it can be stopped (SIGTERM)
    and started again as the same PACS. (tests.support.peers.orthanc_pacs picks new ports each time.)"""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.dicom_port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "dicomtls-soak", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
            "Plugins": [], "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomAet": "ORTHANC", "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True, "DicomScpTimeout": 10}))

    def start(self) -> None:
        log = open(self.folder / f"orthanc-{self.starts}.log", "wb")
        self.proc = subprocess.Popen([ORTHANC_BIN, str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.folder)
        log.close()

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "Orthanc exited while starting"
            try:
                return bool(self.get("/system", timeout=1))
            except OSError:
                return False

        wait_for(up, 30, "Orthanc's REST API", interval=0.05)
        wait_for_port(self.dicom_port, self.proc)
        self.starts += 1

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=20)
        self.proc = None

    def get(self, path: str, timeout: float = 10) -> bytes:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}{path}", timeout=timeout) as rsp:
            return rsp.read()

    def post(self, path: str, body: dict) -> object:
        req = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as rsp:
            return json.loads(rsp.read())


_SENDING = re.compile(r"Sending file: (.+\.dcm)\s*$")


def parse_storescu(output: str) -> tuple[set[str], set[str]]:
    """(files reported stored, files reported failed) from `storescu -v` output."""
    ok, failed, current = set(), set(), None
    for line in output.splitlines():
        m = _SENDING.search(line)
        if m:
            current = m.group(1)
        elif "Received Store Response" in line and current:
            (ok if "(Success)" in line else failed).add(current)
            current = None
        elif current and ("Store Failed" in line or "Store SCU Failed" in line):
            failed.add(current)
            current = None
    if current:
        failed.add(current)  # sent, no response: storescu ended the association with an error
    return ok, failed


class Senders:
    """SENDERS storescu processes taking batches from one queue until everything is stored or the deadline
    passes; a batch that is not wholly stored goes back on the queue, as a real sender would retry it."""

    def __init__(self, paths: list[str], port: int, end: float) -> None:
        self.todo: queue.Queue[list[str]] = queue.Queue()
        for i in range(0, len(paths), BATCH):
            self.todo.put(paths[i:i + BATCH])
        self.port, self.end = port, end
        self.stored: set[str] = set()
        self.reported_failed: list[str] = []
        self.hangs: list[str] = []
        self.silent: list[str] = []
        self.runs = {"n": 0, "failed_runs": 0}
        self.lock = threading.Lock()

    def progress(self) -> int:
        with self.lock:
            return len(self.stored)

    def run(self) -> None:
        while time.monotonic() < self.end and self.progress() < OBJECTS:
            try:
                batch = self.todo.get(timeout=0.2)
            except queue.Empty:
                continue
            ok, failed = self._send(batch)
            with self.lock:
                self.runs["n"] += 1
                self.runs["failed_runs"] += bool(failed or len(ok) < len(batch))
                self.stored.update(ok)
                self.reported_failed.extend(failed)
            again = [p for p in batch if p not in ok]
            if again:
                self.todo.put(again)

    def _send(self, batch: list[str]) -> tuple[set[str], set[str]]:
        cmd = ["storescu", "-v", "+tla", "-ic", "-aet", "BUTTERFLY", "-aec", "ORTHANC", LOOPBACK, str(self.port), *batch]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=STORESCU_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.hangs.append(f"storescu hung > {STORESCU_TIMEOUT} s on a batch of {len(batch)}")
            return set(), set()
        ok, failed = parse_storescu(out.stdout + out.stderr)
        if out.returncode == 0 and len(ok) < len(batch):
            self.silent.append(f"storescu exited 0 with {len(ok)}/{len(batch)} stored")
        return ok, failed


def test_soak_2000_stores_through_reloads_and_pacs_restarts(tmp_path, tls_files):
    objects = make_objects(tmp_path / "objects", OBJECTS)
    by_path = {str(p): v for p, v in objects.items()}
    pacs = Orthanc(tmp_path / "orthanc")
    pacs.start()
    rig = start_rig(tmp_path / "terminator", tls_files, pacs.dicom_port, ae_title="ORTHANC")
    end = time.monotonic() + DEADLINE
    senders = Senders(list(by_path), rig.port, end)
    progress = senders.progress
    rss: dict[str, float] = {}

    threads = [threading.Thread(target=senders.run) for _ in range(SENDERS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        # Chaos at fixed points of progress: reloads at 10/25/45/65/85 %, Orthanc restarts at 35/75 %.
        plan = sorted([(0.10, "reload"), (0.25, "reload"), (0.35, "restart"), (0.45, "reload"),
                       (0.65, "reload"), (0.75, "restart"), (0.85, "reload")])
        reloads = restarts = 0
        for frac, action in plan:
            wait_for(lambda: progress() >= frac * OBJECTS or time.monotonic() > end, DEADLINE + 10,
                     f"{frac:.0%} stored", interval=0.05)
            if frac == 0.25:
                rss["early"] = rig.serve.rss_mb()
            if action == "reload":
                rec = rig.serve.reload()
                assert rec["event"] == "reloaded", rec
                reloads += 1
            else:
                pacs.stop()  # SIGTERM: in-flight stores end abruptly for the senders
                pacs.start()
                restarts += 1
        for t in threads:
            t.join(DEADLINE + STORESCU_TIMEOUT + 10)
        elapsed = time.monotonic() - t0
        rss["late"] = rig.serve.rss_mb()
        assert rig.serve.alive()
        wait_for(lambda: rig.serve.threads() <= IDLE_THREADS, 15, f"threads back to {IDLE_THREADS} (no pump threads)")

        # What Orthanc has, by SOP Instance UID, with the SHA-256 of its pixel data.
        found = pacs.post("/tools/find", {"Level": "Instance", "Query": {}, "Expand": True})
        ids = {i["MainDicomTags"]["SOPInstanceUID"]: i["ID"] for i in found}

        def pixel_hash(orthanc_id: str) -> str:
            import io

            import pydicom

            return hashlib.sha256(pydicom.dcmread(io.BytesIO(pacs.get(f"/instances/{orthanc_id}/file"))).PixelData).hexdigest()

        with ThreadPoolExecutor(8) as pool:
            hashes = dict(zip(ids, pool.map(pixel_hash, ids.values())))
    finally:
        rig.serve.stop()
        pacs.stop()

    assert reloads == RELOADS and restarts == ORTHANC_RESTARTS and pacs.starts == 1 + ORTHANC_RESTARTS
    stored, runs = senders.stored, senders.runs
    assert not senders.hangs, senders.hangs
    assert not senders.silent, senders.silent
    missing = [p for p in stored if by_path[p][0] not in hashes]
    assert not missing, f"{len(missing)} objects storescu reported stored are not in Orthanc: {missing[:3]}"
    different = [p for p in stored if hashes[by_path[p][0]] != by_path[p][1]]
    assert not different, f"{len(different)} stored objects have different pixel data: {different[:3]}"
    unknown = set(hashes) - {uid for uid, _ in by_path.values()}
    assert not unknown, f"Orthanc holds objects nobody sent: {sorted(unknown)[:3]}"
    assert len(stored) == OBJECTS, (f"only {len(stored)} of {OBJECTS} stored in {DEADLINE} s "
                                    f"({len(senders.reported_failed)} failures reported, {runs})")
    assert runs["failed_runs"] >= 1, "the Orthanc restarts caused no failure at all: the chaos did not bite"
    growth = rss["late"] - rss["early"]
    assert growth < 10, f"terminator RSS grew {growth:.1f} MB from 25 % to 100 % of the stores ({rss})"
    print(f"\nsoak: {len(stored)} stored in {elapsed:.0f} s, {runs['n']} storescu runs, {runs['failed_runs']} with "
          f"failures, {len(senders.reported_failed)} failures reported (all re-sent), {reloads} reloads, {restarts} Orthanc "
          f"restarts, RSS {rss['early']:.1f} -> {rss['late']:.1f} MB")
