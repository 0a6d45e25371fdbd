"""DICOM Part 10 files for storescu: Secondary Capture images with random 16-bit pixels of a chosen
size (random, so the pixel data is incompressible and every file's hash differs)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def make_image(path: Path, pixel_bytes: int, *, patient: str = "BENCH^DICOMTLS",
               seed: bytes | None = None) -> tuple[str, str]:
    """Write one image whose PixelData is about `pixel_bytes` long; returns (SOP Instance UID,
    SHA-256 hex of the pixel data)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    columns = 512
    rows = max(1, pixel_bytes // (columns * 2))
    pixels = (hashlib.shake_256(seed).digest(rows * columns * 2) if seed is not None
              else os.urandom(rows * columns * 2))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient
    ds.PatientID = "DICOMTLS"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels
    ds.save_as(path, enforce_file_format=True)
    return ds.SOPInstanceUID, hashlib.sha256(pixels).hexdigest()


def pixel_hash(path: Path) -> str:
    import pydicom

    return hashlib.sha256(pydicom.dcmread(path).PixelData).hexdigest()
