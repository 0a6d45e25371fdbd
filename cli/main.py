"""`dicomtls`: the headless face of the engine. With no arguments it starts the wizard."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cli.commands import MODULES
from engine import __version__
from engine.errors import UserError

log = logging.getLogger("dicomtls.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomtls",
        description="Terminate DICOM-TLS (Butterfly Cloud) in front of a plain-DICOM PACS. "
                    "With no command, start the setup wizard.",
    )
    parser.add_argument("--version", action="version", version=f"dicomtls {__version__}")
    parser.add_argument("--plan", help="plan file for the wizard (default: the saved plan in the config dir)")
    parser.add_argument("--demo", action="store_true",
                        help="wizard rehearsal: test certificates, a demo PACS and the built-in terminator on loopback")
    parser.add_argument("--backend", choices=["builtin", "netscaler"],
                        help="with --demo: which backend to rehearse (netscaler uses the NITRO simulator)")
    parser.add_argument("--theme", help="wizard colour theme, e.g. ansi-dark or ansi-light for poor terminals")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in MODULES:
        importlib.import_module(f"cli.commands.{name}").register(sub)
    return parser


def run_wizard(args: argparse.Namespace) -> int:
    from wizard.app import run  # imported here: the headless commands never load Textual

    return run(plan_path=args.plan, demo=args.demo, backend=args.backend, theme=args.theme)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from engine.logs import setup_file_logging

    try:
        setup_file_logging()
    except OSError:
        pass  # a read-only home must not stop a check; messages still reach the terminal
    try:
        if args.command is None:
            return run_wizard(args)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing more was changed", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so briefly, keep the traceback in the log file
        log.exception("unexpected error")
        print(f"error: unexpected {type(exc).__name__}: {exc}\n  (details in the log file; please report it)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
