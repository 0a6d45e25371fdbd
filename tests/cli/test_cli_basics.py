"""The CLI as a user meets it: --help, --version and every subcommand's --help in a fresh venv;
plan validation through the real command; errors as messages with a fix, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from dicomtls.cli.main import build_parser
from dicomtls.engine import __version__

REPO = Path(__file__).resolve().parents[2]


def subcommands() -> list[list[str]]:
    """Every command path, read from the real parser, so new commands are covered automatically."""
    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append(prefix + [name])
                    walk(sub, prefix + [name])

    walk(build_parser(), [])
    return out


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory) -> Path:
    """A new venv with the project installed from the source tree (not editable), as a user gets it."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where, with_pip=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + [str(REPO)], check=True, capture_output=True, timeout=600)
    return where / "bin" / "dicomtls"


def test_version_in_fresh_venv(fresh_venv):
    r = subprocess.run([str(fresh_venv), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.strip() == f"dicomtls {__version__}"


def test_help_in_fresh_venv_lists_every_command(fresh_venv):
    r = subprocess.run([str(fresh_venv), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for path in subcommands():
        if len(path) == 1:
            assert path[0] in r.stdout


def test_every_subcommand_help_in_fresh_venv(fresh_venv):
    cmds = subcommands()
    assert ["plan", "validate"] in cmds
    for path in cmds:
        r = subprocess.run([str(fresh_venv), *path, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (path, r.stderr)
        assert r.stdout.startswith("usage: dicomtls " + " ".join(path)), path
        assert "Traceback" not in r.stderr


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, env=e, timeout=60)


def test_plan_validate_ok_and_warnings(tmp_path):
    f = tmp_path / "plan.toml"
    f.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nae_title="PACS"\n'
                 '[[virtual_server]]\nname="V"\nport=2762\nrole="store"\nservice="P"\n')
    r = run_cli("plan", "validate", str(f), env={"DICOMTLS_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    assert "role store usually listens on 2761" in r.stderr


def test_plan_validate_error_is_a_message_with_a_fix(tmp_path):
    f = tmp_path / "plan.toml"
    f.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nport=0\nae_title="PACSPACSPACSPACSX"\n')
    r = run_cli("plan", "validate", str(f), env={"DICOMTLS_HOME": str(tmp_path / "home")})
    assert r.returncode == 2
    assert "service[0].port = 0: must be from 1 to 65535" in r.stderr
    assert "service[0].ae_title = 'PACSPACSPACSPACSX': is 17 characters" in r.stderr
    assert "fix:" in r.stderr
    assert "Traceback" not in r.stderr


def test_plan_validate_json(tmp_path):
    import json

    f = tmp_path / "plan.toml"
    f.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nae_title="PACS"\n')
    r = run_cli("plan", "validate", str(f), "--json", env={"DICOMTLS_HOME": str(tmp_path / "home")})
    data = json.loads(r.stdout)
    assert data["valid"] is True and data["plan"]["service"][0]["port"] == 104


def test_missing_plan_file_is_a_clear_error(tmp_path):
    r = run_cli("plan", "validate", str(tmp_path / "nope.toml"), env={"DICOMTLS_HOME": str(tmp_path / "home")})
    assert r.returncode == 2
    assert "no plan file at" in r.stderr and "Traceback" not in r.stderr


def test_logs_go_to_a_file_not_the_terminal(tmp_path):
    f = tmp_path / "plan.toml"
    f.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nae_title="PACS"\n')
    run_cli("plan", "validate", str(f), env={"DICOMTLS_HOME": str(tmp_path / "home")})
    assert (tmp_path / "home" / "log" / "dicomtls.log").exists()
