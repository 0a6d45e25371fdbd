"""Worklist peers for tests: DCMTK's wlmscpfs over .wl files made with dump2dcm, a pynetdicom
worklist SCP that can stream many items (and honours C-CANCEL), and the configuration that turns
Orthanc's ModalityWorklists plugin on.

Every scheduled step here is fictitious (names "Fictitious^...", IDs "WL-...").
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.peers import LOOPBACK, VERIFICATION, Peer, free_port, wait_for_port
from tests.support.processes import stop

MWL_FIND = "1.2.840.10008.5.1.4.31"
ORTHANC_WORKLIST_PLUGIN = Path("/usr/share/orthanc/plugins/libModalityWorklists.so")


@dataclass(frozen=True)
class Step:
    """One scheduled procedure step of a fictitious patient."""

    patient: str
    accession: str
    date: str
    time: str = "093000"
    modality: str = "US"
    station_ae: str = "BUTTERFLY"
    patient_id: str = ""

    def dump(self) -> str:
        """The step as dcmdump text, for dump2dcm (the .wl file format DCMTK's wlmscpfs reads)."""
        pid = self.patient_id or f"WL-{self.accession}"
        return "\n".join([
            "(0008,0005) CS [ISO_IR 100]",
            f"(0008,0050) SH [{self.accession}]",
            f"(0010,0010) PN [{self.patient}]",
            f"(0010,0020) LO [{pid}]",
            "(0010,0030) DA [19800101]",
            "(0010,0040) CS [O]",
            "(0020,000d) UI [1.2.826.0.1.3680043.8.498.1]",
            "(0032,1060) LO [Fictitious ultrasound]",
            "(0040,0100) SQ (Sequence with explicit length #=1)",
            "  (fffe,e000) na (Item with explicit length #=7)",
            f"    (0008,0060) CS [{self.modality}]",
            f"    (0040,0001) AE [{self.station_ae}]",
            f"    (0040,0002) DA [{self.date}]",
            f"    (0040,0003) TM [{self.time}]",
            "    (0040,0006) PN [Fictitious^Sonographer]",
            "    (0040,0007) LO [Fictitious lung scan]",
            f"    (0040,0009) SH [SPS-{self.accession}]",
            "  (fffe,e00d) na (ItemDelimitationItem)",
            "(fffe,e0dd) na (SequenceDelimitationItem)",
            "(0040,1001) SH [RP-1]",
        ]) + "\n"


def write_wl_files(folder: Path, steps: list[Step]) -> list[Path]:
    """One .wl file per step in `folder`, each made by dump2dcm from its text dump."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, step in enumerate(steps):
        dump, wl = folder / f"step{i}.dump", folder / f"step{i}.wl"
        dump.write_text(step.dump())
        subprocess.run(["dump2dcm", "+te", str(dump), str(wl)], check=True, capture_output=True, timeout=30)
        dump.unlink()
        out.append(wl)
    return out


@contextlib.contextmanager
def wlmscpfs(folder: Path, steps: list[Step], ae_title: str = "WLMSCP") -> Iterator[Peer]:
    """DCMTK `wlmscpfs` (3.6.7) on 127.0.0.1:<free>: its database is folder/db/<AE title>/ (with the
    `lockfile` it requires) holding one .wl file per step. It answers C-ECHO and MWL C-FIND."""
    ae_dir = folder / "db" / ae_title
    write_wl_files(ae_dir, steps)
    (ae_dir / "lockfile").touch()
    port = free_port()
    log = folder / "wlmscpfs.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["wlmscpfs", "-ll", "info", "-dfp", str(folder / "db"), str(port)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, log=log)
        yield Peer(port=port, ae_title=ae_title, log=log)
    finally:
        stop(proc)


@dataclass
class StreamingScp:
    port: int
    sent: list[int]  # items sent per C-FIND
    cancelled: list[bool]  # whether each C-FIND saw a C-CANCEL


@contextlib.contextmanager
def streaming_worklist_scp(items: int, ae_title: str = "MWL",
                           started: threading.Event | None = None) -> Iterator[StreamingScp]:
    """A pynetdicom worklist SCP answering every C-FIND with `items` fictitious steps (then success),
    stopping with 0xFE00 Cancel when the requestor sends a C-CANCEL (PS3.4 K.4.1.1.4)."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt

    state = StreamingScp(port=0, sent=[], cancelled=[])

    def on_find(event):
        state.sent.append(0)
        state.cancelled.append(False)
        for i in range(items):
            if event.is_cancelled:
                state.cancelled[-1] = True
                yield 0xFE00, None
                return
            ds = Dataset()
            ds.PatientName, ds.PatientID, ds.AccessionNumber = f"Fictitious^Patient{i}", f"WL-{i:04d}", f"ACC-{i:04d}"
            sps = Dataset()
            sps.Modality, sps.ScheduledStationAETitle = "US", "BUTTERFLY"
            sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime = "20260101", "0930"
            ds.ScheduledProcedureStepSequence = [sps]
            state.sent[-1] += 1
            yield 0xFF00, ds
        yield 0x0000, None

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(MWL_FIND)
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)])
    state.port = server.server_address[1]
    try:
        yield state
    finally:
        server.shutdown()


def orthanc_worklist_config(database: Path, *, allow_butterfly: bool = True) -> dict:
    """Orthanc keys that load the ModalityWorklists plugin over `database` (a folder of .wl files) and,
    with `allow_butterfly`, let calling AE BUTTERFLY query it (Orthanc refuses unknown AEs' worklist
    queries: DicomAlwaysAllowFindWorklist is false by default)."""
    cfg: dict = {"Plugins": [str(ORTHANC_WORKLIST_PLUGIN)],
                 "Worklists": {"Enable": True, "Database": str(database)}}
    if allow_butterfly:
        cfg["DicomModalities"] = {"butterfly": {"AET": "BUTTERFLY", "Host": LOOPBACK, "Port": 104,
                                                "AllowFindWorklist": True}}
    return cfg
