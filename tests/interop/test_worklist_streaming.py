"""C-FIND responses stream back as many P-DATA PDUs: 500 worklist items through `dicomtls serve`'s
worklist listener all arrive (findscu -W +tls and our ladder), and a C-CANCEL in mid-stream stops
the query with status 0xFE00 and leaves an association that still works and releases."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from pydicom.dataset import Dataset

from dicomtls.engine.verify import echo
from dicomtls.engine.worklist import identifier, make_query
from tests.support.worklists import MWL_FIND, streaming_worklist_scp
from tests.terminator.helpers import LOOPBACK, VERIFICATION, free_port, serve_process, wait_for, write_plan

pytestmark = pytest.mark.interop

ITEMS = 500


def _plan(tmp_path, tls_files, pacs_port: int):
    port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "RIS", "host": LOOPBACK, "port": pacs_port, "ae_title": "MWL"}],
                      [{"name": "mwl", "port": port, "role": "worklist", "service": "RIS",
                        "allowed_calling_aes": ["BUTTERFLY"]}])
    return plan, port


def test_500_items_all_arrive_through_the_worklist_listener(tmp_path, tls_files):
    out = tmp_path / "rsp"
    out.mkdir()
    with streaming_worklist_scp(ITEMS) as scp:
        plan, port = _plan(tmp_path, tls_files, scp.port)
        with serve_process(plan, tmp_path / "home") as sp:
            r = subprocess.run(["findscu", "-W", "-aet", "BUTTERFLY", "-aec", "MWL", "+tla", "-ic", "-X",
                                "-k", "AccessionNumber", "-k", "ScheduledProcedureStepSequence[0].Modality=US",
                                LOOPBACK, str(port)], cwd=out, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
            assert len(list(out.glob("rsp*.dcm"))) == ITEMS

            report = echo(LOOPBACK, port, tls=True, cafile=tls_files.ca_cert, called_ae="MWL",
                          worklist=make_query(dates="20260101"), timeout=30)
            assert report.ok, report.failed_step
            assert report.worklist.count == ITEMS and len(report.worklist.items) == 5
            assert [i.accession_number for i in report.worklist.items] == [f"ACC-{i:04d}" for i in range(5)]
            recs = wait_for(lambda: len(sp.find("association", role="worklist", outcome="released")) == 2 and
                            sp.find("association", role="worklist", outcome="released"), 15, "2 released")
        assert scp.sent == [ITEMS, ITEMS]
        # Each pending C-FIND-RSP carried an identifier: the PACS sent far more than it received.
        assert all(rec["bytes_to_client"] > ITEMS * 100 > rec["bytes_from_client"] for rec in recs), recs
        assert [rec["items_to_client"] for rec in recs] == [ITEMS, ITEMS]  # counted from the forwarded PDUs


CANCEL_ITEMS = 50_000


def test_c_cancel_mid_stream_through_the_worklist_listener(tmp_path, tls_files):
    from pynetdicom import AE

    # More items than the buffers on the way can hold (the SCP's and the client's socket buffers, the
    # pump's 256 KiB each way: a few MB): 5,000 (~1.5 MB) all fitted in them once on a loaded machine, so
    # the SCP had sent its last item before the client read its 20th and the cancel came too late.
    with streaming_worklist_scp(CANCEL_ITEMS) as scp:
        plan, port = _plan(tmp_path, tls_files, scp.port)
        with serve_process(plan, tmp_path / "home") as sp:
            cx = ssl.create_default_context(cafile=str(tls_files.ca_cert))
            cx.check_hostname = False
            ae = AE(ae_title="BUTTERFLY")
            ae.add_requested_context(MWL_FIND)
            ae.add_requested_context(VERIFICATION)
            assoc = ae.associate(LOOPBACK, port, ae_title="MWL", tls_args=(cx, None))
            assert assoc.is_established
            statuses: list[int] = []
            query: Dataset = identifier(make_query(dates="20260101"))
            responses = assoc.send_c_find(query, MWL_FIND, msg_id=7)
            for status, _ in responses:
                statuses.append(int(status.Status))
                if len(statuses) == 20:
                    cx_id = next(c.context_id for c in assoc.accepted_contexts if c.abstract_syntax == MWL_FIND)
                    assoc.send_c_cancel(7, cx_id)
            assert statuses[-1] == 0xFE00, statuses[-5:]
            assert 20 <= statuses.count(0xFF00) < CANCEL_ITEMS
            echo_rsp = assoc.send_c_echo()  # the association survived the cancel
            assert int(echo_rsp.Status) == 0x0000
            assoc.release()
            assert assoc.is_released
            rec = sp.event("association", role="worklist")
            assert rec["outcome"] == "released", rec
            assert rec["items_to_client"] == statuses.count(0xFF00)
        assert scp.cancelled == [True] and scp.sent[0] < CANCEL_ITEMS
