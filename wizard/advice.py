"""The engine's advice (engine.advice) in the wizard's words: its steps, fields and keys.

No command-line option and no plan-file key appears here (a test checks every template); the CLI's
words for the same codes are in cli/phrasing.py.
"""

from __future__ import annotations

import re
from typing import Any

from dicomtls.engine.advice import Advice

_PLAIN_PORT = "on the PACS step, give the PACS's plain DICOM port (this one expects TLS)"
_TLS_PORT = "check the Virtual server step's port is the TLS listener's, and that Apply completed"
_SAME_PAIR = "check the listener serves the pair chosen on the Certificates step"

ADVICE: dict[str, str] = {
    "ae.calling_invalid": "give a valid Calling AE on the Virtual server step",
    "ae.called_invalid": "enter the PACS's own AE title on the PACS step",
    "echo.bad_timeout": "retry with ctrl+t",
    "echo.tls_options_without_tls": "test the PACS's plain DICOM port on the PACS step; certificates are checked "
                                    "on the Echo test step",
    "echo.expected_cert_unreadable": "check the Certificate file on the Certificates step",
    "echo.expected_cert_not_a_cert": "give the certificate (-----BEGIN CERTIFICATE-----), not the key, as the "
                                     "Certificate on the Certificates step",
    "echo.no_response": "check the PACS's (and terminator's) log at this moment; retry with ctrl+t",
    "reject.called_ae": "enter the PACS's own AE title on the PACS step (ask its administrator)",
    "reject.calling_ae": "add {calling!r} (with this host's address, if the PACS checks it) to the PACS's list of "
                         "known modalities/AEs, or use a calling AE it knows (Virtual server step)",
    "tls.untrusted_by_ca": _SAME_PAIR,
    "tls.untrusted": _SAME_PAIR,
    "tls.silent_port": _TLS_PORT + "; else retry with ctrl+t and check the server",
    "tls.protocol_version": "Butterfly uses TLS 1.2, so the server or terminator must allow TLS 1.2: choose a "
                            "cipher policy that matches (Cipher policy step)",
    "tls.no_shared_cipher": "compare the server's TLS versions and suites with the policy (an sslyze or openssl "
                            "s_client scan shows them); upgrade the server's TLS settings, or try another cipher "
                            "policy (Cipher policy step) to confirm",
    "tls.not_tls": _TLS_PORT,
    "tls.hung_up": _TLS_PORT + "; else check the terminator's log",
    "tls.unusable_settings": "choose another cipher policy (Cipher policy step)",
    "assoc.no_answer": "check the service on the peer (and its log); if this is a TLS port, give the PACS's plain "
                       "DICOM port on the PACS step; retry with ctrl+t",
    "assoc.tls_port": _PLAIN_PORT,
    "assoc.maybe_tls_port": "if this is a TLS port, give the PACS's plain DICOM port on the PACS step; otherwise "
                            "check the peer's log for why it dropped us",
    "pair.swapped": "swap them: the Certificate field gets {key}, the Private key field {cert}",
    "pair.give_cert": "give the certificate file (-----BEGIN CERTIFICATE-----) in the Certificate field",
    "pair.give_key": "give the private key file (-----BEGIN PRIVATE KEY-----) that came with the certificate in the "
                     "Private key field",
    "cert.expired": "get a new certificate-key pair from Butterfly Cloud's PACS configuration screen (for a "
                    "rehearsal, ctrl+g generates a test pair)",
    "key.passphrase_needed": "type the key's passphrase in the Passphrase field (it is kept in memory only)",
    "files.exist": "choose another folder or other file names",
    "cert.days": "choose a validity of at least one day",
    "plan.cert_unreadable": "check the Certificate path on the Certificates step: {path}",
    "port.in_use": "stop that program, or give another Port on the Virtual server step",
    "port.no_address": "give one of this host's addresses as the IP address on the Virtual server step "
                       "(0.0.0.0 for all)",
    "port.privileged": "give a Port above 1023 on the Virtual server step, or install the terminator as a service "
                       "afterwards (it grants that capability)",
    "ns.renew_or_rename": "if this is a renewal, choose \"Replace the certificate\" on the Start step (new files, "
                          "then the pair is updated in place: no moment without a certificate); otherwise give "
                          "the Certificates step's Name on backend another name",
    "ns.renew_binding": "for a renewal of this setup's pair, choose \"Replace the certificate\" on the Start step",
    "ns.resolve_conflicts": "resolve each conflict in the change list (or, for a renewal, choose \"Replace the "
                            "certificate\" on the Start step), then apply again",
    "ns.connection_missing": "choose the NetScaler backend on the Start step and give its NITRO URL, User and "
                             "Password",
    "ns.check_url": "check the address and port of the NITRO URL on the Start step, that this host "
                    "can reach it (firewall, VPN), and that NITRO over HTTPS is enabled on it; then "
                    "connect again",
    "ns.slow": "check that the management address is reachable from here (ping, firewall) and "
               "that NITRO is enabled; then connect again (a slow ADC needs a longer NITRO "
               "timeout in the saved plan: the CLI's plan reference names it)",
    "ns.fingerprint_changed": "if the ADC's management certificate was replaced on purpose, compare the new "
                              "fingerprint with `show ssl certKey ns-server-certificate` on its console and "
                              "pin the new one when the Start step asks; otherwise something is intercepting "
                              "the connection: stop and investigate",
    "ns.untrusted": "it presents SHA-256 fingerprint {seen}: if that matches `show ssl certKey "
                    "ns-server-certificate` on the ADC, pin it when the Start step asks",
    "ns.ca_file_bad": "the saved plan names a CA file that cannot be used: give a PEM file holding the "
                      "CA that signed the management certificate there, or remove it to pin the "
                      "certificate on the Start step instead",
    "ns.login_refused": "check the User and Password on the Start step; a locked-out or expired account "
                        "also gives this",
    "ns.not_primary": "give the primary node ({primary}) as the NITRO URL on the Start step: "
                      "configuration changes are made there and synchronised to the other node",
    "ns.firmware_too_old": "update the ADC's firmware to {release} or later, or configure it by hand "
                           "following the vendor's guide",
    "ns.check_partition": "apply again; if it repeats, check that the admin partition the saved plan names "
                          "exists on the ADC",
    "ns.pair_mismatch": "give the Private key that belongs to this certificate on the Certificates step "
                        "(the step checks the pair)",
    "ns.cert_refused": "check the pair on the Certificates step and give a valid, unexpired certificate",
    "ns.name_changed": 'if this renewal really changes the name, choose "Replace the certificate" on '
                       "the Start step (it passes nodomaincheck)",
    "ns.reuse_pair": "give {name} as the Name on backend on the Certificates step to reuse that pair",
    "ns.cipher_unknown": "choose another policy on the Cipher policy step, or update the firmware",
    "ns.need_tls12_policy": "choose the TLS 1.2 policy bcp195-nd on the Cipher policy step, then apply again",
    "ns.rename_cipher_group": "give the Group name on the Cipher policy step a name of your own, e.g. "
                              "TLS-1.2-Only",
    "ns.rename_profile": "give the SSL profile another name in the saved plan (a profile's type cannot be "
                         "changed), then start the wizard again",
    "ns.adopt_profile": "if {have} is stale, name it as the SSL profile in the saved plan to adopt it "
                        "(its protocols and ciphers are then set to the policy's)",
    "ns.rename_service": "give the PACS another Name on the PACS step",
    "ns.rename_or_group": "give the PACS another Name on the PACS step, or give all of the group's servers "
                          "there to use it",
    "ns.add_member": "if that server ({ip}:{port}) is part of this PACS, add it to the PACS step's "
                     "servers",
    "ns.pacs_by_ip": "give the PACS by IP address (Host or IP on the PACS step)",
    "ns.rename_vserver": "give the virtual server another Name on the Virtual server step, or remove the "
                         "stale one on the ADC",
    "ns.vserver_address_taken": "give {name!r} another IP address or Port on the Virtual server step, or the "
                                "Name {taken!r} if that is the same virtual server",
    "plan.invalid": "correct the fields named above",
    "demo.saved_plan_invalid": "fix {path}, or start the rehearsal over",
    "demo.not_a_demo_folder": "{path} has no demo marker and is left alone: remove it yourself if it is an old demo "
                              "folder",
}


