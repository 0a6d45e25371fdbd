"""What the serving terminator runs, checked in a helper process so that it never loads pydantic or cryptography.

`dicomtls serve` checks the plan (pydantic) and the certificate and key (cryptography) at start and at every
SIGHUP, but serving needs neither, and the two are about 20 MB of a 50 MB idle process (benchmarks/RESULTS.md).
So the checks run in a short-lived helper, `python -m dicomtls.engine.terminator.checker PLAN`, which prints
one Bundle as JSON on its stdout and exits. That stdout is a pipe to its parent only: the decrypted key is never
logged and reaches the disk only as the state dir's key.pem (0600), as before. The serving process builds its
SSLContext from the bundle and installs the bundle once its listeners are bound (or the reload is taken).

A reload runs the helper as an asyncio subprocess, so checking a new plan no longer stalls live traffic.
The wizard's in-process terminator (runner.run_in_thread) has pydantic loaded anyway and calls prepare() itself.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomtls.engine import paths
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator.config import RuntimeConfig, StateFiles
from dicomtls.engine.terminator.tlsserver import server_context

CHECK_TIMEOUT = 60.0  # seconds for the helper: loading Python and the libraries is ~0.5 s; a slow disk gets room
INTERNAL = 70  # the CLI's exit code for a bug (README, "Exit codes")
REPORT_IT = "details are in the log file; please report it"  # the fix for a bug, here and in checker.py


@dataclass
class Bundle:
    """A checked plan, as the terminator runs it: its runtime config, the PEMs and the plan text to install."""

    runtime: RuntimeConfig
    cert_pem: bytes  # the certificate chain, canonical PEM
    key_pem: bytes | None  # unencrypted PKCS#8; None: keep the installed key (same certificate, no passphrase given)
    dh_pem: bytes | None  # for DHE suites: the operator's own >= 2048-bit dhparams.pem, else RFC 7919 ffdhe2048
    applied_plan: str  # the plan as installed (state dir's plan.toml): paths to the state dir's copies

    @property
    def state(self) -> StateFiles:
        return StateFiles(self.runtime.state_dir)

    def context(self) -> ssl.SSLContext:
        key = self.key_pem if self.key_pem is not None else self.state.key.read_bytes()
        return load_context(self.runtime.policy, self.cert_pem, key, self.dh_pem)

    def install(self) -> RuntimeConfig:
        """Write into the state dir: key.pem (0600), cert.pem, dhparams.pem, plan.toml, then runtime.json."""
        st = self.state
        paths.ensure_private_dir(st.dir)
        if self.key_pem is not None:
            paths.write_private(st.key, self.key_pem)
        _replace(st.cert, self.cert_pem)
        if self.dh_pem is not None and _read(st.dh) != self.dh_pem:  # an operator's own file is the one chosen
            _replace(st.dh, self.dh_pem)
        _replace(st.plan, self.applied_plan.encode("utf-8"))
        st.write_runtime(self.runtime)
        return self.runtime

    def to_dict(self) -> dict[str, Any]:
        def text(b: bytes | None) -> str | None:
            return b.decode("ascii") if b is not None else None
        return {"runtime": self.runtime.to_dict(), "cert_pem": text(self.cert_pem), "key_pem": text(self.key_pem),
                "dh_pem": text(self.dh_pem), "applied_plan": self.applied_plan}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bundle:
        def data(s: str | None) -> bytes | None:
            return s.encode("ascii") if s is not None else None
        return cls(runtime=RuntimeConfig.from_dict(d["runtime"]), cert_pem=d["cert_pem"].encode("ascii"),
                   key_pem=data(d["key_pem"]), dh_pem=data(d["dh_pem"]), applied_plan=d["applied_plan"])


def load_context(policy: str, cert_pem: bytes, key_pem: bytes, dh_pem: bytes | None) -> ssl.SSLContext:
    """The server context, loaded from private temp copies (OpenSSL loads from files only)."""
    with tempfile.TemporaryDirectory(prefix="dicomtls-ctx-") as d:
        c, k, dh = Path(d) / "cert.pem", Path(d) / "key.pem", Path(d) / "dh.pem"
        c.write_bytes(cert_pem)
        paths.write_private(k, key_pem)
        if dh_pem:
            dh.write_bytes(dh_pem)
        return server_context(POLICIES[policy], c, k, dh_file=dh if dh_pem else None)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# --- the helper, seen from the serving process -----------------------------------------------------------

def checker_command(plan_path: Path, passphrase_env: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "dicomtls.engine.terminator.checker", str(plan_path)]
    return cmd + (["--passphrase-env", passphrase_env] if passphrase_env else [])


def load_bundle(plan_path: Path, passphrase_env: str | None = None) -> Bundle:
    """Check the plan in the helper and return its bundle; its refusal is raised as the UserError it was."""
    try:
        r = subprocess.run(checker_command(plan_path, passphrase_env), capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise _no_answer(f"did not answer within {CHECK_TIMEOUT:g} s") from None
    except OSError as exc:  # no interpreter there any more (an upgrade under it), no descriptors or processes left
        raise _no_answer(f"could not start ({exc.strerror or exc})") from None
    return answer(r.returncode, r.stdout, r.stderr)


async def load_bundle_async(plan_path: Path, passphrase_env: str | None = None) -> Bundle:
    """load_bundle for the event loop (a reload): the loop keeps serving while the helper checks."""
    try:
        proc = await asyncio.create_subprocess_exec(*checker_command(plan_path, passphrase_env),
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)
    except OSError as exc:
        raise _no_answer(f"could not start ({exc.strerror or exc})") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise _no_answer(f"did not answer within {CHECK_TIMEOUT:g} s") from None
    return answer(proc.returncode or 0, out, err)


def answer(returncode: int, out: bytes, err: bytes) -> Bundle:
    """The helper's one JSON object: {"ok": true, "bundle": ...} or {"ok": false, "problem", "fix", "exit_code"}."""
    try:
        doc = json.loads(out)
        if doc["ok"]:
            return Bundle.from_dict(doc["bundle"])
        problem, fix, code = doc["problem"], doc["fix"], int(doc["exit_code"])
    except (ValueError, KeyError, TypeError, AttributeError):
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {returncode}"]
        raise _no_answer(f"failed ({last[0]})") from None
    raise UserError(problem, fix, exit_code=code)


def _no_answer(what: str) -> UserError:
    return UserError(f"checking the plan in a helper process {what}", REPORT_IT, exit_code=INTERNAL)
