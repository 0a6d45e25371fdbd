"""One backend protocol, two implementations (builtin terminator, NetScaler over NITRO).

read current state -> diff against the plan -> apply the changes -> status.

The diff is a plain data type shared by both backends, the wizard's review screen,
`dicomtls apply --dry-run` and `--json`. A screen or a CLI command never speaks NITRO or opens a
socket itself: it asks a backend for a Diff, shows it, then calls apply() with a progress callback.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Callable, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from dicomtls.engine.advice import Advice
from dicomtls.engine.plan import Plan


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"  # exists and differs in a way we must not overwrite silently


class Change(BaseModel):
    """One object on the backend and what applying the plan does to it."""

    kind: str  # backend object type, e.g. "sslcertkey", "lbvserver", "listener"
    name: str
    action: Action
    summary: str = ""  # one line for people: what it is / what changes
    fields: dict[str, tuple[Any, Any]] = Field(default_factory=dict)  # attribute: (current, wanted)
    cli: list[str] = Field(default_factory=list)  # equivalent CLI lines (NetScaler), for review/export
    hint: str = ""  # for conflicts: what is in the way, and how to resolve it where that reads the same in every face
    # For conflicts whose fix each face phrases itself (an option, a field): the fix as a code with data
    # (engine.advice). Faces show the hint, then the rendered advice. reconcile's hints can move here.
    advice: Advice | None = None

    @property
    def writes(self) -> bool:
        return self.action in (Action.CREATE, Action.UPDATE)


class TargetFacts(BaseModel):
    """What the backend found about the target that decides what the plan needs there. Codes, not
    sentences: each face (CLI, wizard) phrases them. Empty strings where a backend has no such fact."""

    release: str = ""  # firmware release, e.g. "13.1"
    ssl_mode: str = ""  # "profile" (the ADC's Default SSL Profile is enabled) or "legacy"
    ssl_profile: str = ""  # in profile mode: the SSL profile the plan's virtual servers use
    ha_role: str = ""  # "standalone", "primary" or "secondary"
    ha_primary: str = ""  # on a secondary: the primary node's address
    ha_peer: str = ""  # on a primary: the secondary node's address
    partition: str = ""  # the admin partition worked in ("" = the default partition)


class Diff(BaseModel):
    backend: str
    target: str  # where: "https://192.0.2.10" or "this host (state dir ...)"
    changes: list[Change] = Field(default_factory=list)
    requests: int = 0  # backend requests made to compute it (NITRO GETs); 0 for builtin
    facts: TargetFacts = Field(default_factory=TargetFacts)

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.CONFLICT]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.writes]

    @property
    def is_noop(self) -> bool:
        return not self.writes and not self.conflicts

    def counts(self) -> dict[str, int]:
        return {a.value: sum(1 for c in self.changes if c.action is a) for a in Action}


class Progress(BaseModel):
    """A progress message from apply(): the wizard turns these into status lines and a log."""

    step: str  # e.g. "sslcertkey Butterfly-Cert-Key-Pair"
    state: str  # "start" | "done" | "failed" | "info"
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class ApplyResult(BaseModel):
    ok: bool
    done: list[str] = Field(default_factory=list)  # steps completed, in order
    not_done: list[str] = Field(default_factory=list)  # steps planned but not reached
    error: str = ""
    fix: str = ""  # face-neutral; `advice` instead when each face phrases the fix itself
    advice: Advice | None = None
    requests: int = 0  # all backend requests this run made (reads and writes)
    writes: int = 0
    facts: TargetFacts = Field(default_factory=TargetFacts)
    ha_sync: str = ""  # HA primary, after saving: "in-sync", "not-in-sync" or "unknown"; "" = no pair
    ha_sync_detail: str = ""  # the ADC's own words when not in sync (hasyncfailurereason)


class StatusItem(BaseModel):
    kind: str
    name: str
    state: str  # "UP", "DOWN", "listening", ...
    detail: dict[str, Any] = Field(default_factory=dict)


class Status(BaseModel):
    backend: str
    target: str
    items: list[StatusItem] = Field(default_factory=list)
    facts: TargetFacts = Field(default_factory=TargetFacts)


@runtime_checkable
class Backend(Protocol):
    """What the wizard and the CLI need from a backend. Methods are blocking: the wizard calls them
    from thread workers, the CLI directly. Errors a user can fix are raised as engine.errors.UserError."""

    name: str

    def diff(self, plan: Plan) -> Diff:
        """Read the current state (as few reads as possible) and compare it with the plan."""
        ...

    def apply(self, plan: Plan, diff: Diff | None = None, progress: ProgressCallback | None = None) -> ApplyResult:
        """Make the writes of `diff` (computed afresh if None). Idempotent: a second run writes nothing.
        Refuses to run while the diff has conflicts."""
        ...

    def status(self, plan: Plan) -> Status:
        ...

    def close(self) -> None:
        ...
