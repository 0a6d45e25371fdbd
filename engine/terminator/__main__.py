"""`python -m dicomtls.engine.terminator PLAN`: the terminator's own entry, for the built-in backend's apply.

What `dicomtls serve PLAN` execs, and what the built-in backend starts: the engine starts its terminator without
depending on the CLI package at run time.
"""

from __future__ import annotations

import argparse
import sys

from dicomtls.engine import paths
from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dicomtls.engine.terminator",
                                     description="run the built-in DICOM-TLS terminator in the foreground")
    parser.add_argument("plan", nargs="?", help="plan TOML file (default: the saved plan in the config dir)")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    args = parser.parse_args(argv)
    from dicomtls.engine.logs import setup_file_logging

    try:  # the log file the wizard's Butterfly watch follows, as `dicomtls serve` writes it
        setup_file_logging()
    except OSError:
        pass  # a read-only home must not stop the terminator; stderr still has every line
    try:
        return serve(args.plan or paths.default_plan_path(), passphrase_env=args.passphrase_env)
    except UserError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
