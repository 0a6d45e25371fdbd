"""Small questions asked on top of a step: confirm, quit, pin a certificate. Keys: y / n / Esc."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ChoiceModal(ModalScreen[str]):
    """A question with a few answers, each on a letter key and a button; Esc means the last one."""

    DEFAULT_CSS = """
    ChoiceModal { align: center middle; }
    ChoiceModal > Vertical { width: 72; height: auto; max-height: 20; border: round $warning;
                             background: $surface; padding: 0 1; }
    ChoiceModal .question { height: auto; margin-bottom: 1; }
    ChoiceModal Horizontal { height: 1; align-horizontal: center; }
    ChoiceModal Button { margin: 0 1; }
    """

    def __init__(self, question: str | Content, choices: list[tuple[str, str]], *, title: str = "") -> None:
        """choices: (key, label) pairs, e.g. [("y", "Apply"), ("n", "Not yet")]."""
        super().__init__()
        self.question = question
        self.choices = choices
        self.title_text = title
        for key, label in choices:
            self._bindings.bind(key, f"choose('{key}')", label, show=False)
        self._bindings.bind("escape", f"choose('{choices[-1][0]}')", show=False)
        self._bindings.bind("left", "app.focus_previous", show=False)
        self._bindings.bind("right", "app.focus_next", show=False)

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            if self.title_text:
                v.border_title = self.title_text
            q = self.question if isinstance(self.question, Content) else Content(self.question)
            yield Static(q, classes="question")
            with Horizontal():
                for key, label in self.choices:
                    yield Button(f"{key}: {label}", id=f"choice-{key}", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_choose(self, key: str) -> None:
        self.dismiss(key)
