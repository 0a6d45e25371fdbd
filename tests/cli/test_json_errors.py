"""The CLI's one-object promise: with --json, stdout holds exactly one JSON object for every outcome
(success, a UserError, an argparse usage error, a bug), and a closed stdout pipe ends the run quietly.

Subprocess tests run the real console script; the command list comes from the real parser, so a new
command or a new --json flag is covered without touching this file.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtls.cli import main as cli_main
from dicomtls.cli.main import PIPE_CLOSED, build_parser
from dicomtls.engine.rehearsal.pairs import make_self_signed

DICOMTLS = str(Path(sys.executable).parent / "dicomtls")


def command_parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every runnable command path (leaves of the parser tree) and its parser."""
    out: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and prefix:
            out[prefix] = parser
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, prefix + (name,))

    walk(build_parser(), ())
    return out


COMMANDS = command_parsers()
JSON_COMMANDS = [path for path, p in COMMANDS.items() if any("--json" in a.option_strings for a in p._actions)]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def dicomtls(*args: str, home: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "DICOMTLS_HOME": str(home), "HOME": str(home)}
    env.pop("DICOMTLS_NITRO_PASSWORD", None)
    return subprocess.run([DICOMTLS, *args], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL, **kw)


def one_object(stdout: str) -> dict:
    """stdout parsed as exactly one JSON object (json.loads refuses trailing data, e.g. a second object)."""
    doc = json.loads(stdout)
    assert isinstance(doc, dict), stdout
    return doc


