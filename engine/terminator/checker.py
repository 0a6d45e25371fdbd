"""`python -m dicomtls.engine.terminator.checker PLAN [--passphrase-env VAR]`: the serving terminator's helper.

Loads and checks the plan, the certificate and the key (install.prepare: pydantic, cryptography, OpenSSL's own
verdict on the pair with the policy), writes nothing, and prints one JSON object on stdout for its parent
(bundle.answer reads it): {"ok": true, "bundle": {...}} or {"ok": false, "problem", "fix", "exit_code"}.
Always exits 0 once it has printed that object; bundle.py says why this is a separate process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator.bundle import INTERNAL, REPORT_IT

log = logging.getLogger(__name__)


def check(plan_path: Path, passphrase_env: str | None) -> dict[str, Any]:
    from dicomtls.engine.plan import load_plan
    from dicomtls.engine.terminator.install import prepare

    plan = load_plan(plan_path)
    if plan.backend != "builtin":
        raise UserError(f"{plan_path} has backend = {plan.backend!r}; `serve` runs the built-in terminator",
                        "set backend = \"builtin\" in the plan (or use `dicomtls apply` for the NetScaler)")
    var = passphrase_env or plan.certificate.passphrase_env
    passphrase = os.environ.get(var) if var else None
    return {"ok": True, "bundle": prepare(plan, passphrase, plan_path).bundle().to_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dicomtls.engine.terminator.checker",
                                     description="check a plan for the built-in terminator; print its bundle as JSON")
    parser.add_argument("plan")
    parser.add_argument("--passphrase-env", metavar="VAR")
    args = parser.parse_args(argv)
    try:
        doc = check(Path(args.plan), args.passphrase_env)
    except UserError as exc:
        doc = {"ok": False, "problem": exc.problem, "fix": exc.fix, "exit_code": exc.exit_code}
    except Exception as exc:  # a bug: the traceback to the log file, a short answer to the parent
        from dicomtls.engine.logs import setup_file_logging

        try:
            setup_file_logging()
        except OSError:
            pass
        log.exception("checking %s for the terminator", args.plan)
        doc = {"ok": False, "problem": f"unexpected {type(exc).__name__} while checking the plan: {exc}",
               "fix": REPORT_IT, "exit_code": INTERNAL}
    sys.stdout.write(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
