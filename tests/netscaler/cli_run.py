"""`dicomtls` run as a user runs it, in a subprocess against the simulator: shared by the NetScaler CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]


def dicomtls(*args: str, home: Path, password: str | None = PASSWORD, timeout: float = 60,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DICOMTLS_NITRO_PASSWORD"}
    env["DICOMTLS_HOME"] = str(home)
    if password is not None:
        env["DICOMTLS_NITRO_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *map(str, args)], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout, input=stdin if stdin is not None else "")


def writes(sim) -> list:
    return [e for e in sim.log if e.write]
