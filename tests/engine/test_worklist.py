"""The worklist query and result: checked input, the identifier sent, status meanings, masked names,
and no patient data in the rung's words or the runbook."""

from __future__ import annotations

import datetime as dt

import pytest

from dicomtls.engine.worklist import (
    WorklistItem,
    WorklistResult,
    identifier,
    make_query,
    mask_name,
    rung,
    status_meaning,
)


def test_defaults_are_us_today_any_station():
    q = make_query(today=dt.date(2026, 3, 15))
    assert (q.modality, q.dates, q.station_ae) == ("US", "20260315", None)
    assert q.describe() == "modality US, scheduled 20260315, any scheduled station AE"


def test_a_range_a_station_and_a_lower_case_modality():
    q = make_query("us", "20260315-20260320", " BUTTERFLY ")
    assert (q.modality, q.dates, q.station_ae) == ("US", "20260315-20260320", "BUTTERFLY")


@pytest.mark.parametrize("kw, words", [
    ({"dates": "2026-03-15"}, "date '2026-03-15' is not a date or a date range"),
    ({"dates": "20260230"}, "date 20260230 is not a calendar date"),
    ({"dates": "20260320-20260315"}, "date the range 20260320-20260315 ends before it starts"),
    ({"modality": "ULTRASOUND-XYZ"}, "modality 'ULTRASOUND-XYZ' is not a DICOM modality code"),
    ({"station_ae": "A" * 17}, "station AE 'AAAAAAAAAAAAAAAAA' is 17 characters"),
])
def test_bad_input_names_the_part(kw, words):
    with pytest.raises(ValueError) as exc:
        make_query(**kw)
    assert str(exc.value).startswith(words)


def test_identifier_sets_the_matching_keys_and_asks_for_the_return_keys():
    ds = identifier(make_query(dates="20260315-20260316", station_ae="BUTTERFLY"))
    sps = ds.ScheduledProcedureStepSequence[0]
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepStartDate) == (
        "US", "BUTTERFLY", "20260315-20260316")
    for keyword in ("PatientName", "PatientID", "AccessionNumber"):
        assert keyword in ds and ds[keyword].value in ("", None)
    assert "ScheduledProcedureStepStartTime" in sps


@pytest.mark.parametrize("code, words", [(0xA700, "Refused: out of resources"),
                                         (0xA900, "Identifier does not match SOP class"),
                                         (0xC123, "Unable to process"), (0xFE00, "Matching terminated due to Cancel"),
                                         (0x0122, "Refused: SOP class not supported"), (0x1234, "not a Modality")])
def test_status_meanings(code, words):
    assert status_meaning(code).startswith(words)


def test_mask_name_keeps_initials_only():
    assert mask_name("Doe^Jane^Q") == "D***^J***^Q***"
    assert mask_name("Doe") == "D***" and mask_name("") == "" and mask_name("Doe^^") == "D***"


def _result(**kw) -> WorklistResult:
    items = [WorklistItem(patient_name="Doe^Jane", accession_number="ACC-SECRET", scheduled_date="20260315",
                          scheduled_time="093000")]
    return WorklistResult(query=make_query(dates="20260315"), calling_ae="BUTTERFLY", called_ae="RIS",
                          items=items, names_shown=True, **kw)


@pytest.mark.parametrize("kw", [{"code": "found", "count": 1}, {"code": "no_items", "status": 0},
                                {"code": "not_offered", "context_result": "abstract syntax not supported"},
                                {"code": "failed", "status": 0xA700, "status_meaning": "Refused: out of resources"},
                                {"code": "no_response"}])
def test_the_rung_never_carries_patient_data(kw):
    ok, *texts = rung(_result(**kw))
    assert ok == (kw["code"] == "found")
    joined = " ".join(texts)
    assert "Doe" not in joined and "ACC-SECRET" not in joined
    assert not ok or "1 scheduled procedure step(s)" in joined
    if not ok:
        assert all(texts), texts  # detail, cause and next action all said


def test_scheduled_is_readable():
    assert WorklistItem(patient_name="", scheduled_date="20260315", scheduled_time="0930").scheduled == \
        "2026-03-15 09:30"
    assert WorklistItem(patient_name="", scheduled_date="", scheduled_time="").scheduled == ""


def test_no_patient_data_reaches_the_log_file(tmp_path, monkeypatch):
    """The file log as the wizard and CLI set it up (root at DEBUG here), around a worklist rung that
    unmasks names. pynetdicom dumps every C-FIND identifier at DEBUG; the setup caps it at WARNING."""
    import logging

    from dicomtls.engine.demo import DemoPacs
    from dicomtls.engine.logs import setup_file_logging
    from dicomtls.engine.verify import echo

    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    root = logging.getLogger()
    before = list(root.handlers)
    log = setup_file_logging("worklist-test.log", level=logging.DEBUG)
    assert root.getEffectiveLevel() == logging.DEBUG
    pacs = DemoPacs()
    try:
        report = echo("127.0.0.1", pacs.port, called_ae=pacs.ae_title, worklist=make_query(), show_names=True)
    finally:
        pacs.stop()
        for h in root.handlers[:]:
            if h not in before:
                h.flush()
                root.removeHandler(h)
                h.close()
    assert report.ok and report.worklist.items[0].patient_name.startswith("Fictitious^")
    text = log.read_text()
    assert "Fictitious" not in text and "DEMO-ACC" not in text and "DEMO-0001" not in text
