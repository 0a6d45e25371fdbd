"""PDU parsing and building, checked against pynetdicom's own encoder and decoder (a real DICOM
implementation, not our reading of the standard)."""

from __future__ import annotations

import struct

import pytest
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_RJ

from dicomtls.engine.terminator import pdu
from tests.terminator.helpers import assoc_rq


def test_parses_pynetdicoms_associate_rq():
    raw = assoc_rq("BUTTERFLY", "ORTHANC")
    rq = pdu.parse_associate_rq(raw)
    assert (rq.calling_ae, rq.called_ae, rq.length) == ("BUTTERFLY", "ORTHANC", len(raw) - 6)


@pytest.mark.parametrize("mutate, code", [
    (lambda b: b"\x02" + b[1:], "not_associate_rq"),
    (lambda b: b"\x47" + b[1:], "not_dicom"),
    (lambda b: b[:2] + struct.pack(">I", 10) + b[6:16], "pdu_too_short"),
    (lambda b: b[:2] + struct.pack(">I", pdu.MAX_ASSOCIATE_RQ + 1) + b[6:], "pdu_too_large"),
    (lambda b: b[:6] + b"\x00\x00" + b[8:], "bad_protocol_version"),
    (lambda b: b[:10] + b"\xff" + b[11:], "bad_ae_title"),
    (lambda b: b[:74] + b"\x99" + b[75:], "bad_item"),
    (lambda b: b[:2] + struct.pack(">I", len(b) - 6 + 3) + b[6:] + b"\x10\x00\x00", "bad_item"),
])
def test_rejects_malformed_requests(mutate, code):
    with pytest.raises(pdu.PDUError) as e:
        pdu.parse_associate_rq(mutate(assoc_rq()))
    assert e.value.code == code


def test_reject_and_abort_pdus_decode_in_pynetdicom():
    rj = A_ASSOCIATE_RJ()
    rj.decode(pdu.associate_rj(*pdu.RJ_CALLING_AE_NOT_RECOGNIZED))
    assert (rj.result, rj.source, rj.reason_diagnostic) == (1, 1, 3)
    rj.decode(pdu.associate_rj(*pdu.RJ_TEMPORARY_CONGESTION))
    assert (rj.result, rj.source, rj.reason_diagnostic) == (2, 3, 1)
    ab = A_ABORT_RQ()
    ab.decode(pdu.a_abort(*pdu.ABORT_UNEXPECTED_PDU))
    assert (ab.source, ab.reason_diagnostic) == (2, 2)


def test_tracker_follows_pdus_split_anywhere():
    ac = bytes([pdu.ASSOCIATE_AC, 0]) + struct.pack(">I", 70) + b"\0" * 70
    pdata = bytes([pdu.P_DATA, 0]) + struct.pack(">I", 5000) + b"\x07" * 5000  # body bytes look like A-ABORT
    rp = bytes([pdu.RELEASE_RP, 0]) + struct.pack(">I", 4) + b"\0" * 4
    stream = ac + pdata * 3 + rp
    for step in (1, 5, 6, 7, 4096, len(stream)):
        t = pdu.PduTracker()
        for i in range(0, len(stream), step):
            t.feed(memoryview(stream)[i:i + step])
        assert (t.pdus, t.associate, t.release_rp, t.abort) == (5, "accepted", True, None), step


def test_outcomes():
    up, down = pdu.PduTracker(), pdu.PduTracker()
    down.feed(pdu.associate_rj(1, 1, 7))
    assert pdu.outcome(up, down) == "rejected_by_pacs 1/1/7"
    up, down = pdu.PduTracker(), pdu.PduTracker()
    down.feed(bytes([2, 0, 0, 0, 0, 1, 0]))
    down.feed(pdu.a_abort(2, 0))
    assert pdu.outcome(up, down) == "aborted_by_pacs 2/0"


def _pdv(control: int, payload: bytes, context: int = 1) -> bytes:
    return struct.pack(">IBB", len(payload) + 2, context, control) + payload


def _pdata(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BBI", pdu.P_DATA, 0, len(body)) + body


def _find_stream(items: int) -> bytes:
    """What a worklist SCP sends back: per item a command PDV and its identifier (some identifiers in
    two fragments, some in a PDU of their own), then the final command without a data set, then the
    A-RELEASE-RP."""
    out = b""
    for i in range(items):
        command = _pdv(0x03, b"C" * 40)
        if i % 3 == 0:
            out += _pdata(command, _pdv(0x02, b"D" * (50 + i)))
        elif i % 3 == 1:
            out += _pdata(command) + _pdata(_pdv(0x00, b"d" * 30), _pdv(0x02, b"D" * 20))
        else:
            out += _pdata(command) + _pdata(_pdv(0x00, b"x" * 7)) + _pdata(_pdv(0x02, b"y"))
    out += _pdata(_pdv(0x03, b"F" * 40))
    return out + struct.pack(">BBI", pdu.RELEASE_RP, 0, 4) + b"\0" * 4


@pytest.mark.parametrize("chunk", [1, 5, 6, 7, 64, 10_000])
def test_item_tracker_counts_data_sets_split_anywhere(chunk):
    data = _find_stream(25)
    t = pdu.ItemTracker()
    for i in range(0, len(data), chunk):
        t.feed(memoryview(data)[i:i + chunk])
    assert t.items == 25
    assert t.release_rp


def test_item_tracker_keeps_the_plain_trackers_view():
    data = _find_stream(4)
    plain, items = pdu.PduTracker(), pdu.ItemTracker()
    plain.feed(data)
    items.feed(data)
    assert (items.pdus, items.release_rp, items.associate) == (plain.pdus, plain.release_rp, plain.associate)
    assert items.items == 4 and not hasattr(plain, "items")
