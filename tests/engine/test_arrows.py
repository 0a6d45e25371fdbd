"""The arrows point one way, at run time too: nothing under engine/ imports cli/ or wizard/ (anywhere,
in a function too), and no engine module starts a process of a face (`-m dicomtls.cli...`)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FACES = ("dicomtls.cli", "dicomtls.wizard", "cli.", "wizard.")  # the installed names, and the bare ones


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_the_sweep_reads_the_engine() -> None:
    assert len(list(ENGINE.rglob("*.py"))) > 40


def test_engine_imports_neither_face() -> None:
    bad = {f"{p.relative_to(ENGINE.parent)}: {m}" for p in ENGINE.rglob("*.py") for m in _imports(p)
           if m.startswith(FACES)}
    assert not bad, bad


def test_engine_starts_no_cli_process() -> None:
    bad = []
    for p in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(FACES):
                bad.append(f"{p.relative_to(ENGINE.parent)}: {node.value!r}")
    assert not bad, bad
