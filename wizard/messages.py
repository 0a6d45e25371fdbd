"""Typed messages that thread workers post back to their screen (post_message is thread-safe).

A worker never touches widgets: it posts one of these and the screen's handler updates the UI on
the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class WorkFailed(Message):
    """A worker's UserError (or an unexpected error), to show inline with its fix."""

    task: str
    problem: str
    fix: str = ""
    code: str = ""


@dataclass
class PairChecked(Message):
    report: Any  # engine.certs.PemReport
    cert: str
    key: str


@dataclass
class TestPairMade(Message):
    cert: str
    key: str


@dataclass
class NitroConnected(Message):
    fingerprint: str | None
    groups: list[str]


@dataclass
class FingerprintSeen(Message):
    fingerprint: str


@dataclass
class EchoStep(Message):
    """One rung of an echo ladder finished (engine.verify.Step)."""

    ladder: str
    step: Any


@dataclass
class EchoDone(Message):
    ladder: str
    report: Any  # engine.verify.EchoReport


@dataclass
class DiffReady(Message):
    diff: Any  # engine.backends.base.Diff
    purpose: str = "review"


@dataclass
class ApplyProgress(Message):
    progress: Any  # engine.backends.base.Progress

    def can_replace(self, message: Message) -> bool:
        return False  # every step's line matters


@dataclass
class ApplyDone(Message):
    result: Any  # engine.backends.base.ApplyResult
    saved_to: str = ""
    note: str = ""


@dataclass
class ConflictsFound(Message):
    problems: list[str]


@dataclass
class ChecksPassed(Message):
    diff: Any = None


@dataclass
class AssociationSeen(Message):
    """An association record from the built-in terminator's log (calling AE, peer, time)."""

    record: dict