def assert_error_object(r: subprocess.CompletedProcess, code: str | None = None) -> dict:
    assert "Traceback" not in r.stderr, r.stderr
    doc = one_object(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == r.returncode != 0, doc
    assert set(doc["error"]) >= {"code", "problem", "fix"} and doc["error"]["problem"], doc
    if code is not None:
        assert doc["error"]["code"] == code, doc
    return doc


def test_the_sweeps_below_are_not_vacuous():
    assert {("check-pem",), ("plan", "validate"), ("apply",), ("status",), ("echo",)} <= set(JSON_COMMANDS)
    assert ("serve",) in COMMANDS and ("serve",) not in JSON_COMMANDS  # a command without --json is swept too


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_a_usage_error_with_json_is_one_error_object(path, tmp_path):
    """Unknown option (and, for commands without --json, --json itself): argparse's error, as JSON, exit 2."""
    r = dicomtls(*path, "--json", "--no-such-option", home=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    doc = assert_error_object(r, "usage")
    assert "--help" in doc["error"]["fix"] and r.stderr == ""


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_a_usage_error_without_json_is_argparse_s_message(path, tmp_path):
    r = dicomtls(*path, "--no-such-option", home=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("usage: dicomtls") and "error: " in r.stderr


@pytest.mark.parametrize("path", JSON_COMMANDS, ids=" ".join)
def test_every_json_command_s_error_path_is_one_error_object(path, tmp_path):
    """Each positional given as a file that does not exist: whatever the command makes of it (a missing
    plan, certificate or host; a port that is not a number), stdout is one error object."""
    args = [str(tmp_path / "does-not-exist") for _ in positionals(COMMANDS[path])]
    r = dicomtls(*path, *args, "--json", home=tmp_path)
    if path == ("check",):  # the monitoring-plugin convention: UNKNOWN (3), as its own one object
        assert r.returncode == 3 and one_object(r.stdout)["level"] == 3, (r.stdout, r.stderr)
        return
    assert r.returncode in (1, 2), (r.stdout, r.stderr)
    if r.returncode == 1:  # a command that reports its own failure (echo: the ladder's failed rung)
        assert one_object(r.stdout)["ok"] is False
    else:
        assert_error_object(r)


def test_plan_validate_of_a_bad_plan_is_one_error_object(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nport=0\nae_title="PACS"\n')
    r = dicomtls("plan", "validate", str(bad), "--json", home=tmp_path)
    assert r.returncode == 2
    doc = assert_error_object(r, "bad_input")
    assert "service[0].port = 0" in doc["error"]["problem"] and r.stderr == ""


def test_a_user_error_carries_its_advice_and_the_cli_s_words(tmp_path):
    r = dicomtls("echo", "127.0.0.1", "104", "--called-ae", "A\\B", "--json", home=tmp_path)
    doc = assert_error_object(r, "bad_input")
    assert doc["error"]["advice"] == {"code": "ae.called_invalid", "data": {}}
    assert "--called-ae" in doc["error"]["fix"]


def test_apply_with_a_conflict_prints_its_diff_as_the_one_object(tmp_path):
    """apply prints the diff, then fails with exit 3: no second (error) object follows."""
    make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        plan = tmp_path / "plan.toml"
        plan.write_text(f'[certificate]\ncert="c.pem"\nkey="k.pem"\n'
                        f'[[service]]\nname="P"\nhost="127.0.0.1"\nport=104\nae_title="PACS"\n'
                        f'[[virtual_server]]\nname="V"\nip="127.0.0.1"\nport={port}\nrole="store"\nservice="P"\n'
                        f'[builtin]\nstate_dir="{tmp_path / "state"}"\n')
        r = dicomtls("apply", str(plan), "--json", "--yes", home=tmp_path)
    assert r.returncode == 3, r.stderr
    doc = one_object(r.stdout)
    assert doc["applied"] is False
    conflict = next(c for c in doc["diff"]["changes"] if c["action"] == "conflict")
    assert conflict["advice"] == {"code": "port.in_use", "data": {}}
    assert f"port {port} on 127.0.0.1 is in use by another program" in conflict["hint"]
    assert "error: 1 conflict(s)" in r.stderr


def test_an_unexpected_error_is_one_internal_error_object(monkeypatch, capsys, tmp_path):
    """A bug in a command: exit 70, one object on stdout, the traceback in the log file only."""
    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    import dicomtls.cli.commands.status as status

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(status, "run", broken)
    assert cli_main.main(["status", "plan.toml", "--json"]) == 70
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc == {"ok": False, "exit_code": 70, "error": {
        "code": "internal", "problem": "unexpected RuntimeError: boom",
        "fix": "details are in the log file; please report it", "advice": None}}
    assert "Traceback" not in err
    assert "RuntimeError: boom" in (tmp_path / "log" / "dicomtls.log").read_text()


def closed_pipe_run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reading end is already closed (`| head -0` without the race)."""
    read, write = os.pipe()
    os.close(read)
    try:
        env = {**os.environ, "DICOMTLS_HOME": str(home), "HOME": str(home)}
        return subprocess.run([DICOMTLS, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                              env=env, stdin=subprocess.DEVNULL)
    finally:
        os.close(write)


@pytest.mark.parametrize("json_flag", [["--json"], []], ids=["json", "text"])
def test_a_closed_pipe_ends_quietly(json_flag, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nae_title="PACS"\n'
                    '[[virtual_server]]\nname="V"\nport=2761\nrole="store"\nservice="P"\n'
                    f'[builtin]\nstate_dir="{tmp_path / "state"}"\n')
    for args in (["plan", "validate", str(plan)], ["status", str(plan)]):
        r = closed_pipe_run([*args, *json_flag], tmp_path)
        assert r.returncode == PIPE_CLOSED == 141, (args, r.stderr)
        assert r.stderr == "", (args, r.stderr)  # no "unexpected BrokenPipeError", no "Exception ignored"


def test_head_dash_1_reads_the_first_line_and_the_command_ends_quietly(tmp_path):
    """The shell pipeline as a user types it."""
    plan = tmp_path / "plan.toml"
    plan.write_text('[[service]]\nname="P"\nhost="10.0.0.5"\nae_title="PACS"\n'
                    f'[builtin]\nstate_dir="{tmp_path / "state"}"\n')
    env = {**os.environ, "DICOMTLS_HOME": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run(["bash", "-c", f'"{DICOMTLS}" status "{plan}" --json | head -1; '
                                      'echo "exit=${PIPESTATUS[0]}" >&2'],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout == "{\n"
    assert r.stderr.strip() in ("exit=0", f"exit={PIPE_CLOSED}"), r.stderr  # 0 if it all fitted the pipe first
    assert "Error" not in r.stderr and "unexpected" not in r.stderr
