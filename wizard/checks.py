"""Results that carry their inputs: a check's result belongs to the values it ran on, not to the screen.

Every check the wizard runs (the PEM pair, the NITRO login, the plain C-ECHO to each PACS member, the
echo through TLS) records the inputs it ran on as {label: value}, labels as the screen shows them. When
the screen's values differ, the result is out of date: it is not shown as a ✓, and wherever it would be
shown (the step, Review, the runbook) it says which input changed and how to check again.

A failed or untested check can be accepted consciously (Next asks once); the acceptance is for those
inputs too, so changing one asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.content import Content

# What each check is called in a warning, and the key that runs it again on its step.
CHECK_NAMES = {
    "pem": ("the certificate check", "Certificates", "ctrl+t"),
    "nitro": ("the NITRO login", "Start", "ctrl+t"),
    "pacs": ("the PACS's plain C-ECHO", "PACS", "ctrl+t"),
    "echo": ("the C-ECHO through TLS", "Echo test", "ctrl+t"),
}


def changed(recorded: Mapping[str, str] | None, now: Mapping[str, str]) -> list[str]:
    """Labels whose value differs between what a check ran on and what the screens hold now."""
    if recorded is None:
        return []
    return [label for label in dict.fromkeys([*recorded, *now]) if recorded.get(label) != now.get(label)]


def stale_text(labels: list[str], key: str = "ctrl+t", again: str = "test again") -> Content:
    """The line that replaces an out-of-date result."""
    what = ", ".join(labels[:3]) + (" and more" if len(labels) > 3 else "")
    return Content(f"… out of date: {what} changed since the last check; {key} to {again}.")


@dataclass(frozen=True)
class Accepted:
    """The operator chose to go on past a failed or untested check, for these inputs."""

    check: str  # a CHECK_NAMES key
    reason: str  # what was wrong, in the wizard's words ("the PACS did not answer the C-ECHO")
    inputs: tuple[tuple[str, str], ...]

    def holds_for(self, now: Mapping[str, str]) -> bool:
        return dict(self.inputs) == dict(now)

    def line(self) -> str:
        name, step, _ = CHECK_NAMES[self.check]
        return f"{self.reason[0].upper()}{self.reason[1:]}; you continued anyway (step {step})."
