"""Where the tool keeps its files (platformdirs), overridable with DICOMTLS_HOME for tests and demos.

config: the saved plan (no secrets). state: the built-in terminator's installed cert/key (0600),
its runtime config and control socket. log: the log file (the TUI owns the terminal, so logs
never go to it).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "dicomtls"


def _root(kind: str) -> Path:
    home = os.environ.get("DICOMTLS_HOME")
    if home:
        return Path(home) / kind
    return Path({
        "config": platformdirs.user_config_dir(APP),
        "state": platformdirs.user_state_dir(APP),
        "log": platformdirs.user_log_dir(APP),
    }[kind])


def config_dir() -> Path:
    return _root("config")


def state_dir() -> Path:
    return _root("state")


def log_dir() -> Path:
    return _root("log")


def default_plan_path() -> Path:
    return config_dir() / "plan.toml"


def ensure_private_dir(path: Path) -> Path:
    """Create a directory readable by its owner only (it may hold keys)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file; the mode is set
    from the first byte, whatever the umask (no window where a key is readable by others)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_private(path: Path, data: bytes) -> None:
    """A secret file: mode 0600 (a folder made for it is 0700)."""
    ensure_private_dir(path.parent)
    write_atomic(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """A certificate or other public file: mode 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, 0o644)
