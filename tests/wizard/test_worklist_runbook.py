"""The runbook records the worklist rung's count, never the patient data it saw."""

from __future__ import annotations

from dicomtls.engine.plan import Plan
from dicomtls.engine.verify import EchoReport, Step
from dicomtls.engine.worklist import WorklistItem, WorklistResult, make_query, rung
from dicomtls.wizard.runbook import render


def test_the_runbook_has_the_count_but_no_patient_data(tmp_path):
    items = [WorklistItem(patient_name="Doe^Jane", accession_number="ACC-SECRET", scheduled_date="20260315")]
    plan = Plan.model_validate({
        "certificate": {"cert": "c.pem", "key": "k.pem"},
        "service": [{"name": "RIS", "host": "10.0.0.5", "port": 104, "ae_title": "RIS"}],
        "virtual_server": [{"name": "mwl", "ip": "0.0.0.0", "port": 2762, "role": "worklist", "service": "RIS"}]})
    result = WorklistResult(code="found", count=1, query=make_query(dates="20260315"), items=items,
                            names_shown=True)
    ok, detail, _, _ = rung(result)
    report = EchoReport(ok=True, status=0, steps=[Step(name="worklist", ok=ok, seconds=0.1, detail=detail)],
                        worklist=result)
    text = render(plan, "plan.toml", {"worklist": "203.0.113.1"}, echo={"worklist": report})
    assert "1 scheduled procedure step(s) for modality US" in text
    assert "Doe" not in text and "ACC-SECRET" not in text
