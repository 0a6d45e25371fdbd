"""The cipher-policy table: the one place that spells TLS versions and cipher suites.

Every backend reads its names from here: OpenSSL names for the built-in terminator and the echo
client, NetScaler names for the cipher group, IANA names for people. Sources:
docs/research/dicom-tls.md §1.2 (IANA/OpenSSL, PS3.15 Annex B) and docs/research/nitro.md §8.1 (NetScaler).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

TLSVersion = Literal["1.0", "1.1", "1.2", "1.3"]
KeyType = Literal["RSA", "ECDSA"]

# Python's ssl names for each version, used to build contexts.
SSL_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

# What ssl.SSLSocket.version() reports for each version.
PROTOCOL_NAMES: dict[str, str] = {"1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}

# NetScaler sslvserver protocol flags, in the order the ADC shows them (docs/research/nitro.md §10.3).
# ssl2 is deliberately absent: 13.1+ rejects it.
NETSCALER_PROTOCOL_FLAGS: dict[str, str | None] = {
    "ssl3": None,
    "tls1": "1.0",
    "tls11": "1.1",
    "tls12": "1.2",
    "tls13": "1.3",
}


@dataclass(frozen=True)
class Suite:
    iana: str
    openssl: str
    netscaler: str
    min_version: TLSVersion
    key_type: KeyType | None  # certificate key the suite authenticates with; None for TLS 1.3
    dhe: bool = False


def _s(iana: str, openssl: str, netscaler: str, min_version: TLSVersion = "1.2",
       key_type: KeyType | None = "RSA") -> Suite:
    return Suite(iana, openssl, netscaler, min_version, key_type, dhe=openssl.startswith("DHE-"))


SUITES: dict[str, Suite] = {s.iana: s for s in [
    _s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256"),
    _s("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256", "TLS1.2-DHE-RSA-AES128-GCM-SHA256"),
    _s("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES256-GCM-SHA384"),
    _s("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384", "TLS1.2-DHE-RSA-AES256-GCM-SHA384"),
    _s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-ECDSA-AES128-GCM-SHA256",
       key_type="ECDSA"),
    _s("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-ECDSA-AES256-GCM-SHA384",
       key_type="ECDSA"),
    _s("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", "TLS1-AES-128-CBC-SHA", min_version="1.0"),
    _s("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", "TLS1.3-AES256-GCM-SHA384", "1.3", None),
    _s("TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "TLS1.3-CHACHA20-POLY1305-SHA256", "1.3", None),
    _s("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", "TLS1.3-AES128-GCM-SHA256", "1.3", None),
]}

BCP195_RSA_GCM = [
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
]
TLS13_DEFAULT = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    description: str  # one line for the wizard: what it is and whom it suits
    versions: tuple[TLSVersion, ...]
    suite_names: tuple[str, ...]  # IANA names, in server preference order
    key_types: tuple[KeyType, ...]  # certificate key types that can serve every TLS 1.2 client
    warning: str = ""

    @property
    def suites(self) -> list[Suite]:
        return [SUITES[n] for n in self.suite_names]

    @property
    def tls12_suites(self) -> list[Suite]:
        return [s for s in self.suites if s.min_version != "1.3"]

    @property
    def tls13_suites(self) -> list[Suite]:
        return [s for s in self.suites if s.min_version == "1.3"]

    @property
    def needs_dh_params(self) -> bool:
        return any(s.dhe for s in self.suites)

    @property
    def openssl_cipher_string(self) -> str:
        """For SSLContext.set_ciphers (TLS <= 1.2; TLS 1.3 suites are OpenSSL's defaults)."""
        return ":".join(s.openssl for s in self.tls12_suites)

    @property
    def netscaler_ciphers(self) -> list[str]:
        return [s.netscaler for s in self.suites]

    @property
    def min_version(self) -> TLSVersion:
        return self.versions[0]

    @property
    def max_version(self) -> TLSVersion:
        return self.versions[-1]

    def netscaler_protocol_flags(self) -> dict[str, str]:
        """sslvserver flags: only the policy's versions ENABLED (ssl3 always DISABLED)."""
        return {flag: "ENABLED" if v in self.versions else "DISABLED"
                for flag, v in NETSCALER_PROTOCOL_FLAGS.items()}

    def key_type_ok(self, key_type: str) -> bool:
        return key_type in self.key_types


POLICIES: dict[str, Policy] = {p.name: p for p in [
    Policy(
        name="bcp195-nd",
        title="DICOM Non-downgrading BCP 195 (PS3.15 B.10), TLS 1.2 only",
        description="TLS 1.2 only, the four RSA AES-GCM suites; what Butterfly's TLS 1.2 connector expects. Recommended.",
        versions=("1.2",),
        suite_names=tuple(BCP195_RSA_GCM),
        key_types=("RSA",),
    ),
    Policy(
        name="bcp195-ex",
        title="DICOM Extended BCP 195 (PS3.15 B.11), TLS 1.2 only",
        description="TLS 1.2 only, the RSA suites plus ECDSA AES-GCM; for sites that also use ECDSA certificates.",
        versions=("1.2",),
        suite_names=(*BCP195_RSA_GCM,
                     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        key_types=("RSA", "ECDSA"),
    ),
    Policy(
        name="bcp195-rfc8996",
        title="DICOM BCP 195 RFC 8996/9325 (PS3.15 B.12), TLS 1.2 + 1.3",
        description="The current DICOM profile: TLS 1.2 ECDHE AES-GCM and TLS 1.3; for modern peers, no DHE.",
        versions=("1.2", "1.3"),
        suite_names=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                     "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                     *TLS13_DEFAULT),
        key_types=("RSA", "ECDSA"),
    ),
    Policy(
        name="legacy",
        title="Legacy (retired BCP 195 / AES profile), TLS 1.0-1.2",
        description="Adds AES128-SHA and TLS 1.0/1.1 for old peers only. Not for new setups.",
        versions=("1.0", "1.1", "1.2"),
        suite_names=(*BCP195_RSA_GCM, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        key_types=("RSA",),
        warning=("legacy allows TLS 1.0 and 1.1 and a CBC suite without forward secrecy: retired by DICOM "
                 "and RFC 8996. Use it only for a peer that cannot do TLS 1.2, and plan to retire it."),
    ),
]}

DEFAULT_POLICY = "bcp195-nd"


def get_policy(name: str) -> Policy:
    from dicomtls.engine.errors import UserError

    try:
        return POLICIES[name]
    except KeyError:
        raise UserError(f"unknown cipher policy {name!r}",
                        f"use one of: {', '.join(POLICIES)} (default {DEFAULT_POLICY})") from None
