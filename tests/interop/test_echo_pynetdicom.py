"""The echo ladder against a real pynetdicom SCP, plain and over TLS, on loopback.

Each case asserts the step that fails, what it says in words and what it advises.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

import pytest

from dicomtls.cli.phrasing import step_action as cli_action
from dicomtls.engine.errors import UserError
from dicomtls.engine.verify import echo
from tests.support.peers import LOOPBACK, pynetdicom_scp, server_context

pytestmark = pytest.mark.interop


def names(report) -> list[str]:
    return [s.name for s in report.steps]


def failed(report):
    step = report.failed_step
    assert step is not None, report
    return step


@pytest.fixture(scope="module")
def plain_scp():
    with pynetdicom_scp("PACS") as peer:
        yield peer


@pytest.fixture(scope="module")
def tls_scp(tls_files):
    with pynetdicom_scp("PACS", ssl_context=server_context(tls_files.server_cert, tls_files.server_key)) as peer:
        yield peer


# --- success -----------------------------------------------------------------------------------------

def test_plain_echo_succeeds_and_reports_every_rung_live(plain_scp):
    seen = []
    report = echo(LOOPBACK, plain_scp.port, called_ae="PACS", on_step=seen.append)
    assert report.ok and report.status == 0x0000
    assert names(report) == ["resolve", "tcp", "associate", "echo", "release"]
    assert [s.name for s in seen] == names(report)  # on_step saw each rung as it finished
    assert all(s.ok and s.seconds >= 0 for s in report.steps)
    assert "accepted: BUTTERFLY -> PACS" in report.steps[2].detail
    assert report.steps[3].detail == "status 0x0000: Success"


def test_tls_echo_with_ca_and_policy_reports_version_cipher_and_fingerprint(tls_scp, tls_files):
    report = echo(LOOPBACK, tls_scp.port, tls=True, cafile=tls_files.ca_cert, policy="bcp195-nd",
                  called_ae="PACS")
    assert report.ok, report.failed_step
    assert names(report) == ["resolve", "tcp", "tls", "associate", "echo", "release"]
    assert report.tls_version == "TLSv1.2"  # the policy is TLS 1.2 only although the server allows 1.3
    assert report.cipher in {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}
    assert report.server_fingerprint == tls_files.server_fingerprint
    assert report.server_subject == "CN=localhost"
    assert tls_files.server_fingerprint in report.steps[2].detail


def test_tls_echo_uses_one_connection(tls_files):
    """The TLS handshake and the association share one TCP connection: a terminator sees one client."""
    opened = []
    with pynetdicom_scp("PACS", ssl_context=server_context(tls_files.server_cert, tls_files.server_key)) as peer:
        proxy_port, stop = _counting_proxy(peer.port, opened)
        try:
            report = echo(LOOPBACK, proxy_port, tls=True, expect_cert=tls_files.server_cert, called_ae="PACS")
        finally:
            stop()
    assert report.ok, report.failed_step
    assert len(opened) == 1


def test_expect_cert_alone_pins_the_leaf_without_a_ca(tls_scp, tls_files):
    report = echo(LOOPBACK, tls_scp.port, tls=True, expect_cert=tls_files.server_cert, called_ae="PACS")
    assert report.ok
    assert "matches the expected certificate" in report.steps[2].detail


# --- failures ----------------------------------------------------------------------------------------

def test_wrong_called_ae_is_rejected_1_1_7_in_words(plain_scp):
    report = echo(LOOPBACK, plain_scp.port, called_ae="NOTPACS")
    step = failed(report)
    assert not report.ok and report.status is None
    assert step.name == "associate"
    assert step.detail.startswith("rejected 1/1/7")
    assert "called AE title not recognised" in step.detail
    assert "rejected-permanent" in step.detail
    assert "'NOTPACS'" in step.cause and step.advice.code == "reject.called_ae"
    assert "--called-ae" in cli_action(step)
    assert names(report)[-1] == "associate"  # the ladder stops at the first failing rung


def test_unknown_calling_ae_is_rejected_1_1_3():
    with pynetdicom_scp("PACS", calling_aes=["MODALITY1"]) as peer:
        report = echo(LOOPBACK, peer.port, called_ae="PACS", calling_ae="BUTTERFLY")
    step = failed(report)
    assert step.detail.startswith("rejected 1/1/3")
    assert "calling AE title not recognised" in step.detail
    assert "'BUTTERFLY'" in step.cause and step.advice.data == {"calling": "BUTTERFLY"}
    assert "--calling-ae" in cli_action(step)


def test_nothing_listening():
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    report = echo(LOOPBACK, port, called_ae="PACS", timeout=3)
    step = failed(report)
    assert names(report) == ["resolve", "tcp"]
    assert "refused" in step.detail
    assert step.cause == f"nothing listens on {LOOPBACK}:{port}"


def test_plain_client_to_tls_port_says_add_tls(tls_scp):
    report = echo(LOOPBACK, tls_scp.port, called_ae="PACS", timeout=3)
    step = failed(report)
    assert step.name == "associate"
    assert "DICOM-TLS port" in step.cause
    assert step.advice.code == "assoc.tls_port" and "add --tls" in cli_action(step)


def test_tls_client_to_plain_port_says_drop_tls(plain_scp):
    report = echo(LOOPBACK, plain_scp.port, tls=True, insecure=True, called_ae="PACS", timeout=3)
    step = failed(report)
    assert step.name == "tls"
    assert "not with TLS" in step.cause or "plain DICOM" in step.cause
    assert "drop --tls" in cli_action(step)


def test_untrusted_certificate_suggests_cafile_pin_or_insecure(tls_scp):
    report = echo(LOOPBACK, tls_scp.port, tls=True, called_ae="PACS", timeout=3)
    step = failed(report)
    assert step.name == "tls"
    assert "certificate verify failed" in step.detail
    for option in ("--cafile", "--expect-cert", "--insecure"):
        assert option in cli_action(step)


def test_wrong_ca_says_which_file(tls_scp, tls_files):
    report = echo(LOOPBACK, tls_scp.port, tls=True, cafile=tls_files.other_cert, called_ae="PACS", timeout=3)
    step = failed(report)
    assert step.name == "tls"
    assert str(tls_files.other_cert) in step.cause


def test_wrong_expected_certificate_fails_the_tls_step(tls_scp, tls_files):
    report = echo(LOOPBACK, tls_scp.port, tls=True, expect_cert=tls_files.other_cert, called_ae="PACS")
    step = failed(report)
    assert step.name == "tls" and names(report)[-1] == "tls"
    assert "different certificate" in step.cause
    assert tls_files.server_fingerprint in step.detail  # what the server really presented
    assert report.server_fingerprint == tls_files.server_fingerprint


def test_wrong_expected_certificate_fails_even_with_a_valid_ca(tls_scp, tls_files):
    report = echo(LOOPBACK, tls_scp.port, tls=True, cafile=tls_files.ca_cert, expect_cert=tls_files.other_cert,
                  called_ae="PACS")
    assert failed(report).name == "tls"


def test_tls13_only_server_refuses_the_tls12_only_policy_with_protocol_version(tls_files):
    """A version mismatch: the server speaks only TLS 1.3, the bcp195-nd policy only TLS 1.2."""
    cx = server_context(tls_files.server_cert, tls_files.server_key, min_version=ssl.TLSVersion.TLSv1_3)
    with pynetdicom_scp("PACS", ssl_context=cx) as peer:
        report = echo(LOOPBACK, peer.port, tls=True, insecure=True, policy="bcp195-nd", called_ae="PACS", timeout=3)
        # the same server is fine for a policy that includes TLS 1.3
        modern = echo(LOOPBACK, peer.port, tls=True, insecure=True, policy="bcp195-rfc8996", called_ae="PACS")
    step = failed(report)
    assert step.name == "tls"
    assert "PROTOCOL_VERSION" in step.detail.upper()
    assert "refuses TLS 1.2" in step.cause
    assert modern.ok and modern.tls_version == "TLSv1.3"


def test_tls10_only_server_shares_nothing_with_bcp195_nd(tls_files):
    """A TLS 1.0-only DICOM-TLS server (OpenSSL 3 allows that only at security level 0).

    Against the TLS 1.2-only bcp195-nd client OpenSSL answers with a handshake_failure alert (no shared
    cipher at TLS 1.0), not protocol_version; the advice must cover old versions. The legacy policy,
    which allows TLS 1.0, does connect: proof that the server really is a working TLS 1.0 peer.
    """
    cx = server_context(tls_files.server_cert, tls_files.server_key, min_version=ssl.TLSVersion.TLSv1,
                        max_version=ssl.TLSVersion.TLSv1, ciphers="DEFAULT:@SECLEVEL=0")
    with pynetdicom_scp("PACS", ssl_context=cx) as peer:
        report = echo(LOOPBACK, peer.port, tls=True, insecure=True, policy="bcp195-nd", called_ae="PACS", timeout=3)
        legacy = echo(LOOPBACK, peer.port, tls=True, insecure=True, policy="legacy", called_ae="PACS")
    step = failed(report)
    assert step.name == "tls"
    assert "HANDSHAKE_FAILURE" in step.detail.upper()
    assert "TLS 1.0/1.1" in step.cause and "bcp195-nd" in step.cause
    assert legacy.ok, legacy.failed_step
    assert legacy.tls_version == "TLSv1"


def test_echo_status_0122_is_a_failure_with_the_status_decoded():
    with pynetdicom_scp("PACS", echo_status=0x0122) as peer:
        report = echo(LOOPBACK, peer.port, called_ae="PACS")
    assert not report.ok
    assert report.status == 0x0122
    step = failed(report)
    assert step.name == "echo"
    assert step.detail.startswith("status 0x0122")
    assert "SOP class not supported" in step.detail
    assert names(report)[-1] == "release" and report.steps[-1].ok  # left politely all the same


def test_silent_server_times_out_at_associate():
    """A port that accepts TCP and never answers: the A-ASSOCIATE wait ends at the timeout."""
    with socket.socket() as srv:
        srv.bind((LOOPBACK, 0))
        srv.listen()
        report = echo(LOOPBACK, srv.getsockname()[1], called_ae="PACS", timeout=1)
    step = failed(report)
    assert step.name == "associate"
    assert "within 1 s" in step.detail
    assert 0.8 < step.seconds < 5


# --- bad arguments -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"called_ae": "A" * 17}, "17 characters"),
    ({"calling_ae": "   "}, "all spaces"),
    ({"called_ae": "PA\\CS"}, "backslash"),
    ({"cafile": "ca.pem"}, "only apply to a TLS echo"),
    ({"tls": True, "cafile": "/nonexistent/ca.pem"}, "no CA file"),
    ({"tls": True, "expect_cert": "/nonexistent/s.pem"}, "cannot read the expected certificate"),
    ({"tls": True, "policy": "tls9"}, "unknown cipher policy"),
    ({"timeout": 0}, "not a positive number"),
])
def test_bad_arguments_raise_user_errors_before_connecting(kwargs, words):
    with pytest.raises(UserError) as err:
        echo(LOOPBACK, 1, **kwargs)
    assert words in err.value.problem
    assert err.value.fix


def test_expect_cert_must_be_a_certificate_not_a_key(tls_files):
    with pytest.raises(UserError) as err:
        echo(LOOPBACK, 1, tls=True, expect_cert=tls_files.server_key)
    assert "holds no usable certificate" in err.value.problem


# --- helpers -------------------------------------------------------------------------------------------

def _counting_proxy(target_port: int, opened: list) -> tuple[int, Callable[[], None]]:
    """A byte-for-byte TCP relay on loopback that records each connection it accepts."""
    srv = socket.socket()
    srv.bind((LOOPBACK, 0))
    srv.listen()
    stopping = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept_loop() -> None:
        srv.settimeout(0.2)
        while not stopping.is_set():
            try:
                client, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            opened.append(client.getpeername())
            upstream = socket.create_connection((LOOPBACK, target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=2)
        srv.close()

    return srv.getsockname()[1], stop
