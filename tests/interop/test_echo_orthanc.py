"""The echo ladder against Orthanc 1.10.1 (Debian) as a plain-DICOM PACS, on loopback."""

from __future__ import annotations

import pytest

from dicomtls.cli.phrasing import step_action as cli_action
from dicomtls.engine.verify import echo
from tests.support.peers import LOOPBACK

pytestmark = pytest.mark.interop


def test_echo_to_orthanc_succeeds(orthanc):
    assert orthanc.extra["system"]["Version"].startswith("1.")  # the REST API answered: a real Orthanc
    report = echo(LOOPBACK, orthanc.port, called_ae=orthanc.ae_title)
    assert report.ok, report.failed_step
    assert report.status == 0x0000
    assert [s.name for s in report.steps] == ["resolve", "tcp", "associate", "echo", "release"]
    assert "OFFIS_DCMTK" in report.steps[2].detail


def test_wrong_called_ae_is_rejected_by_orthanc_1_1_7(orthanc):
    report = echo(LOOPBACK, orthanc.port, called_ae="NOT-ORTHANC")
    step = report.failed_step
    assert not report.ok and step is not None and step.name == "associate"
    assert step.detail == ("rejected 1/1/7: rejected-permanent, source service-user (the called application), "
                           "reason called AE title not recognised")
    assert "'NOT-ORTHANC'" in step.cause
    assert step.advice.code == "reject.called_ae" and "--called-ae" in cli_action(step)


def test_tls_echo_to_orthancs_plain_port_says_drop_tls(orthanc):
    report = echo(LOOPBACK, orthanc.port, tls=True, insecure=True, called_ae=orthanc.ae_title, timeout=5)
    step = report.failed_step
    assert step is not None and step.name == "tls"
    assert "plain DICOM" in step.cause
    assert step.advice.code == "tls.hung_up" and "drop --tls" in cli_action(step)
    # Orthanc is not left stuck on the aborted handshake: the next plain echo still works
    assert echo(LOOPBACK, orthanc.port, called_ae=orthanc.ae_title).ok
