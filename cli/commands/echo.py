"""`dicomtls echo HOST PORT`: a real DICOM C-ECHO, plain or TLS, reported one rung at a time.

Exit 0 only when the peer answered the C-ECHO with status 0x0000; 1 when a rung failed; 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from cli.output import emit_json
from cli.phrasing import step_action
from engine.ciphers import POLICIES
from engine.errors import UserError
from engine.plan import DEFAULT_CALLED_AE, DEFAULT_CALLING_AE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("echo", help="run a real DICOM C-ECHO (plain or TLS) and say which step fails and why",
                       description="Resolve, connect, (TLS handshake,) associate, C-ECHO and release, each "
                                   "step timed; the first failing step names a likely cause and what to do. "
                                   "Exit 0 only on C-ECHO status 0x0000.")
    p.add_argument("host", help="DICOM endpoint: host name or IP address")
    p.add_argument("port", type=_port, help="its port, e.g. 104, 4242 or 2762")
    p.add_argument("--tls", action="store_true", help="speak DICOM-TLS (the TLS handshake is its own step)")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--cafile", metavar="PEM", help="verify the server's certificate against this CA "
                       "(or the server's self-signed certificate itself)")
    trust.add_argument("--insecure", action="store_true", help="accept any server certificate (rehearsals only)")
    p.add_argument("--expect-cert", metavar="PEM", help="require exactly this server certificate "
                   "(SHA-256 fingerprint pin; enough on its own, no CA needed)")
    p.add_argument("--policy", choices=list(POLICIES), help="cipher policy for the TLS handshake "
                   "(default: TLS 1.2 or later with OpenSSL's default suites)")
    p.add_argument("--calling-ae", default=DEFAULT_CALLING_AE, metavar="AE",
                   help=f"our AE title (default {DEFAULT_CALLING_AE}, as Butterfly calls in)")
    p.add_argument("--called-ae", default=DEFAULT_CALLED_AE, metavar="AE",
                   help=f"the peer's AE title (default {DEFAULT_CALLED_AE}; a PACS usually needs its own)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per step (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every step")
    p.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give a whole number from 1 to 65535") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range; a port is from 1 to 65535")
    return value


def _marks() -> tuple[str, str]:
    """Tick and cross if the terminal can print them (jump hosts are not always UTF-8)."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
        return "✓", "✗"
    except (UnicodeEncodeError, LookupError):
        return "+", "x"


def run(args: argparse.Namespace) -> int:
    if args.policy and not args.tls:
        raise UserError("--policy only applies to a TLS echo", "add --tls, or leave --policy out")
    from engine.verify import Step, checked_ae, echo  # pynetdicom loads only when echo runs

    args.calling_ae = checked_ae("calling", args.calling_ae)  # normalised for the header line
    args.called_ae = checked_ae("called", args.called_ae)
    tick, cross = _marks()
    mode = f"DICOM-TLS ({args.policy or 'TLS 1.2+'})" if args.tls else "plain DICOM"
    header = [f"C-ECHO {args.calling_ae} -> {args.called_ae} at {args.host}:{args.port}, {mode}"]

    def show(step: Step) -> None:
        if header:  # printed with the first rung, so argument errors come alone
            print(header.pop(), flush=True)
        print(f"  {tick if step.ok else cross} {step.name:<9} {step.seconds:7.3f}s  {step.detail}", flush=True)
        if not step.ok:
            print(f"      cause: {step.cause}")
            print(f"      next:  {step_action(step)}", flush=True)

    report = echo(args.host, args.port, tls=args.tls, cafile=args.cafile, insecure=args.insecure,
                  expect_cert=args.expect_cert, calling_ae=args.calling_ae, called_ae=args.called_ae,
                  timeout=args.timeout, policy=args.policy, on_step=None if args.json else show)
    if args.json:  # next_action in the CLI's words for every step; advice keeps the code for scripts
        emit_json(report.model_copy(update={"steps": [s.model_copy(update={"next_action": step_action(s)})
                                                      for s in report.steps]}))
    elif report.ok:
        print("OK: the peer answered the C-ECHO with status 0x0000 (Success)")
    else:
        failed = report.failed_step
        print(f"FAILED at step {failed.name if failed else '?'}: {failed.cause if failed else 'see above'}")
    return 0 if report.ok else 1
