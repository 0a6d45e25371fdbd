"""The engine's advice (engine.advice) in the wizard's words: its steps, fields and keys.

No command-line option and no plan-file key appears here (a test checks every template); the CLI's
words for the same codes are in cli/phrasing.py.
"""

from __future__ import annotations

from typing import Any

from engine.advice import Advice

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
