"""The cipher-policy table: every spelling checked against a real authority.

OpenSSL names against this machine's OpenSSL (the one the terminator and echo client use), IANA
names against `openssl ciphers -stdname`, NetScaler names against the list in the research notes.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import pytest

from dicomtls.engine.ciphers import DEFAULT_POLICY, POLICIES, SUITES, get_policy
from dicomtls.engine.errors import UserError

REPO = Path(__file__).resolve().parents[2]
NOTES = REPO.parent / "shared" / "research" / "nitro.md"
VENDORED = REPO / "tests" / "data" / "netscaler_cipher_names.txt"


def netscaler_names() -> set[str]:
    """From the research note when it is beside the checkout (CI lays shared/ there), else our copy."""
    if NOTES.exists():
        text = NOTES.read_text()
        section = text[text.index("### 8.1"):text.index("## 9.")]
        return set(re.findall(r"`(TLS1[.0-9]*-[A-Z0-9-]+)`", section))
    return {line for line in VENDORED.read_text().splitlines() if line and not line.startswith("#")}


def test_vendored_netscaler_list_matches_the_note():
    vendored = {line for line in VENDORED.read_text().splitlines() if line and not line.startswith("#")}
    assert vendored == netscaler_names()


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_netscaler_name_is_a_documented_builtin(policy):
    known = netscaler_names()
    for name in POLICIES[policy].netscaler_ciphers:
        assert name in known, f"{policy}: {name} is not in docs/research/nitro.md §8.1"


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_tls12_openssl_name_is_known_to_local_openssl(policy):
    p = POLICIES[policy]
    for suite in p.tls12_suites:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # SECLEVEL=0 so that legacy AES128-SHA is judged by name, not by today's default level.
        ctx.set_ciphers(f"{suite.openssl}:@SECLEVEL=0")
        names = {c["name"] for c in ctx.get_ciphers()}
        assert suite.openssl in names


@pytest.mark.parametrize("policy", list(POLICIES))
def test_policy_cipher_string_selects_exactly_its_suites(policy):
    p = POLICIES[policy]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(p.openssl_cipher_string + ":@SECLEVEL=0")
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert tls12 == [s.openssl for s in p.tls12_suites]


def test_tls13_names_are_openssl_defaults():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls13 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"}
    for s in SUITES.values():
        if s.min_version == "1.3":
            assert s.openssl in tls13


def test_iana_names_match_openssl_stdname():
    out = subprocess.run(["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"], capture_output=True, text=True,
                         check=True).stdout
    mapping = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "-":
            mapping[parts[0]] = parts[2]
    for s in SUITES.values():
        assert mapping.get(s.iana) == s.openssl, s.iana


def test_default_policy_is_the_dicom_non_downgrading_profile():
    p = POLICIES[DEFAULT_POLICY]
    assert DEFAULT_POLICY == "bcp195-nd"
    assert p.versions == ("1.2",)
    assert {s.iana for s in p.suites} == {
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}
    assert p.needs_dh_params and p.key_types == ("RSA",)
    assert p.netscaler_protocol_flags() == {"ssl3": "DISABLED", "tls1": "DISABLED", "tls11": "DISABLED",
                                            "tls12": "ENABLED", "tls13": "DISABLED"}


def test_rfc8996_enables_tls13_and_has_no_dhe():
    p = POLICIES["bcp195-rfc8996"]
    assert p.netscaler_protocol_flags()["tls13"] == "ENABLED"
    assert not p.needs_dh_params
    assert "ECDSA" in p.key_types


def test_extended_adds_only_ecdsa_gcm():
    extra = set(POLICIES["bcp195-ex"].suite_names) - set(POLICIES["bcp195-nd"].suite_names)
    assert extra == {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}


def test_only_legacy_is_warned_and_allows_old_versions():
    assert [n for n, p in POLICIES.items() if p.warning] == ["legacy"]
    assert "1.0" in POLICIES["legacy"].versions


def test_every_policy_has_a_one_line_description():
    for p in POLICIES.values():
        assert p.description and "\n" not in p.description and len(p.description) <= 120


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError) as info:
        get_policy("tls12")
    assert "bcp195-nd" in info.value.fix
