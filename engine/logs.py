"""Logging to a file (never to the terminal the TUI owns), with secrets scrubbed on the way out."""

from __future__ import annotations

import logging
import re
from logging.handlers import RotatingFileHandler
from pathlib import Path

from dicomtls.engine import paths

# The log file is size-bounded: at most (1 + LOG_BACKUPS) * LOG_MAX_BYTES on disk, the oldest dropped.
LOG_MAX_BYTES = 5_000_000
LOG_BACKUPS = 3

# Belt and braces: code never logs secrets, and this filter blanks anything that looks like one.
_SECRET_PATTERNS = [
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----).*?(-----END [A-Z ]*PRIVATE KEY-----)", re.S),
    re.compile(r'("password"\s*:\s*")[^"]*(")'),
    re.compile(r"(X-NITRO-PASS:\s*)\S+()", re.I),
    re.compile(r"(NITRO_AUTH_TOKEN=)[^;\s\"']+()"),
]


def scrub(text: str) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub(r"\1***\2", text)
    return text


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_file_logging(name: str = "dicomtls.log", level: int = logging.INFO) -> Path:
    """Send the root logger to a rotating file in the log dir; returns the file's path."""
    path = paths.log_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path.resolve():
            return path
    handler = RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    # pynetdicom is chatty at INFO; its warnings are enough in the file.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    return path
