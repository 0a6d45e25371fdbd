"""`dicomtls echo HOST PORT`: a real DICOM C-ECHO, plain or TLS, reported one rung at a time.

Exit 0 only when the peer answered the C-ECHO with status 0x0000 (and, with --worklist, the
Modality Worklist C-FIND found at least one scheduled procedure step); 1 when a rung failed; 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dicomtls.cli.output import emit_json
from dicomtls.cli.phrasing import step_action
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import DEFAULT_CALLED_AE, DEFAULT_CALLING_AE, DEFAULT_WORKLIST_MODALITY

if TYPE_CHECKING:  # engine.worklist is loaded only for a worklist query
    from dicomtls.engine.worklist import WorklistQuery, WorklistResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    wl = p.add_argument_group("worklist", "after the C-ECHO, a Modality Worklist C-FIND on the same association, "
                              "as Butterfly's worklist query")
    wl.add_argument("--worklist", action="store_true", help="also query the worklist for scheduled procedure steps")
    wl.add_argument("--modality", metavar="CODE", help=f"scheduled modality (default {DEFAULT_WORKLIST_MODALITY})")
    wl.add_argument("--date", metavar="YYYYMMDD[-YYYYMMDD]", help="scheduled date or range (default: today)")
    wl.add_argument("--station-ae", metavar="AE", help="scheduled station AE title (default: any)")
    wl.add_argument("--show-names", action="store_true", help="print patient names unmasked (they are patient data)")
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


def _worklist_query(args: argparse.Namespace) -> WorklistQuery | None:
    given = [f for f, v in (("--modality", args.modality), ("--date", args.date), ("--station-ae", args.station_ae),
                            ("--show-names", args.show_names)) if v]
    if not args.worklist:
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UserError(f"{', '.join(given)} only {verb} to a worklist query", "add --worklist, or leave "
                            + ("it" if len(given) == 1 else "them") + " out")
        return None
    from dicomtls.engine.worklist import make_query

    try:
        return make_query(args.modality or DEFAULT_WORKLIST_MODALITY, args.date, args.station_ae)
    except ValueError as exc:
        fix = {"modality": "give a modality code, e.g. --modality US",
               "date": "give --date YYYYMMDD or --date YYYYMMDD-YYYYMMDD, e.g. --date 20260315-20260316",
               "station": "give a valid AE title with --station-ae, or leave it out for any station"}
        raise UserError(str(exc), fix[str(exc).split()[0]]) from None


def _print_worklist(result: WorklistResult) -> None:
    """The items, one line each (patient names masked unless --show-names), or the query that found none."""
    print(f"Worklist query: {result.query.describe()}")
    for item in result.items:
        print(f"  {item.scheduled or '(no date)':<16}  {item.accession_number or '(no accession)':<16}  "
              f"{item.modality or '-':<3} {item.patient_name or '(no name)'}")
    if result.count > len(result.items):
        print(f"  ... and {result.count - len(result.items)} more")
    if result.items and not result.names_shown:
        print("  (patient names masked; --show-names shows them)")


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
    query = _worklist_query(args)
    from dicomtls.engine.verify import Step, checked_ae, echo  # pynetdicom loads only when echo runs

    args.calling_ae = checked_ae("calling", args.calling_ae)  # normalised for the header line
    args.called_ae = checked_ae("called", args.called_ae)
    tick, cross = _marks()
    mode = f"DICOM-TLS ({args.policy or 'TLS 1.2+'})" if args.tls else "plain DICOM"
    what = "C-ECHO + worklist C-FIND" if query else "C-ECHO"
    header = [f"{what} {args.calling_ae} -> {args.called_ae} at {args.host}:{args.port}, {mode}"]

    def show(step: Step) -> None:
        if header:  # printed with the first rung, so argument errors come alone
            print(header.pop(), flush=True)
        print(f"  {tick if step.ok else cross} {step.name:<9} {step.seconds:7.3f}s  {step.detail}", flush=True)
        if not step.ok:
            print(f"      cause: {step.cause}")
            print(f"      next:  {step_action(step)}", flush=True)

    report = echo(args.host, args.port, tls=args.tls, cafile=args.cafile, insecure=args.insecure,
                  expect_cert=args.expect_cert, calling_ae=args.calling_ae, called_ae=args.called_ae,
                  timeout=args.timeout, policy=args.policy, on_step=None if args.json else show,
                  worklist=query, show_names=args.show_names)
    if args.json:  # next_action in the CLI's words for every step; advice keeps the code for scripts
        emit_json(report.model_copy(update={"steps": [s.model_copy(update={"next_action": step_action(s)})
                                                      for s in report.steps]}))
        return 0 if report.ok else 1
    if report.worklist is not None:
        _print_worklist(report.worklist)
    if report.ok and report.worklist is not None:
        print(f"OK: the C-ECHO succeeded and {report.worklist.count} scheduled procedure step(s) came back")
    elif report.ok:
        print("OK: the peer answered the C-ECHO with status 0x0000 (Success)")
    else:
        failed = report.failed_step
        print(f"FAILED at step {failed.name if failed else '?'}: {failed.cause if failed else 'see above'}")
    return 0 if report.ok else 1
