"""Printing helpers shared by subcommands: one JSON shape per command, plain text otherwise.

The one-object promise of `--json`: a command prints its own object with emit_json() on success
(and on failures it reports itself, like a failed echo); every other outcome (a UserError, an
argparse usage error, an interrupt, a bug) is printed by cli.main as one ErrorOutput, unless the
command already printed its object. `emitted` records that, so no run prints two.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel

from dicomtls.engine.advice import Advice

emitted = False  # a JSON object went to stdout in this run (cli.main prints no second one)


class ErrorBody(BaseModel):
    code: str  # "usage", "bad_input", "conflict", "internal", "interrupted", or a check's own code
    problem: str
    fix: str = ""  # in the CLI's words (advice rendered with its flags)
    advice: Advice | None = None  # the same fix as a code with data, for scripts


class ErrorOutput(BaseModel):
    ok: Literal[False] = False
    error: ErrorBody
    exit_code: int


def emit_json(obj: BaseModel | dict[str, Any]) -> None:
    global emitted
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    emitted = True
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def emit_error(code: str, problem: str, fix: str, exit_code: int, advice: Advice | None = None) -> None:
    """The error object of a --json run, if the command has not printed its own object already."""
    if not emitted:
        emit_json(ErrorOutput(error=ErrorBody(code=code, problem=problem, fix=fix, advice=advice),
                              exit_code=exit_code))


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)
