"""The engine's advice (engine.advice) in the CLI's words: options and commands, never wizard keys.

One template per advice code, filled from its data with str.format. wizard/advice.py holds the same
codes in the wizard's words; a test checks both against engine.advice.CODES.
"""

from __future__ import annotations

from typing import Any

from dicomtls.engine.advice import Advice

_TLS_PORT = "drop --tls if {where} is a plain DICOM port, or use the TLS port"

ADVICE: dict[str, str] = {
    "ae.calling_invalid": "give a valid AE title with --calling-ae",
    "ae.called_invalid": "give a valid AE title with --called-ae",
    "echo.bad_timeout": "use e.g. --timeout 10",
    "echo.tls_options_without_tls": "add --tls, or leave --cafile, --insecure and --expect-cert out for a plain "
                                    "DICOM port",
    "echo.expected_cert_unreadable": "give the server's certificate as a PEM file with --expect-cert",
    "echo.expected_cert_not_a_cert": "give the server's certificate (the file with -----BEGIN CERTIFICATE-----) "
                                     "with --expect-cert, not its key",
    "echo.no_response": "check the PACS's (and terminator's) log at this moment; retry with a longer --timeout",
    "reject.called_ae": "use the PACS's own AE title with --called-ae (ask its administrator; the plan's service "
                        "ae_title must match it too)",
    "reject.calling_ae": "add {calling!r} (with this host's address, if the PACS checks it) to the PACS's list of "
                         "known modalities/AEs, or use a calling AE it knows with --calling-ae",
    "tls.untrusted_by_ca": "give the CA (or the server's own self-signed certificate) that issued it with --cafile, "
                           "or pin it with --expect-cert SERVER.pem",
    "tls.untrusted": "give its CA or the certificate itself with --cafile, pin it with --expect-cert SERVER.pem, "
                     "or use --insecure for a rehearsal",
    "tls.silent_port": _TLS_PORT.format(where="{host}:{port}") + "; else retry and check the server",
    "tls.protocol_version": "find which versions it accepts (e.g. `openssl s_client -connect HOST:PORT -tls1_2`); "
                            "Butterfly uses TLS 1.2, so the server or terminator must allow TLS 1.2, or choose a "
                            "--policy that matches",
    "tls.no_shared_cipher": "compare the server's TLS versions and suites with the policy (an sslyze or openssl "
                            "s_client scan shows them); upgrade the server's TLS settings, or try another --policy "
                            "to confirm",
    "tls.not_tls": "drop --tls to test it as a plain DICOM port, or use the port where TLS is served",
    "tls.hung_up": _TLS_PORT.format(where="it") + "; else check the terminator's log",
    "tls.unusable_settings": "try another --policy, or none",
    "assoc.no_answer": "check the service on the peer (and its log); add --tls if it is the TLS port; retry with a "
                       "longer --timeout",
    "assoc.tls_port": "add --tls (with --cafile CA.pem, --expect-cert SERVER.pem or --insecure)",
    "assoc.maybe_tls_port": "add --tls if this is the TLS port; otherwise check the peer's log for why it dropped us",
    "pair.swapped": "give them the other way round: CERT={key} KEY={cert}",
    "pair.give_cert": "give the certificate file (-----BEGIN CERTIFICATE-----) as CERT",
    "pair.give_key": "give the private key file (-----BEGIN PRIVATE KEY-----) that came with the certificate as KEY",
    "cert.expired": "get a new certificate-key pair from Butterfly Cloud's PACS configuration screen (for a "
                    "rehearsal: dicomtls make-cert)",
    "key.passphrase_needed": "give the key's passphrase through an environment variable, never on the command line: "
                             "read -rs KEYPASS && export KEYPASS, then --passphrase-env KEYPASS",
    "files.exist": "choose another --out-dir or file names, or pass --force to replace them",
    "cert.days": "give --days 365, for example",
    "plan.cert_unreadable": "check certificate.cert in the plan (relative to the plan file): {path}",
    "port.in_use": "stop that program, or give this [[virtual_server]] another port in the plan",
    "port.no_address": "give the virtual server's ip one of this host's addresses in the plan, or 0.0.0.0 for all",
    "port.privileged": "run the terminator through `dicomtls install-service` (it grants that capability), or give "
                       "the virtual server a port above 1023",
    "ns.renew_or_rename": "if this is a renewal, run again with --replace-cert (new files, then `update ssl "
                          "certKey`: no moment without a certificate); otherwise give certificate.name another name "
                          "in the plan",
    "ns.renew_binding": "for a renewal of the plan's pair use --replace-cert",
    "ns.resolve_conflicts": "resolve each conflict in the change list (or use --replace-cert for a renewal), then run "
                            "again",
    "ns.connection_missing": "add a [netscaler] table with url, username and password_env to the plan",
    "ns.check_url": "check the management address and port in netscaler.url, that this host can "
                    "reach it (firewall, VPN), and that NITRO over HTTPS is enabled on it; then run "
                    "again",
    "ns.slow": "check that the management address is reachable from here (ping, firewall) and "
               "that NITRO is enabled; raise netscaler.timeout in the plan for a slow ADC; then "
               "run again",
    "ns.fingerprint_changed": "if the ADC's management certificate was replaced on purpose, compare the new "
                              "fingerprint with `show ssl certKey ns-server-certificate` on its console, then "
                              "update netscaler.fingerprint in the plan; otherwise something is intercepting "
                              "the connection: stop and investigate",
    "ns.untrusted": "it presents SHA-256 fingerprint {seen}: if that matches `show ssl certKey "
                    'ns-server-certificate` on the ADC, add fingerprint = "sha256:{seen}" under '
                    "[netscaler] in the plan, or set ca_file to the CA that signed it",
    "ns.ca_file_bad": "give netscaler.ca_file as a PEM file holding the CA that signed the management "
                      "certificate",
    "ns.login_refused": "check netscaler.username in the plan and {source}; a locked-out or expired "
                        "account also gives this",
    "ns.not_primary": "point netscaler.url at the primary node ({primary}): configuration changes are "
                      "made there and synchronised to the other node; then run again",
    "ns.firmware_too_old": "update the ADC's firmware to {release} or later, or configure it by hand with "
                           "the guide's CLI lines (`dicomtls export --format netscaler-cli`)",
    "ns.check_partition": "run again; if it repeats, check that netscaler.partition in the plan names an "
                          "existing admin partition, the one you mean",
    "ns.pair_mismatch": "give the key that belongs to this certificate in the plan's [certificate] "
                        "(check the pair with `dicomtls check-pem CERT KEY`)",
    "ns.cert_refused": "check the pair with `dicomtls check-pem CERT KEY` and give a valid, unexpired "
                       "certificate",
    "ns.name_changed": "if this renewal really changes the name, run again with --replace-cert (it "
                       "passes nodomaincheck)",
    "ns.reuse_pair": 'set certificate.name = "{name}" in the plan to reuse that pair',
    "ns.cipher_unknown": "choose another cipher_policy.profile in the plan, or update the firmware",
    "ns.need_tls12_policy": 'set cipher_policy.profile = "bcp195-nd" (the TLS 1.2 policy) in the plan, then '
                            "run again",
    "ns.rename_cipher_group": "give cipher_policy.name a name of your own in the plan, e.g. TLS-1.2-Only",
    "ns.rename_profile": "give netscaler.ssl_profile another name in the plan",
    "ns.adopt_profile": 'if {have} is stale, set netscaler.ssl_profile = "{have}" in the plan to adopt '
                        "it (its protocols and ciphers are then set to the policy's)",
    "ns.rename_service": "give [[service]] another name in the plan",
    "ns.rename_or_group": "give [[service]] another name in the plan, or list its servers under `members` "
                          "to use the group",
    "ns.add_member": 'if that server is part of this PACS, add {{ host = "{ip}", port = {port} }} to '
                     "the service's `members` in the plan",
    "ns.pacs_by_ip": "give the PACS by IP address in the plan (service.host, or each of "
                     "service.members)",
    "ns.rename_vserver": "give [[virtual_server]] another name in the plan, or remove the stale virtual "
                         "server on the ADC",
    "ns.vserver_address_taken": "give virtual_server {name!r} another ip or port in the plan, or rename it to "
                                "{taken!r} if that is the same virtual server",
    "plan.invalid": "correct the keys above and run `dicomtls plan validate` again",
    "demo.saved_plan_invalid": "fix {path}, or start the rehearsal over with --demo --fresh",
    "demo.not_a_demo_folder": "{path} has no demo marker, so --fresh leaves it alone: remove it yourself if it is "
                              "an old demo folder, then run --demo again",
}


def render(advice: Advice) -> str:
    return ADVICE[advice.code].format(**advice.data)


def fix_text(thing: Any) -> str:
    """The fix of a UserError, CertError or ApplyResult in the CLI's words (its advice if it has one)."""
    adv = getattr(thing, "advice", None)
    return render(adv) if adv is not None else getattr(thing, "fix", "")


def step_action(step: Any) -> str:
    """What to do after a failed ladder step (engine.verify.Step), in the CLI's words."""
    return render(step.advice) if step.advice is not None else step.next_action


def change_fix(change: Any) -> str:
    """A diff Change's hint, then its advice, in the CLI's words."""
    parts = [change.hint] if change.hint else []
    if change.advice is not None:
        parts.append(render(change.advice))
    return "; ".join(parts)
