"""`dicomtls echo --worklist` input errors: exit 2 with error and fix lines, before anything is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DICOMTLS = str(Path(sys.executable).parent / "dicomtls")


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DICOMTLS_HOME": str(home), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([DICOMTLS, "echo", "127.0.0.1", "9", *args], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.parametrize("args, error, fix", [
    (["--modality", "US"], "error: --modality only applies to a worklist query", "fix: add --worklist"),
    (["--date", "20260315", "--station-ae", "X"], "error: --date, --station-ae only apply to a worklist query",
     "fix: add --worklist"),
    (["--worklist", "--date", "2026-03-15"], "error: date '2026-03-15' is not a date or a date range",
     "fix: give --date YYYYMMDD or --date YYYYMMDD-YYYYMMDD"),
    (["--worklist", "--date", "20260320-20260301"], "ends before it starts", "fix: give --date YYYYMMDD"),
    (["--worklist", "--modality", "ultra sound!"], "error: modality 'ultra sound!' is not a DICOM modality code",
     "fix: give a modality code, e.g. --modality US"),
    (["--worklist", "--station-ae", "A\\B"], "error: station AE 'A\\\\B' contains a backslash",
     "fix: give a valid AE title with --station-ae"),
])
def test_bad_worklist_arguments_exit_2_before_connecting(args, error, fix, tmp_path):
    r = run(*args, home=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert error in r.stderr and fix in r.stderr, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
