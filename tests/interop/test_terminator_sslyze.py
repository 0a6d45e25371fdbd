"""sslyze against the terminator's listeners: only the policy's protocol versions and suites are
accepted, no compression, no insecure renegotiation, and none of Heartbleed / ROBOT / CCS
injection. TLS 1.0/1.1 are refused under bcp195-nd."""

from __future__ import annotations

import pytest

from dicomtls.engine.ciphers import POLICIES
from tests.terminator.helpers import LOOPBACK, backend, free_port, terminator, write_plan

pytestmark = pytest.mark.interop

VERSION_COMMANDS = {"SSL_2_0_CIPHER_SUITES": None, "SSL_3_0_CIPHER_SUITES": None, "TLS_1_0_CIPHER_SUITES": "1.0",
                    "TLS_1_1_CIPHER_SUITES": "1.1", "TLS_1_2_CIPHER_SUITES": "1.2", "TLS_1_3_CIPHER_SUITES": "1.3"}


def scan(ports: list[int]) -> dict:
    from sslyze import ScanCommand, Scanner, ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum

    commands = {ScanCommand[c] for c in VERSION_COMMANDS} | {
        ScanCommand.TLS_COMPRESSION, ScanCommand.SESSION_RENEGOTIATION, ScanCommand.HEARTBLEED,
        ScanCommand.ROBOT, ScanCommand.OPENSSL_CCS_INJECTION}
    scanner = Scanner(per_server_concurrent_connections_limit=4)
    scanner.queue_scans([ServerScanRequest(server_location=ServerNetworkLocation("localhost", p, LOOPBACK),
                                           scan_commands=commands) for p in ports])
    out = {}
    for result in scanner.get_results():
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
        out[result.server_location.port] = result.scan_result
    return out


def _check(result, policy_name: str) -> None:
    policy = POLICIES[policy_name]
    for command, version in VERSION_COMMANDS.items():
        attempt = getattr(result, command.lower())
        assert attempt.status.name == "COMPLETED", (command, attempt.error_reason)
        accepted = {cs.cipher_suite.name for cs in attempt.result.accepted_cipher_suites}
        if version in policy.versions:
            # The test certificate is RSA: ECDSA suites of a policy cannot be negotiated with it.
            wanted = {s.iana for s in policy.suites if (s.min_version == "1.3") == (version == "1.3")
                      and s.key_type in (None, "RSA")}
            assert accepted == wanted, (command, accepted ^ wanted)
        else:
            assert accepted == set(), (command, accepted)
    assert result.tls_compression.result.supports_compression is False
    reneg = result.session_renegotiation.result
    assert reneg.is_vulnerable_to_client_renegotiation_dos is False
    assert reneg.supports_secure_renegotiation is True  # RFC 5746 indication; client renegotiation refused
    assert result.heartbleed.result.is_vulnerable_to_heartbleed is False
    assert result.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection is False
    assert result.robot.result.robot_result.name.startswith("NOT_VULNERABLE")


def test_sslyze_against_both_listeners_under_bcp195_nd(tmp_path, tls_files):
    with backend() as pacs:
        store, mwl = free_port(), free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                          [{"name": "store", "port": store, "service": "PACS"},
                           {"name": "mwl", "port": mwl, "role": "worklist", "service": "PACS"}])
        with terminator(plan) as (handle, records):
            before = pacs.data_conns
            results = scan([store, mwl])
            assert set(results) == {store, mwl}
            for r in results.values():
                _check(r, "bcp195-nd")
            assert pacs.data_conns == before  # hundreds of scanner handshakes; the PACS saw none


def test_sslyze_under_the_tls_1_2_plus_1_3_policy(tmp_path, tls_files):
    with backend() as pacs:
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                          [{"name": "store", "port": port, "service": "PACS"}], policy="bcp195-rfc8996")
        with terminator(plan):
            _check(scan([port])[port], "bcp195-rfc8996")