def render(advice: Advice) -> str:
    return ADVICE[advice.code].format(**advice.data)


def fix_text(thing: Any) -> str:
    """The fix of a UserError, CertError or ApplyResult in the wizard's words (its advice if it has one)."""
    adv = getattr(thing, "advice", None)
    return render(adv) if adv is not None else getattr(thing, "fix", "")


def step_action(step: Any) -> str:
    """What to do after a failed echo-ladder step (engine.verify.Step), in the wizard's words."""
    return render(step.advice) if step.advice is not None else step.next_action


def change_fix(change: Any) -> str:
    """A diff Change's hint, then its advice, in the wizard's words."""
    parts = [change.hint] if change.hint else []
    if change.advice is not None:
        parts.append(render(change.advice))
    return "; ".join(parts)


# A plan key (entries' [i] taken out) -> (step, field) as the wizard shows it.
_FIELDS: dict[str, tuple[str, str]] = {
    "certificate.cert": ("Certificates", "Certificate"), "certificate.key": ("Certificates", "Private key"),
    "certificate.name": ("Certificates", "Name on backend"), "certificate.passphrase_env": ("Certificates", "Passphrase"),
    "service.name": ("PACS", "Name"), "service.host": ("PACS", "Host or IP"), "service.port": ("PACS", "Port"),
    "service.members": ("PACS", "Host or IP"), "service.ae_title": ("PACS", "AE title"),
    "virtual_server.name": ("Virtual server", "Name"), "virtual_server.ip": ("Virtual server", "IP address"),
    "virtual_server.port": ("Virtual server", "Port"), "virtual_server.calling_ae": ("Virtual server", "Calling AE"),
    "virtual_server.allowed_aes": ("Virtual server", "Allowed AEs"),
    "virtual_server.allowed_clients": ("Virtual server", "Allowed clients"),
    "virtual_server.service": ("Virtual server", "PACS"),
    "cipher_policy.name": ("Cipher policy", "Group name"), "cipher_policy.profile": ("Cipher policy", "policy"),
    "netscaler": ("Start", "NetScaler"), "netscaler.url": ("Start", "NITRO URL"), "netscaler.username": ("Start", "User"),
}


def plan_problem(problem: Any) -> str:
    """A plan problem (engine.plan_errors.PlanProblem) as the step and field that hold it."""
    entry = re.match(r"\w+\[(\d+)\]", problem.key)
    index = int(entry.group(1)) if entry else 0
    key = re.sub(r"\[\d+\]", "", problem.key)
    key = re.sub(r"\.members\..*", ".members", key)
    step, field = next((_FIELDS[k] for k in (key, key.rsplit(".", 1)[0]) if k in _FIELDS), ("", ""))
    if not step:
        return f"the saved plan (edit the plan file): {problem.text or problem.kind}"
    where = f"{field} on the {step} step" + (f" (virtual server {index + 1})" if step == "Virtual server" and index
                                              else "")
    if problem.kind == "missing":
        return f"{where}: missing"
    shown = f" ({problem.value})" if problem.value is not None else ""
    return f"{where}{shown}: {problem.text}"
