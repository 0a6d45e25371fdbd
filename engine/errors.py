"""One error type for everything a user can fix: what went wrong, and what to do about it.

The CLI prints these as two lines and exits non-zero; the wizard shows them inline. Anything
that is not a UserError is a bug and is logged with its traceback to the log file only.

`fix` is face-neutral (it also goes to logs, e.g. a refused reload). When the way to fix it depends
on the face (a command-line option, a wizard field), `advice` carries it as a code with data
(engine.advice) and each face phrases that instead of `fix`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: the terminator's serving process raises UserErrors without loading pydantic
    from dicomtls.engine.advice import Advice


class UserError(Exception):
    """A problem the user can act on. `fix` says how, in one sentence."""

    def __init__(self, problem: str, fix: str = "", *, exit_code: int = 2, advice: Advice | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}" if self.fix else self.problem
