"""sslyze against a `dicomtls serve` listener (bcp195-nd): no finding rated above LOW.

Two layers: sslyze's own Mozilla "intermediate" checker (with our test CA, so the certificate chain
validates), whose issues are rated below; and explicit checks of what bcp195-nd promises: TLS 1.2
only, exactly its four suites, no compression, secure renegotiation and no client-initiated
renegotiation, not vulnerable to Heartbleed, CCS injection or ROBOT, DH >= 2048 bits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.dicom_sink import SinkHandle
from dicomtls.engine.ciphers import POLICIES
from tests.reliability.support import echo_once, start_rig

pytestmark = pytest.mark.interop

# Mozilla-checker issue keys and how bad each is for a TLS-1.2-only DICOM listener.
# LOW: a deviation from Mozilla's list that is not a weakness.
SEVERITY = {
    # X448 and P-521 are offered besides Mozilla's X25519/P-256/P-384: stronger curves, not weaker.
    "tls_curves": "LOW",
}
RANK = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


@pytest.fixture(scope="module")
def scan(tmp_path_factory, tls_files):
    from sslyze import (
        CertificateInfoExtraArgument,
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER

    sink = SinkHandle()
    rig = start_rig(tmp_path_factory.mktemp("scan"), tls_files, sink.port)
    try:
        request = ServerScanRequest(
            server_location=ServerNetworkLocation(hostname="localhost", port=rig.port, ip_address="127.0.0.1"),
            scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
            scan_commands_extra_arguments=ScanCommandsExtraArguments(
                certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(tls_files.ca_cert))),
        )
        scanner = Scanner(per_server_concurrent_connections_limit=5)
        scanner.queue_scans([request])
        result = next(iter(scanner.get_results()))
        assert rig.serve.alive()
        assert echo_once(rig.port) < 1.0, "the listener must still serve after the scan"
        yield result
    finally:
        rig.serve.stop()
        sink.stop()


def test_mozilla_intermediate_checker_finds_nothing_above_low(scan):
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    try:
        check_server_against_tls_configuration(scan, MozillaTlsConfiguration.get(
            TlsConfigurationEnum.MOZILLA_INTERMEDIATE))
        issues: dict[str, str] = {}
    except ServerNotCompliantWithTlsConfiguration as exc:
        issues = exc.issues
    rated = {k: SEVERITY.get(k, "HIGH") for k in issues}
    worse = {k: (rated[k], v) for k, v in issues.items() if RANK[rated[k]] > RANK["LOW"]}
    assert not worse, f"findings above LOW: {worse}"


def test_only_tls_1_2_with_exactly_the_policy_suites(scan):
    r = scan.scan_result
    for name in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
                 "tls_1_1_cipher_suites", "tls_1_3_cipher_suites"):
        assert not getattr(r, name).result.accepted_cipher_suites, name
    accepted = {a.cipher_suite.name for a in r.tls_1_2_cipher_suites.result.accepted_cipher_suites}
    assert accepted == {s.iana for s in POLICIES["bcp195-nd"].tls12_suites}
    dh = [a.ephemeral_key.size for a in r.tls_1_2_cipher_suites.result.accepted_cipher_suites
          if type(a.ephemeral_key).__name__ == "DhEphemeralKeyInfo"]
    assert dh and min(dh) >= 2048, dh


def test_no_compression_secure_renegotiation_and_no_known_vulnerability(scan):
    from sslyze import RobotScanResultEnum

    r = scan.scan_result
    assert r.tls_compression.result.supports_compression is False
    reneg = r.session_renegotiation.result
    assert reneg.supports_secure_renegotiation is True
    assert reneg.is_vulnerable_to_client_renegotiation_dos is False
    assert r.heartbleed.result.is_vulnerable_to_heartbleed is False
    assert r.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection is False
    assert r.robot.result.robot_result in (RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
                                           RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED)
    assert r.tls_extended_master_secret.result.supports_ems_extension is True
