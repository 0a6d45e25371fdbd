"""`dicomtls export PLAN --format netscaler-cli|nitro`: the plan as a CLI batch or NITRO requests.

Offline: built from the plan alone, without contacting the ADC (for change control before the
change window). The private key and any password or passphrase appear only as placeholders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dicomtls.engine.backends.netscaler.adc import parse_release
from dicomtls.engine.backends.netscaler.export import FORMATS, export
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="print a plan as a NetScaler CLI batch or NITRO requests (offline)")
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="netscaler-cli: `add ssl certKey ...` lines; nitro: the REST requests as JSON")
    p.add_argument("--release", metavar="X.Y",
                   help="the ADC's release (`show ns version`), e.g. 12.0 or 13.1; default: the latest")
    p.add_argument("--ssl-mode", choices=("legacy", "profile"), default="legacy",
                   help="profile: the ADC runs the Default SSL Profile (`show ssl parameter`); default legacy")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    release = None
    if args.release:
        release = parse_release(args.release)
        if release is None:
            raise UserError(f"--release {args.release!r} is not a release", "give it as X.Y, e.g. --release 13.1")
    text = export(plan, args.format, source=str(args.plan), release=release, ssl_mode=args.ssl_mode)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror or exc}",
                            "give a path in a folder you may write to") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
