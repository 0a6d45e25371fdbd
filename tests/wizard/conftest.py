"""Fixtures for the wizard's tests: an isolated home, demo environments, and Pilot helpers.

Every test gets HOME and DICOMTLS_HOME under its tmp_path (paths then show as ~/..., and nothing
touches the real config). Pilot tests are async functions wrapped by `pilot_test` (no asyncio
plugin is needed); `until` polls the UI with a deadline instead of sleeping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, DICOMTLS_HOME (~/dicomtls) and the current folder in tmp_path; ~/Downloads exists."""
    h = tmp_path / "home"
    (h / "Downloads").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("DICOMTLS_HOME", str(h / "dicomtls"))
    monkeypatch.delenv("DICOMTLS_NITRO_PASSWORD", raising=False)
    monkeypatch.delenv("TEXTUAL_THEME", raising=False)
    monkeypatch.chdir(h)
    return h


@pytest.fixture
def butterfly_pair(home: Path) -> tuple[Path, Path]:
    """The committed fixture pair, copied to ~/Downloads under Butterfly's names (key 0600)."""
    cert, key = home / "Downloads" / "Butterfly_SCP_Cert.pem", home / "Downloads" / "Butterfly_SCP_key.pem"
    shutil.copy(FIXTURES / cert.name, cert)
    shutil.copy(FIXTURES / key.name, key)
    os.chmod(key, 0o600)
    return cert, key


@pytest.fixture
def demo_builtin(home: Path):
    from dicomtls.engine.demo import Demo

    demo = Demo.start("builtin", home=home / "demo")
    yield demo
    demo.stop()


@pytest.fixture
def demo_netscaler(home: Path):
    from dicomtls.engine.demo import Demo

    demo = Demo.start("netscaler", home=home / "demo")
    yield demo
    demo.stop()
