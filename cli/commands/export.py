"""`dicomtls export PLAN --format netscaler-cli|nitro`: the plan as a CLI batch or NITRO requests.

Offline: built from the plan alone, without contacting the ADC (for change control before the
change window). The private key and any password or passphrase appear only as placeholders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.backends.netscaler.export import FORMATS, export
from engine.errors import UserError
from engine.plan import load_plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="print a plan as a NetScaler CLI batch or NITRO requests (offline)")
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="netscaler-cli: `add ssl certKey ...` lines; nitro: the REST requests as JSON")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    text = export(plan, args.format, source=str(args.plan))
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
