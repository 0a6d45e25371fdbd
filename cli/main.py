"""`dicomtls`: the headless face of the engine. With no arguments it starts the wizard."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from typing import NoReturn

from dicomtls.cli import output
from dicomtls.cli.commands import MODULES
from dicomtls.cli.phrasing import fix_text
from dicomtls.engine import __version__
from dicomtls.engine.errors import UserError

log = logging.getLogger("dicomtls.cli")

# A reader that went away (`dicomtls status --json | head -1`) ends the run as SIGPIPE ends other Unix
# tools: quietly, with the shell's 128 + signal number.
PIPE_CLOSED = 128 + signal.SIGPIPE
_EXIT_CODES = {2: "bad_input", 3: "conflict", 4: "partial", 70: "internal", 130: "interrupted"}


class UsageError(Exception):
    """argparse found bad arguments; main() prints them as argparse would, or as JSON with --json."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors reach main() (subcommand parsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dicomtls",
        description="Terminate DICOM-TLS (Butterfly Cloud) in front of a plain-DICOM PACS. "
                    "With no command, start the setup wizard.",
    )
    parser.add_argument("--version", action="version", version=f"dicomtls {__version__}")
    parser.add_argument("--plan", help="plan file for the wizard (default: the saved plan in the config dir; "
                                       "with --demo, the demo folder's)")
    parser.add_argument("--demo", action="store_true",
                        help="wizard rehearsal: test certificates, a demo PACS and the built-in terminator on "
                             "loopback; a second run continues from the first one's plan")
    parser.add_argument("--fresh", action="store_true",
                        help="with --demo: start the rehearsal over (empties the demo folder first)")
    parser.add_argument("--backend", choices=["builtin", "netscaler"],
                        help="with --demo: which backend to rehearse (netscaler uses the NITRO simulator)")
    parser.add_argument("--theme", help="wizard colour theme, e.g. ansi-dark or ansi-light for poor terminals")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in MODULES:
        importlib.import_module(f"dicomtls.cli.commands.{name}").register(sub)
    return parser


def run_wizard(args: argparse.Namespace) -> int:
    from dicomtls.wizard.app import run  # imported here: the headless commands never load Textual

    return run(plan_path=args.plan, demo=args.demo, backend=args.backend, theme=args.theme, fresh=args.fresh)


def wants_json(argv: list[str]) -> bool:
    """--json among the options (not after a `--`), read from the raw arguments: usage errors have no args."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    output.emitted = False
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then an exception we handle
    except BrokenPipeError:
        # Python docs, "Note on SIGPIPE": point stdout at devnull so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED
    return code


def _run(argv: list[str]) -> int:
    as_json = wants_json(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        if as_json:
            output.emit_error("usage", exc.message, f"see `{exc.parser.prog} --help`", 2)
        else:
            exc.parser.print_usage(sys.stderr)
            print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
        return 2
    from dicomtls.engine.logs import setup_file_logging

    try:
        setup_file_logging()
    except OSError:
        pass  # a read-only home must not stop a check; messages still reach the terminal
    try:
        if args.command is None:
            return run_wizard(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except UserError as exc:
        fix = fix_text(exc)
        if as_json and not output.emitted:
            code = getattr(exc, "code", None) or _EXIT_CODES.get(exc.exit_code, "error")
            output.emit_error(code, exc.problem, fix, exc.exit_code, exc.advice)
        else:  # (also when the command printed its object already: the error is not lost)
            print(f"error: {exc.problem}", file=sys.stderr)
            if fix:
                print(f"  fix: {fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if as_json:
            output.emit_error("interrupted", "interrupted", "nothing more was changed; run the command again", 130)
        print("interrupted; nothing more was changed", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so briefly, keep the traceback in the log file
        log.exception("unexpected error")
        if as_json:
            output.emit_error("internal", f"unexpected {type(exc).__name__}: {exc}",
                              "details are in the log file; please report it", 70)
        print(f"error: unexpected {type(exc).__name__}: {exc}\n  (details in the log file; please report it)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
