"""The echo ladder against DCMTK's storescp (3.6.7) as the DICOM-TLS server, on loopback."""

from __future__ import annotations

import pytest

from dicomtls.cli.phrasing import step_action as cli_action
from dicomtls.engine.verify import echo
from tests.support.peers import LOOPBACK, storescp

pytestmark = pytest.mark.interop


def test_tls_echo_to_storescp_with_the_butterfly_policy(storescp_tls, tls_files):
    report = echo(LOOPBACK, storescp_tls.port, tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd",
                  called_ae=storescp_tls.ae_title)
    assert report.ok, report.failed_step
    assert report.status == 0x0000
    assert [s.name for s in report.steps] == ["resolve", "tcp", "tls", "associate", "echo", "release"]
    assert report.tls_version == "TLSv1.2"
    # one of the four suites of PS3.15 B.10, and the certificate storescp was given
    assert report.cipher in {"ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
                             "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384"}
    assert report.server_fingerprint == tls_files.server_fingerprint
    assert "OFFIS_DCMTK" in report.steps[3].detail  # really DCMTK that answered
    assert "Received Echo Request" in storescp_tls.log.read_text()


def test_plain_echo_to_storescp_tls_port_says_add_tls(storescp_tls):
    report = echo(LOOPBACK, storescp_tls.port, called_ae=storescp_tls.ae_title, timeout=5)
    step = report.failed_step
    assert not report.ok and step is not None
    assert step.name == "associate"
    assert "DICOM-TLS port" in step.cause
    assert step.advice.code == "assoc.tls_port" and "add --tls" in cli_action(step)


def test_wrong_pinned_certificate_against_storescp(storescp_tls, tls_files):
    report = echo(LOOPBACK, storescp_tls.port, tls=True, expect_cert=tls_files.other_cert,
                  called_ae=storescp_tls.ae_title)
    assert not report.ok
    assert report.failed_step.name == "tls"
    assert "different certificate from the one expected" in report.failed_step.cause


def test_storescp_with_the_old_aes_profile_shares_no_suite_with_bcp195_nd(tmp_path, tls_files):
    """DCMTK's retired AES profile (+pa: AES128-SHA, TLS 1.0+) against the Butterfly policy (TLS 1.2
    AES-GCM only): the handshake fails and says the server only offers old suites; the legacy policy
    gets through, which shows the server itself works."""
    with storescp(tmp_path, cert=tls_files.server_cert, key=tls_files.server_key, profile="+pa") as peer:
        report = echo(LOOPBACK, peer.port, tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd",
                      called_ae=peer.ae_title, timeout=5)
        legacy = echo(LOOPBACK, peer.port, tls=True, cafile=tls_files.ca_cert, policy="legacy",
                      called_ae=peer.ae_title)
        log = peer.log.read_text()
    step = report.failed_step
    assert step is not None and step.name == "tls"
    assert "HANDSHAKE_FAILURE" in step.detail.upper()
    assert "no cipher suite" in step.cause and "bcp195-nd" in step.cause
    assert "no shared cipher" in log  # DCMTK's side of the same story
    assert legacy.ok, legacy.failed_step
    assert legacy.cipher == "AES128-SHA"
