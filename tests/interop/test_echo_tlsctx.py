"""engine.tlsctx.client_context: the policy's versions and suites, and the trust modes."""

from __future__ import annotations

import ssl

import pytest

from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.tlsctx import client_context

# Written out here, independently of engine.ciphers.SSL_VERSIONS, so a wrong mapping there shows.
VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_versions_and_tls12_suites(name):
    policy = POLICIES[name]
    cx = client_context(name, insecure=True)
    assert cx.minimum_version.name == VERSIONS[policy.min_version]
    assert cx.maximum_version.name == VERSIONS[policy.max_version]
    offered = {c["name"] for c in cx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert offered == {s.openssl for s in policy.tls12_suites}


def test_no_policy_is_tls12_or_later_with_openssl_defaults():
    cx = client_context(None, insecure=True)
    assert cx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert cx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert len(cx.get_ciphers()) > 4


def test_trust_modes(tls_files):
    insecure = client_context("bcp195-nd", insecure=True)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    pinned_ca = client_context("bcp195-nd", cafile=tls_files.ca_cert)
    assert pinned_ca.verify_mode == ssl.CERT_REQUIRED
    assert not pinned_ca.check_hostname  # peers are often IP-addressed and Butterfly's certs self-signed
    assert len(pinned_ca.get_ca_certs()) == 1  # only the given CA, not the system store
    system = client_context(None)
    assert system.verify_mode == ssl.CERT_REQUIRED


def test_trust_errors(tls_files, tmp_path):
    with pytest.raises(UserError, match="not both"):
        client_context(None, cafile=tls_files.ca_cert, insecure=True)
    with pytest.raises(UserError, match="no CA file"):
        client_context(None, cafile=tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(UserError, match="cannot read CA certificates"):
        client_context(None, cafile=junk)
