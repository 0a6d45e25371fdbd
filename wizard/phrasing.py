"""The echo ladder's advice in the wizard's words.

engine.verify phrases its next actions for the CLI ("use ... with --called-ae"); in the wizard the
same fix is a field on one of its steps. Whole clauses are rewritten first, then any remaining
option becomes the step that sets it, so no `--flag` ever reaches a wizard user (a test feeds every
string of engine/verify.py through this).
"""

from __future__ import annotations

import re

_PLAIN_PORT = "on the PACS step, give the PACS's plain DICOM port (this one expects TLS)"
_TLS_PORT = "check the Virtual server step's port is the TLS listener's, and that Apply completed"

_CLAUSES: list[tuple[str, str]] = [
    (r"add --tls \(with --cafile CA\.pem, --expect-cert SERVER\.pem or --insecure\)", _PLAIN_PORT),
    (r"add --tls if (this|it) is the TLS port", "if this is a TLS port, give the PACS's plain DICOM port on the "
                                                "PACS step"),
    (r"drop --tls (if \S+ is a plain DICOM port|to test it as a plain DICOM port|if it is a plain DICOM port), "
     r"or use (the TLS port|the port where TLS is served)", _TLS_PORT),
    (r"retry with a (longer )?--timeout", "retry with ctrl+t"),
    (r"use the PACS's own AE title with --called-ae", "enter the PACS's own AE title on the PACS step"),
    (r"use a calling AE it knows with --calling-ae", "use a calling AE it knows (Virtual server step)"),
    (r"give the CA \(or the server's own self-signed certificate\) that issued it with --cafile, "
     r"or pin it with --expect-cert SERVER\.pem", "check the listener serves the pair chosen on the Certificates step"),
    (r"give its CA or the certificate itself with --cafile, pin it with --expect-cert SERVER\.pem, "
     r"or use --insecure for a rehearsal", "check the listener serves the pair chosen on the Certificates step"),
    (r"from the one given with --expect-cert", "from the pair chosen on the Certificates step"),
    (r"matches --expect-cert", "matches the Certificates step's pair"),
    (r"choose a --policy that matches", "choose a cipher policy that matches (Cipher policy step)"),
    (r"try another --policy", "try another cipher policy (Cipher policy step)"),
]

_OPTIONS: dict[str, str] = {
    "--called-ae": "the PACS step's AE title",
    "--calling-ae": "the Virtual server step's calling AE",
    "--expect-cert": "the Certificates step's pair",
    "--cafile": "a CA file",
    "--insecure": "no certificate check",
    "--policy": "the cipher policy (Cipher policy step)",
    "--timeout": "a longer wait",
    "--tls": "TLS",
}
_OPTION_RE = re.compile(r"--[a-z][a-z-]*")


def for_wizard(text: str) -> str:
    for pattern, words in _CLAUSES:
        text = re.sub(pattern, words, text)
    return _OPTION_RE.sub(lambda m: _OPTIONS.get(m.group(0), m.group(0).lstrip("-")), text)


def reword_step(step):
    """The same engine.verify.Step with its texts in the wizard's words."""
    return step.model_copy(update={k: for_wizard(getattr(step, k)) for k in ("detail", "cause", "next_action")})
