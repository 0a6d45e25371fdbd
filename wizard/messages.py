"""Typed messages that thread workers post back to their screen (post_message is thread-safe).

A worker never touches widgets: it posts one of these and the screen's handler updates the UI on
the event loop. Short blocking calls whose result the caller awaits (a certificate check, a diff)
return their value through the worker instead (StepScreen.in_thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from dicomtls.engine.backends.base import ApplyResult, Diff, Progress
from dicomtls.engine.backends.netscaler.watch import Arrival
from dicomtls.engine.errors import UserError
from dicomtls.engine.verify import Step


@dataclass
class EchoStep(Message):
    """One rung of an echo ladder finished (engine.verify.Step); `ladder` names which ladder."""

    ladder: str
    step: Step


@dataclass
class ApplyProgress(Message):
    """A step of Backend.apply() started, finished or failed (engine.backends.base.Progress)."""

    progress: Progress


@dataclass
class ApplyDone(Message):
    result: ApplyResult
    saved_to: str = ""  # the plan file, saved after a successful apply
    note: str = ""  # what runs where now (demo, background terminator)
    diff: Diff | None = None  # the Diff the apply worked from, when known


@dataclass
class AssociationSeen(Message):
    """A record from the built-in terminator's association log (calling AE, client, outcome)."""

    record: dict[str, Any]


@dataclass
class CountersMoved(Message):
    """The NetScaler vserver's counters moved: a connection from outside arrived
    (engine.backends.netscaler.watch.Arrival), or the watch failed (`error`, the UserError)."""

    arrival: Arrival | None = None
    error: UserError | None = None
