"""The house's shape, checked: one installed package (dicomtls) whose modules never import a bare
`engine`/`cli`/`wizard`, and no import cycle at run time (tests/engine/test_arrows.py checks the arrows).

The import graph is read from the source (ast), module-level imports only: an import inside a function
runs when it is called, after every module is loaded, and one under `if TYPE_CHECKING:` never runs.
Importing a.b.c runs a/__init__ and a/b/__init__ too, so those are edges as well, except the importer's
own packages (already being imported when it runs); `from a.b import c` reads a.b's namespace, so it is
an edge to a.b even from inside it (the engine/terminator/__init__ -> runner -> server -> `from
engine.terminator import pdu` cycle, now gone)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"dicomtls.engine": "engine", "dicomtls.cli": "cli", "dicomtls.wizard": "wizard", "dicomtls": "dicomtls"}


def modules() -> dict[str, Path]:
    out = {}
    for pkg, folder in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


MODULES = modules()


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Module-level imports, including those in try/if blocks, but not under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def edges(name: str, path: Path) -> set[str]:
    own = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}  # the importer's packages
    out: set[str] = set()

    def add(target: str, *, namespace_read: bool = False) -> None:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in MODULES and (prefix not in own or (namespace_read and prefix == target)):
                out.add(prefix)

    for node in _runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif node.module and node.level == 0:
            add(node.module, namespace_read=True)
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    add(f"{node.module}.{alias.name}")
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's first sighting, by depth-first search (the graph is small)."""
    found, done = [], set()

    def walk(node: str, stack: list[str]) -> None:
        if node in stack:
            found.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            walk(nxt, stack + [node])
        done.add(node)

    for start in sorted(graph):
        walk(start, [])
    return found


def test_the_graph_is_read_and_no_module_imports_a_bare_top_level_name():
    graph = {name: edges(name, path) for name, path in MODULES.items()}
    assert len(graph) > 80 and graph["dicomtls.cli.main"], "the graph has the package's modules and their arrows"
    bare = re.compile(r"^\s*(from|import)\s+(engine|cli|wizard)\b", re.M)
    offenders = [str(p.relative_to(REPO)) for p in [*MODULES.values(), *REPO.glob("tests/**/*.py"),
                                                    *REPO.glob("benchmarks/*.py")] if bare.search(p.read_text())]
    assert offenders == []


def test_no_import_cycle_at_run_time():
    graph = {name: edges(name, path) for name, path in MODULES.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_package_list_covers_every_folder():
    """pyproject lists the packages (the folder mapping needs it): every folder with an __init__.py is there."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed == {n for n, p in MODULES.items() if p.name == "__init__.py"}


def test_the_wheel_installs_one_top_level_package(tmp_path):
    """`pip install .` writes dicomtls/ and its dist-info only: no `engine`, `cli` or `wizard` in site-packages."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                    "-w", str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"dicomtls", wheel.name.split("-")[0] + "-" +
                                                 wheel.name.split("-")[1] + ".dist-info"}
    assert "dicomtls/engine/terminator/__main__.py" in names and "dicomtls/wizard/app.tcss" in names
