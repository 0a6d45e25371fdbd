"""The tool's own log file: rotated by size (never unbounded on a jump host), secrets scrubbed."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler

import pytest

from dicomtls.engine import logs


@pytest.fixture
def logfile(tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMTLS_HOME", str(tmp_path))
    monkeypatch.setattr(logs, "LOG_MAX_BYTES", 2000)
    path = logs.setup_file_logging("rotate-test.log")
    yield path
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, RotatingFileHandler) and h.baseFilename == str(path)]:
        root.removeHandler(h)
        h.close()


def test_the_log_file_rotates_and_stays_bounded(logfile):
    log = logging.getLogger("dicomtls.test")
    for i in range(500):
        log.warning("line %05d %s", i, "x" * 80)
    files = sorted(logfile.parent.glob("rotate-test.log*"))
    assert [f.name for f in files] == ["rotate-test.log", "rotate-test.log.1", "rotate-test.log.2",
                                       "rotate-test.log.3"]
    assert all(f.stat().st_size <= 2000 for f in files)
    assert "line 00499" in logfile.read_text()  # the newest is in the current file
    assert "line 00000" not in "".join(f.read_text() for f in files)  # the oldest were dropped


def test_a_second_setup_does_not_add_a_second_handler(logfile):
    n = len(logging.getLogger().handlers)
    assert logs.setup_file_logging("rotate-test.log") == logfile
    assert len(logging.getLogger().handlers) == n


def test_secrets_are_scrubbed_in_the_file(logfile):
    logging.getLogger("dicomtls.test").warning('login {"password": "s3cret"} X-NITRO-PASS: hunter2')
    for h in logging.getLogger().handlers:
        h.flush()
    text = logfile.read_text()
    assert "s3cret" not in text and "hunter2" not in text and '"password": "***"' in text
