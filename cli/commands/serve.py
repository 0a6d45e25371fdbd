"""`dicomtls serve [PLAN]`: run the built-in terminator in the foreground (systemd-friendly).

Logs one JSON object per line to stderr (the journal under systemd). SIGHUP reloads the plan
(new connections get the new certificate, ciphers and listeners; live associations are untouched;
a broken plan is refused and logged). SIGTERM/SIGINT stop accepting and drain live associations
for up to [builtin] drain_timeout seconds.
"""

from __future__ import annotations

import argparse
import os
import sys

from dicomtls.engine import paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the built-in TLS terminator in the foreground (for systemd)",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", nargs="?", help="path of the plan TOML file (default: the saved plan in the config dir)")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="environment variable holding the private key's passphrase (default: the plan's "
                        "certificate.passphrase_env)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Hand this process over to the terminator's own entry (exec: the same pid, as systemd's Type=notify
    expects), so that what the CLI loaded (pydantic among it) does not stay resident while serving."""
    argv = [sys.executable, "-m", "dicomtls.engine.terminator", str(args.plan or paths.default_plan_path())]
    if args.passphrase_env:
        argv += ["--passphrase-env", args.passphrase_env]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
