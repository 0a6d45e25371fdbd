"""The shapes of a reconciliation: what the end state is made of, an ApplyStep (requests that make some
changes), and the Reconciliation (changes + steps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.models import NitroRequest

SSL_DIR = "/nsconfig/ssl"
MAX_FILENAME = 63  # systemfile filename limit (NITRO 12.0 reference, configuration/system/systemfile)
# New SSL vservers get this profile in the enhanced mode (NetScaler docs "SSL profile infrastructure").
DEFAULT_FRONTEND_PROFILE = "ns_default_ssl_profile_frontend"
FEATURES = ("LB", "SSL")
VSERVER_TYPE = "SSL_TCP"
SERVICE_TYPE = "TCP"
MONITOR_CLOSE = "RESET"  # the half-open monitor the guide asks for (§6: "Monitoring Connection Close Bit")
# What a new SSL vserver starts with (§9, §10.3): DEFAULT bound, ssl3..tls12 on, tls13 off.
NEW_VSERVER_FLAGS = {"ssl3": "ENABLED", "tls1": "ENABLED", "tls11": "ENABLED", "tls12": "ENABLED", "tls13": "DISABLED"}
NEW_VSERVER_CIPHERS = ["DEFAULT"]
BUILTIN_CIPHER_NAMES = {"DEFAULT", "DEFAULT_BACKEND", "HIGH", "MEDIUM", "LOW", "ALL", "EXPORT", "ECDHE", "SSL3",
                        "TLS1", "TLS1-ECDHE", "TLS1.2", "TLS1.3", "EDH", "AES", "AES-GCM", "RC4", "DES", "3DES"}


def ssl_dir(partition: str | None) -> str:
    """Where the certificate files go: an admin partition keeps its own SSL folder ([UNVERIFIED] path,
    after the NetScaler docs page "Admin partitions": each partition's files under /nsconfig/partitions)."""
    return f"/nsconfig/partitions/{partition}/ssl" if partition else SSL_DIR


@dataclass
class ApplyStep:
    """Requests that make some changes; the unit of progress and of done/not done."""

    changes: list[Change]  # done when this step's requests succeeded
    requests: list[NitroRequest]
    title: str = ""  # for a step that only prepares a later one's changes

    @property
    def label(self) -> str:
        return self.title or "; ".join(step_name(c) for c in self.changes)


def step_name(c: Change) -> str:
    return f"{c.kind} {c.name}: {c.action.value}"


def cli_quote(name: str) -> str:
    """Quote a name for the NetScaler CLI when it has spaces or quotes."""
    return f'"{name}"' if any(ch in name for ch in ' "\'') else name


def batch(resource: str, items: list[dict[str, Any]], method: Literal["GET", "POST", "PUT", "DELETE"] = "POST",
           action: str | None = None) -> NitroRequest:
    """One request for several objects of one type: NITRO's array payload (§13)."""
    body: Any = items[0] if len(items) == 1 else items
    return NitroRequest(method=method, resource=resource, action=action, body={resource: body})


@dataclass
class Reconciliation:
    changes: list[Change]
    steps: list[ApplyStep]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.CONFLICT]
