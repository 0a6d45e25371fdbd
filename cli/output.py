"""Printing helpers shared by subcommands: one JSON shape per command, plain text otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel


def emit_json(obj: BaseModel | dict[str, Any]) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)
