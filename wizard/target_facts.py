"""The target's facts (engine.backends.base.TargetFacts) and the HA sync state, in the wizard's words,
for Review and Apply: which SSL mode the ADC runs and so which objects it needs, the HA role, the
admin partition. Empty for the built-in terminator."""

from __future__ import annotations

from typing import Any


def describe(f: Any) -> str:
    parts = []
    if f.release:
        parts.append(f"NetScaler release {f.release}")
    if f.ssl_mode == "profile":
        parts.append(f"Default SSL Profile on: protocols and ciphers go in the SSL profile {f.ssl_profile}")
    elif f.ssl_mode == "legacy":
        parts.append("Default SSL Profile off: protocols and ciphers are set on each virtual server")
    if f.ha_role == "secondary":
        parts.append(f"this is the SECONDARY node of an HA pair; the primary is {f.ha_primary or 'the other node'}")
    elif f.ha_role == "primary":
        parts.append(f"primary node of an HA pair (secondary {f.ha_peer})")
    if f.partition:
        parts.append(f"admin partition {f.partition}")
    return "; ".join(parts)


def short(f: Any) -> str:
    """The same facts in a few words, for the Start step's connected line."""
    parts = [f"NetScaler {f.release}" if f.release else "NetScaler"]
    if f.ha_role == "primary":
        parts.append(f"HA primary (secondary {f.ha_peer})" if f.ha_peer else "HA primary")
    if f.ssl_mode:
        parts.append(f"Default SSL Profile {'on' if f.ssl_mode == 'profile' else 'off'}")
    if f.partition:
        parts.append(f"partition {f.partition}")
    return ", ".join(parts)


def sync_line(result: Any) -> str:
    if result.ha_sync == "in-sync":
        return "HA: the secondary node is in sync with the saved configuration (`show ha node` on it shows it)."
    if result.ha_sync == "not-in-sync":
        return (f"! HA: the secondary node is NOT in sync ({result.ha_sync_detail or 'no reason given'}); check "
                "`show ha node` on the primary.")
    if result.ha_sync == "unknown":
        return "HA: the sync state could not be read; check `show ha node` on the primary."
    return ""
