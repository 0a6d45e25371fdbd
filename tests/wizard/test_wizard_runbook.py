"""The Markdown runbook and the Butterfly values: exact fields, firewall lines, commands, no secrets."""

from __future__ import annotations

import datetime as dt

from dicomtls.engine.plan import Plan
from dicomtls.wizard import runbook


def plan(backend: str = "builtin") -> Plan:
    data = {
        "backend": backend,
        "certificate": {"cert": "/etc/dicomtls/Butterfly_SCP_Cert.pem", "key": "/etc/dicomtls/Butterfly_SCP_key.pem"},
        "service": [{"name": "Qlink-DICOM", "host": "10.0.0.5", "port": 104, "ae_title": "QLINK"}],
        "virtual_server": [
            {"name": "Butterfly-DICOM-TLS", "ip": "0.0.0.0" if backend == "builtin" else "192.0.2.20", "port": 2761,
             "role": "store", "service": "Qlink-DICOM", "allowed_calling_aes": ["BUTTERFLY"]},
            {"name": "Butterfly-DICOM-TLS-MWL", "ip": "0.0.0.0" if backend == "builtin" else "192.0.2.20",
             "port": 2762, "role": "worklist", "service": "Qlink-DICOM"},
        ],
    }
    if backend == "netscaler":
        data["netscaler"] = {"url": "https://192.0.2.10", "password_env": "MY_NS_PASSWORD"}
    return Plan.model_validate(data)


def test_butterfly_values_are_the_connectivity_fields() -> None:
    p = plan()
    assert runbook.butterfly_values(p, p.virtual_server[1], "198.51.100.7") == [
        ("Host", "198.51.100.7"), ("Port", "2762"), ("TLS", "Active"), ("SCU calling AET", "BUTTERFLY"),
        ("SCP AET", "QLINK")]
    assert runbook.butterfly_values(p, p.virtual_server[0], "")[0] == ("Host", "<the public IP Butterfly connects to>")


def test_firewall_lines() -> None:
    p = plan()
    assert runbook.firewall_rule(p, p.virtual_server[0], "198.51.100.7") == [
        "inbound: TCP from Butterfly Cloud to 198.51.100.7:2761 (NAT to this host)",
        "inside:  TCP from this host to the PACS 10.0.0.5:104"]
    ns = plan("netscaler")
    assert runbook.firewall_rule(ns, ns.virtual_server[0], "198.51.100.7")[0] == \
        "inbound: TCP from Butterfly Cloud to 198.51.100.7:2761 (NAT to 192.0.2.20:2761)"
    assert runbook.firewall_rule(ns, ns.virtual_server[0], "192.0.2.20")[0] == \
        "inbound: TCP from Butterfly Cloud to 192.0.2.20:2761"
    assert "the NetScaler's SNIP" in runbook.firewall_rule(ns, ns.virtual_server[0], "")[1]


def test_runbook_sections_and_commands() -> None:
    text = runbook.render(plan(), "~/.config/dicomtls/plan.toml", {"store": "198.51.100.7"},
                          now=dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC))
    assert text.startswith("# DICOM-TLS termination runbook (builtin)\n")
    assert "Written by `dicomtls` on 2027-01-15 09:30 UTC" in text
    for heading in ("## Certificate", "## Cipher policy", "## Virtual servers",
                    "## Butterfly Cloud: Organization Settings -> Connectivity", "## Commands"):
        assert heading in text
    assert "### store (Butterfly-DICOM-TLS)" in text and "### worklist (Butterfly-DICOM-TLS-MWL)" in text
    assert "| Host | 198.51.100.7 |" in text and "| Port | 2762 |" in text
    assert "allowed calling AEs: BUTTERFLY" in text
    assert "dicomtls serve ~/.config/dicomtls/plan.toml" in text
    assert ("dicomtls echo 127.0.0.1 2762 --tls --insecure --expect-cert /etc/dicomtls/Butterfly_SCP_Cert.pem "
            "--calling-ae BUTTERFLY --called-ae QLINK") in text


def test_netscaler_runbook_names_the_password_variable_only() -> None:
    text = runbook.render(plan("netscaler"), "plan.toml", {})
    assert "password from `$MY_NS_PASSWORD`" in text
    assert "dicomtls serve" not in text  # the built-in terminator's commands only for builtin
    assert "PRIVATE KEY" not in text
