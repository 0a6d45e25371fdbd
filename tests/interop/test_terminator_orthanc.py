"""Real DICOM through the built-in terminator into Orthanc 1.10.1 (the Debian PACS): DCMTK echoscu
(+tls with a client key pair, and +tla), storescu +tls with objects from 1 KB to 50 MB (each must be
in Orthanc with byte-identical pixel data), and the foundation's echo ladder with the terminator's
CA and pinned certificate."""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import urllib.request
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from dicomtls.engine.verify import echo
from tests.terminator.helpers import LOOPBACK, echoscu, free_port, terminator, wait_record, write_plan

pytestmark = pytest.mark.interop

SIZES = {"1KB": (32, 32), "300KB": (512, 600), "5MB": (2000, 2500), "50MB": (5000, 10000)}


def make_image(path: Path, rows: int, cols: int, seed: int) -> str:
    """An 8-bit Secondary Capture image with random pixels; returns the pixel data's SHA-256."""
    pixels = random.Random(seed).randbytes(rows * cols)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "TLS^Terminator", "DICOMTLS-TEST", "OT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels
    ds.save_as(path, enforce_file_format=True)
    return hashlib.sha256(ds.PixelData).hexdigest()


@pytest.fixture(scope="module")
def through(tmp_path_factory, orthanc, tls_files):
    folder = tmp_path_factory.mktemp("term-orthanc")
    store, mwl = free_port(), free_port()
    plan = write_plan(folder, tls_files.server_cert, tls_files.server_key,
                      [{"name": "Orthanc", "host": LOOPBACK, "port": orthanc.port, "ae_title": orthanc.ae_title}],
                      [{"name": "store", "port": store, "service": "Orthanc"},
                       {"name": "mwl", "port": mwl, "role": "worklist", "service": "Orthanc"}])
    with terminator(plan) as (handle, records):
        yield {"store": store, "mwl": mwl, "records": records, "handle": handle}


def test_echoscu_tls_with_client_keys_and_anonymous_tls(through, orthanc, tls_files):
    with_keys = echoscu(through["store"], "+tls", str(tls_files.other_key), str(tls_files.other_cert),
                        "+cf", str(tls_files.ca_cert), called=orthanc.ae_title)
    assert with_keys.returncode == 0, with_keys.stderr
    anonymous = echoscu(through["store"], "+tla", "-ic", called=orthanc.ae_title)
    assert anonymous.returncode == 0, anonymous.stderr
    rec = wait_record(through["records"], outcome="released", called_ae=orthanc.ae_title)
    assert rec["tls_version"] == "TLSv1.2" and rec["cipher"] in {
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}
    assert rec["bytes_from_client"] > 0 and rec["bytes_to_client"] > 0


def test_storescu_objects_from_1kb_to_50mb_arrive_byte_identical(through, orthanc, tls_files, tmp_path):
    files, hashes = [], {}
    for i, (label, (rows, cols)) in enumerate(SIZES.items()):
        f = tmp_path / f"{label}.dcm"
        digest = make_image(f, rows, cols, seed=i)
        hashes[pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID] = digest
        files.append(f)
    r = subprocess.run(["storescu", "-aet", "BUTTERFLY", "-aec", orthanc.ae_title, "+tls", str(tls_files.other_key),
                        str(tls_files.other_cert), "-ic", LOOPBACK, str(through["store"]), *map(str, files)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Store Failed" not in r.stderr
    for uid, digest in hashes.items():
        ids = _lookup(orthanc, uid)
        assert len(ids) == 1, f"{uid} is not in Orthanc"
        stored = pydicom.dcmread(io.BytesIO(_file(orthanc, ids[0])))
        assert hashlib.sha256(stored.PixelData).hexdigest() == digest
    big = max(p.stat().st_size for p in files)
    rec = wait_record(through["records"], outcome="released", calling_ae="BUTTERFLY", called_ae=orthanc.ae_title)
    assert rec["bytes_from_client"] > big  # the 50 MB object went through this association


def _lookup(peer, uid: str) -> list[str]:
    req = urllib.request.Request(f"http://{LOOPBACK}:{peer.extra['http_port']}/tools/lookup", data=uid.encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return [x["ID"] for x in json.loads(r.read()) if x["Type"] == "Instance"]


def _file(peer, instance_id: str) -> bytes:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{peer.extra['http_port']}/instances/{instance_id}/file",
                                timeout=60) as r:
        return r.read()


def test_echo_ladder_through_store_and_worklist_listeners(through, orthanc, tls_files):
    for name in ("store", "mwl"):
        report = echo(LOOPBACK, through[name], tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd",
                      called_ae=orthanc.ae_title, expect_cert=tls_files.server_cert)
        assert report.ok, report.failed_step
        assert [s.name for s in report.steps] == ["resolve", "tcp", "tls", "associate", "echo", "release"]

        rec = wait_record(through["records"], outcome="released", listener=name, calling_ae="BUTTERFLY")
        assert rec["role"] == ("store" if name == "store" else "worklist")


def test_the_log_says_when_the_pacs_itself_rejects(through, orthanc):
    r = echoscu(through["store"], called="NOT-ORTHANC")
    assert r.returncode != 0 and "Called AE Title Not Recognized" in r.stderr
    rec = wait_record(through["records"], called_ae="NOT-ORTHANC")
    assert rec["outcome"] == "rejected_by_pacs 1/1/7"
