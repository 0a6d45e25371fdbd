"""Why a plan is not valid, as facts: for each problem the key it is at (``virtual_server[1].port``), the
value and what is wrong, in words that name no face. The CLI shows the key (a plan file is its
input); the wizard names the step and field that hold it (wizard/advice.py). The Plan's own
cross-checks raise `at(key, text)` so that their problems are located the same way as a field's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from dicomtls.engine.advice import advice
from dicomtls.engine.errors import UserError

_TYPE_HINTS = {
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "string_type": "must be text in quotes", "float_type": "must be a number", "float_parsing": "must be a number",
    "list_type": "must be a list, e.g. [\"A\", \"B\"]", "bool_type": "must be true or false",
    "literal_error": None, "missing": None, "extra_forbidden": None, "model_type": "must be a table",
}


class PlanProblem(BaseModel):
    """One problem: `key` (dotted, with [i] for a table's entries; "" for the whole plan), the offending
    `value` as the plan gives it (None if there is none to show), `kind` and `text`."""

    key: str
    value: str | None = None
    kind: str = "invalid"  # "missing", "unknown" (a key the plan does not have), "invalid"
    text: str = ""  # what is wrong; for "missing", how to add it to a plan file (if more than `key = ...`)

    @property
    def field(self) -> str:
        """The last part of the key: 'port' for virtual_server[1].port."""
        return self.key.rsplit(".", 1)[-1]

    def line(self) -> str:
        """The problem in a plan file's terms (the CLI's): key, value, what is wrong, the fix."""
        if self.kind == "missing":
            return f"{self.key}: missing; {self.text or f'add `{self.field} = ...` to the plan'}"
        if self.kind == "unknown":
            return f"{self.key}: unknown key; remove it or check its spelling against the README's plan reference"
        if not self.key:
            return self.text
        return f"{self.key} = {self.value}: {self.text}" if self.value is not None else f"{self.key}: {self.text}"


def at(key: str, text: str, value: Any = None, kind: str = "invalid") -> PydanticCustomError:
    """An error of a model validator, located at `key` below the model (e.g. 'port', 'members[1]')."""
    return PydanticCustomError("plan_at", "{key}: {text}", {"key": key, "text": text, "kind": kind,
                                                            "value": None if value is None else repr(value)})


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _join(base: str, key: str) -> str:
    return base + key if not base or key.startswith("[") else f"{base}.{key}" if key else base


def problems(err: ValidationError) -> list[PlanProblem]:
    """Each pydantic error of a plan as a PlanProblem."""
    out = []
    for e in err.errors():
        key, kind, value = _loc(e["loc"]), e["type"], e.get("input")
        shown = repr(value) if not isinstance(value, dict) else None
        if kind == "missing":
            out.append(PlanProblem(key=key, kind="missing"))
        elif kind == "extra_forbidden":
            out.append(PlanProblem(key=key, kind="unknown", text="is not a key of the plan"))
        elif kind == "plan_at":
            ctx = e["ctx"]
            out.append(PlanProblem(key=_join(key, ctx["key"]), value=ctx["value"], kind=ctx["kind"], text=ctx["text"]))
        elif kind == "literal_error":
            out.append(PlanProblem(key=key, value=shown, text=f"must be one of {e['ctx']['expected']}"))
        elif kind == "value_error":
            out.append(PlanProblem(key=key, value=shown, text=str(e["ctx"]["error"]) if "ctx" in e else e["msg"]))
        else:
            out.append(PlanProblem(key=key, value=shown, text=_TYPE_HINTS.get(kind) or e["msg"]))
    return out


def explain(err: ValidationError) -> list[str]:
    """Each pydantic error as one sentence in a plan file's terms: the key, the bad value, the fix."""
    return [p.line() for p in problems(err)]


class PlanError(UserError):
    """The plan is not valid: `items` are the problems as facts, `problems` the same as plan-file lines."""

    def __init__(self, source: str, items: list[PlanProblem]) -> None:
        self.items = items
        self.problems = [p.line() for p in self.items]
        super().__init__(f"{source}: the plan is not valid:\n" + "\n".join(f"  - {p}" for p in self.problems),
                         advice=advice("plan.invalid"))


def plan_error(source: str, err: ValidationError) -> PlanError:
    return PlanError(source, problems(err))
