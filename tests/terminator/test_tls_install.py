"""The server TLS context and the install step: DH parameters are RFC 7919's group, the context has
exactly the policy's versions and options, keys are installed 0600 (decrypted if they had a
passphrase) and a bad pair is refused before anything is written; plus the in-process handle the
wizard's demo uses."""

from __future__ import annotations

import math
import ssl
import stat
from decimal import Decimal, getcontext

import pytest
from cryptography.hazmat.primitives import serialization

from dicomtls.engine.ciphers import POLICIES, SSL_VERSIONS
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan
from dicomtls.engine.terminator import run_in_thread
from dicomtls.engine.terminator.install import prepare
from dicomtls.engine.terminator.tlsserver import FFDHE2048_PEM, server_context
from tests.support import pki
from tests.terminator.helpers import LOOPBACK, backend, echo_scp, echoscu, free_port, tls_connect, wait_for, write_plan


def _e_digits(n: int) -> Decimal:
    getcontext().prec = n
    total, term, k = Decimal(1), Decimal(1), 1
    while term > Decimal(10) ** -(n - 2):
        term /= k
        total += term
        k += 1
    return total


def test_dh_parameters_are_rfc7919_ffdhe2048():
    """p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1, g = 2 (RFC 7919 A.1)."""
    e = _e_digits(700)
    want = 2**2048 - 2**1984 + (math.floor(Decimal(2) ** 1918 * e) + 560316) * 2**64 - 1
    numbers = serialization.load_pem_parameters(FFDHE2048_PEM).parameter_numbers()
    assert (numbers.p, numbers.g) == (want, 2)


def test_an_operators_own_dh_parameters_are_kept(tmp_path, tls_files):
    plan = load_plan(write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                                [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                                [{"name": "store", "port": free_port(), "service": "PACS"}]))
    f = tmp_path / "state" / "dhparams.pem"
    f.parent.mkdir(mode=0o700)
    f.write_text("not parameters")
    prepare(plan).write()
    assert f.read_bytes() == FFDHE2048_PEM  # junk replaced
    own = FFDHE2048_PEM.replace(b"-----BEGIN DH PARAMETERS-----\n", b"-----BEGIN DH PARAMETERS-----\n\n")
    f.write_bytes(own)
    prepare(plan).write()
    assert f.read_bytes() == own  # a valid 2048-bit file is left alone


@pytest.mark.parametrize("name", list(POLICIES))
def test_context_matches_the_policy(tls_files, tmp_path, name):
    dh = tmp_path / "dh.pem"
    dh.write_bytes(FFDHE2048_PEM)
    policy = POLICIES[name]
    ctx = server_context(policy, tls_files.server_cert, tls_files.server_key, dh_file=dh)
    assert (ctx.minimum_version, ctx.maximum_version) == (SSL_VERSIONS[policy.min_version],
                                                          SSL_VERSIONS[policy.max_version])
    for flag in (ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION, ssl.OP_NO_TICKET, ssl.OP_CIPHER_SERVER_PREFERENCE):
        assert ctx.options & flag
    assert ctx.num_tickets == 0
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert tls12 == [s.openssl for s in policy.tls12_suites]  # exactly, and in the policy's order


def test_dhe_suites_are_negotiable(tmp_path, tls_files):
    """The DHE suites of bcp195-nd really work (OpenSSL 3 silently cannot do them without parameters)."""
    with backend() as pacs:
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs.port}],
                          [{"name": "store", "port": port, "service": "PACS"}])
        handle = run_in_thread(load_plan(plan))
        try:
            assert handle.wait_ready()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("DHE-RSA-AES256-GCM-SHA384")
            with tls_connect(port) as s:
                assert s.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"  # server preference first
            import socket
            with ctx.wrap_socket(socket.create_connection((LOOPBACK, port))) as s:
                assert s.cipher()[0] == "DHE-RSA-AES256-GCM-SHA384"
        finally:
            handle.stop()


def test_an_encrypted_key_is_installed_decrypted_and_0600(tmp_path):
    key = pki.rsa_key(2048, 7)
    cert = pki.make_cert(cn="localhost", key=key)
    c, k = pki.write_pair(tmp_path, pki.cert_pem(cert), pki.key_pem(key, b"s3cret"))
    plan_path = write_plan(tmp_path, c, k, [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                           [{"name": "store", "port": free_port(), "service": "PACS"}])
    plan = load_plan(plan_path)
    with pytest.raises(UserError) as e:
        prepare(plan)  # no passphrase, nothing installed yet
    assert "encrypted" in e.value.problem
    assert not (tmp_path / "state").exists()
    prepare(plan, "s3cret").write()
    installed = tmp_path / "state" / "key.pem"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert b"ENCRYPTED" not in installed.read_bytes() and b"s3cret" not in installed.read_bytes()
    assert serialization.load_pem_private_key(installed.read_bytes(), None).private_numbers() == key.private_numbers()
    # Now the same plan works without the passphrase (the service never needs it), as does the applied copy.
    assert prepare(plan).fingerprint == prepare(load_plan(tmp_path / "state" / "plan.toml")).fingerprint


def test_an_ecdsa_certificate_under_an_rsa_only_policy_is_refused(tmp_path):
    key = pki.ec_key(3)
    c, k = pki.write_pair(tmp_path, pki.cert_pem(pki.make_cert(cn="localhost", key=key)), pki.key_pem(key))
    plan = write_plan(tmp_path, c, k, [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                      [{"name": "store", "port": free_port(), "service": "PACS"}], policy="bcp195-nd")
    with pytest.raises(UserError) as e:
        prepare(load_plan(plan))
    assert "RSA" in e.value.problem and "bcp195-ex" in e.value.fix
    ok = write_plan(tmp_path, c, k, [{"name": "PACS", "host": LOOPBACK, "port": 104}],
                    [{"name": "store", "port": free_port(), "service": "PACS"}], policy="bcp195-ex", name="ok.toml")
    assert prepare(load_plan(ok)).fingerprint


def test_run_in_thread_is_what_the_wizard_needs(tmp_path, tls_files):
    with echo_scp() as pacs_port:
        port = free_port()
        plan = load_plan(write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                                    [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}],
                                    [{"name": "store", "port": port, "service": "PACS"}]))
        handle = run_in_thread(plan)
        seen: list[dict] = []
        handle.subscribe(seen.append)
        assert handle.ready.wait(10) and bool(handle.ready)
        assert handle.ports == {"store": port}
        assert echoscu(port, calling="BUTTERFLY").returncode == 0
        rec = wait_for(lambda: next((r for r in seen if r.get("event") == "association"), None), 10, "a record")
        assert rec["calling_ae"] == "BUTTERFLY" and rec["outcome"] == "released"
        assert rec["role"] == "store" and "items_to_client" not in rec  # the store path counts nothing
        handle.stop()
        assert not handle._thread.is_alive()
        assert not (tmp_path / "state").exists()  # the demo leaves nothing behind
        with pytest.raises(ConnectionRefusedError):
            tls_connect(port)

        # A busy port: wait_ready raises the clear error, the wizard shows it.
        busy = run_in_thread(plan)
        again = run_in_thread(plan)
        try:
            assert busy.wait_ready()
            with pytest.raises(UserError) as e:
                again.wait_ready()
            assert f"{port}" in e.value.problem and not again.ready
        finally:
            busy.stop()
            again.stop()
