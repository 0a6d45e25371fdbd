"""Facts about the ADC itself, read before planning: firmware release, HA role, SSL mode.

- Release: `GET config/nsversion` ("NetScaler NS13.1: Build 49.13.nc, ..."), as the Ansible collection's
  module_utils/common.py reads it. This tool follows the NITRO reference of release 12.0 and refuses
  anything older; the `tls13` attribute exists from 12.1 on (the NetScaler docs page "TLS 1.3 protocol support", SSL
  section of docs.netscaler.com; the 12.0 CLI reference's `set ssl vserver` has ssl2..tls12 only).
- HA: `GET config/hanode` lists the nodes; id 0 is the node answering, `state` is Primary or Secondary
  (NITRO 12.0 reference, configuration/ha/hanode). Configuration belongs on the primary.
- SSL mode: `GET config/sslparameter` `defaultprofile` ENABLED means the enhanced ("Default SSL Profile")
  mode, where protocols and ciphers live in SSL profiles, not on the vserver (the NetScaler docs page
  "SSL profile infrastructure"; ryancbutler/Citrix set-nsssl.ps1 switches on the same attribute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dicomtls.engine.backends.netscaler.client import NitroClient
from dicomtls.engine.backends.netscaler.models import HaNode, NsVersion, SslParameter

MIN_RELEASE = (12, 0)  # the oldest release whose NITRO reference this tool was held against
TLS13_RELEASE = (12, 1)  # the first release with TLS 1.3 (and the tls13 attribute)
LATEST_RELEASE = (14, 1)


def parse_release(text: str) -> tuple[int, int] | None:
    """(major, minor) from an nsversion string, or from "13.1"; None when it cannot be read."""
    m = re.search(r"NS(\d+)\.(\d+)", text) or re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def release_text(release: tuple[int, int] | None) -> str:
    return f"{release[0]}.{release[1]}" if release else ""


def has_tls13(release: tuple[int, int] | None) -> bool:
    """Unknown release: assume a current one (an offline export without --release)."""
    return release is None or release >= TLS13_RELEASE


def for_release(flags: dict[str, str], release: tuple[int, int] | None) -> dict[str, str]:
    """Protocol flags as this release knows them: no tls13 attribute before 12.1."""
    return {k: v for k, v in flags.items() if k != "tls13" or has_tls13(release)}


@dataclass
class Ha:
    role: str = "standalone"  # "standalone" | "primary" | "secondary"
    primary: str = ""  # the primary's address (from the secondary's point of view)
    peer: str = ""  # the other node's address
    in_sync: bool | None = None  # the peer's last synchronisation, where the ADC says
    sync_detail: str = ""


def read_ha(client: NitroClient) -> Ha:
    nodes = [HaNode.model_validate(r) for r in client.get("hanode", missing_ok=True)]
    me = next((n for n in nodes if n.id == 0), None)
    peers = [n for n in nodes if n.id != 0]
    if me is None or not peers:
        return Ha()
    peer = peers[0]
    if me.state.upper() == "SECONDARY":
        primary = next((n.ipaddress for n in peers if n.state.upper() == "PRIMARY"), peer.ipaddress)
        return Ha(role="secondary", primary=primary, peer=peer.ipaddress)
    reason = peer.hasyncfailurereason.strip()
    # [UNVERIFIED] what a healthy pair reports here; the NITRO reference names the field only.
    in_sync = None if not peer.hasync else (peer.hasync.upper() == "ENABLED" and reason.upper() in ("", "NONE"))
    return Ha(role="primary", peer=peer.ipaddress, in_sync=in_sync, sync_detail=reason)


def read_release(client: NitroClient) -> tuple[tuple[int, int] | None, str]:
    rows = client.get("nsversion")
    text = NsVersion.model_validate(rows[0]).version if rows else ""
    return parse_release(text), text


def read_ssl_mode(client: NitroClient) -> str:
    rows = client.get("sslparameter", attrs="defaultprofile")
    enabled = rows and SslParameter.model_validate(rows[0]).defaultprofile.upper() == "ENABLED"
    return "profile" if enabled else "legacy"
