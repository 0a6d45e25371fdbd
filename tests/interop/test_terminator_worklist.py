"""A Modality Worklist C-FIND (DCMTK findscu -W, as Butterfly's worklist query) through the
terminator's worklist listener to a pynetdicom worklist SCP; and the echo ladder on the same port."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomtls.engine.verify import echo
from tests.terminator.helpers import (
    LOOPBACK,
    REPO,
    VERIFICATION,
    ended,
    free_port,
    terminator,
    wait_for,
    wait_record,
    write_plan,
)

pytestmark = pytest.mark.interop

MWL_FIND = "1.2.840.10008.5.1.4.31"


@contextlib.contextmanager
def worklist_scp(ae_title: str = "MWL") -> Iterator[tuple[int, list]]:
    """A worklist SCP with one scheduled ultrasound; yields (port, identifiers it was queried with)."""
    from pynetdicom import AE, evt

    queries: list[Dataset] = []

    def on_find(event):
        queries.append(event.identifier)
        item = Dataset()
        item.PatientName, item.PatientID, item.AccessionNumber = "Worklist^Patient", "MWL-0001", "ACC-42"
        sps = Dataset()
        sps.Modality, sps.ScheduledStationAETitle = "US", "BUTTERFLY"
        sps.ScheduledProcedureStepStartDate = "20260101"
        item.ScheduledProcedureStepSequence = [sps]
        if event.identifier.ScheduledProcedureStepSequence[0].Modality in ("", "US"):
            yield 0xFF00, item
        yield 0x0000, None

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(MWL_FIND)
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)])
    try:
        yield server.server_address[1], queries
    finally:
        server.shutdown()


def test_findscu_worklist_query_through_the_worklist_listener(tmp_path, tls_files):
    with worklist_scp() as (pacs_port, queries):
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "RIS", "host": LOOPBACK, "port": pacs_port, "ae_title": "MWL"}],
                          [{"name": "mwl", "port": port, "role": "worklist", "service": "RIS",
                            "allowed_calling_aes": ["BUTTERFLY"]}])
        out = tmp_path / "rsp"
        out.mkdir()
        with terminator(plan) as (handle, records):
            r = subprocess.run(["findscu", "-W", "-aet", "BUTTERFLY", "-aec", "MWL", "+tla", "-ic", "-X",
                                "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
                                "-k", "ScheduledProcedureStepSequence[0].Modality=US",
                                "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
                                LOOPBACK, str(port)], cwd=out, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            rsp = sorted(out.glob("rsp*.dcm"))
            assert len(rsp) == 1, (r.stdout, r.stderr)
            ds = pydicom.dcmread(rsp[0])
            assert (str(ds.PatientName), ds.PatientID, ds.AccessionNumber) == ("Worklist^Patient", "MWL-0001",
                                                                               "ACC-42")
            assert ds.ScheduledProcedureStepSequence[0].Modality == "US"
            assert queries and queries[0].ScheduledProcedureStepSequence[0].Modality == "US"
            rec = wait_record(records, outcome="released", listener="mwl")
            assert rec["role"] == "worklist" and rec["called_ae"] == "MWL"

            report = echo(LOOPBACK, port, tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd", called_ae="MWL")
            assert report.ok, report.failed_step
            cli = subprocess.run([sys.executable, "-m", "dicomtls.cli.main", "echo", LOOPBACK, str(port), "--tls", "--cafile",
                                  str(tls_files.ca_cert), "--policy", "bcp195-nd", "--called-ae", "MWL"],
                                 capture_output=True, text=True, timeout=60, cwd=REPO)
            assert cli.returncode == 0, cli.stdout + cli.stderr
            wait_for(lambda: len(ended(records, outcome="released", listener="mwl")) == 3, 10,
                     "3 released associations: findscu, echo(), dicomtls echo")
