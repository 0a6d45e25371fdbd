"""How an address is written: one home, light enough for the terminator's serving process (no pydantic)."""

from __future__ import annotations


def host_port(host: str, port: int | str) -> str:
    """host:port as written in logs and messages; an IPv6 address in brackets ([fd00::5]:104), RFC 3986 §3.2.2."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
