"""Which face's words a text uses: command-line options and plan-file keys (the CLI's), read off the
Plan model so that a new key is covered without editing a list; and the string literals of a module.
Used by the sweeps that keep each face's words out of the other's (tests/engine/test_advice.py,
tests/wizard/test_wizard_advice.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dicomtls.engine.advice import CODES
from dicomtls.engine.plan import Plan

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def plan_keys() -> list[re.Pattern]:
    """What a plan file's keys look like in text: [table], [[table]], table.key, and key_with_underscore."""
    pats: list[re.Pattern] = []
    for table, info in Plan.model_fields.items():
        pats.append(re.compile(rf"\[\[?{table}\]\]?"))
        model = getattr(info.annotation, "model_fields", None) or {}
        for args in getattr(info.annotation, "__args__", ()):  # list[Service], NetScaler | None
            model = model or getattr(args, "model_fields", {})
        for key in model:
            pats.append(re.compile(rf"\b{table}\.{key}\b"))
            if "_" in key:
                pats.append(re.compile(rf"\b{key}\b"))
    return pats


PLAN_KEYS = plan_keys()


def string_literals(path: Path) -> list[str]:
    """The string literals of a module that are not docstrings (f-string holes become X)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append(node.value)
    return out


def cli_words(path: Path) -> list[str]:
    """The literals of a module that name an option or a plan key (identifiers and codes aside)."""
    found = []
    for text in string_literals(path):
        if OPTION.search(text):
            found.append(text)
        elif " " in text and text not in CODES and any(p.search(text) for p in PLAN_KEYS):  # words, not a key
            found.append(text)
    return found
