"""Small widgets the screens share: a labelled field with its error line, the step bar, the echo
ladder, and path completion for the certificate fields."""

from __future__ import annotations

import os
import re
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.suggester import Suggester
from textual.widgets import Input, Label, RadioButton, Static

from dicomtls.wizard.advice import step_action

# The guide's order; the short names fit the step bar at 80 columns.
STEP_NAMES = ["Start", "Certificates", "PACS", "Cipher policy", "Virtual server", "Review", "Apply", "Echo test",
              "Butterfly Cloud"]

RUNG_LABELS = {
    "resolve": "Resolve the host",
    "tcp": "TCP connection",
    "tls": "TLS handshake",
    "associate": "DICOM association",
    "echo": "C-ECHO",
    "worklist": "Worklist query",
    "release": "Release",
}
PLAIN_RUNGS = ["resolve", "tcp", "associate", "echo", "release"]
TLS_RUNGS = ["resolve", "tcp", "tls", "associate", "echo", "release"]

OK, BAD, TODO = "✓", "✗", "·"
_FP = re.compile(r"\b(?:[0-9A-F]{2}:){31}[0-9A-F]{2}\b")


class Choice(RadioButton):
    """A radio button whose dot shows only when chosen: Textual's draws the dot in both states and
    tells them apart by colour alone, which NO_COLOR, ansi themes and poor terminals lose."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual only reads it; mypy sees a settable attribute
        return "●" if self.value else " "


class StepBar(Static):
    """One line: the app, the step's name, and all nine step numbers with this one highlighted."""

    def __init__(self, index: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.index = index

    def on_mount(self) -> None:
        left = f" dicomtls · Step {self.index + 1} of {len(STEPS_SHOWN)}: {STEPS_SHOWN[self.index]}"
        nums: list[Content | str] = []
        for i in range(len(STEPS_SHOWN)):
            style = "bold reverse" if i == self.index else ("" if i < self.index else "dim")
            nums.append(Content.styled(f" {i + 1} ", style) if style else f" {i + 1} ")
        right = Content.assemble(*nums)
        width = max(self.size.width, 80)
        gap = max(1, width - len(left) - right.cell_length - 1)
        self.update(Content.assemble(Content.styled(left, "bold"), " " * gap, right))


STEPS_SHOWN = STEP_NAMES


# The Input's own editing keys (backspace, arrows, home/end, ctrl+u...), by key: action.
_EDIT_KEYS = {key.strip(): b.action for b in Input.BINDINGS if isinstance(b, Binding) for key in b.key.split(",")
              if b.action not in ("submit", "copy", "cut", "paste")}


class FieldInput(Input):
    """An Input that acts on its own editing keys where they arrive, in order with the characters typed.

    Textual inserts a typed character in the Input's own handler, but runs the Input's bindings
    (backspace, end, ...) only once the key has bubbled up to the App (App._on_key, after the focused
    widget and its parents). While the screen is busy with the previous keystrokes (each one updates the
    plan: StepScreen.sync), a burst of keys, a paste or a fast typist over SSH, had a backspace or an End
    take effect after the characters that followed it: "12761" typed after six backspaces became "1276"."""

    async def _on_key(self, event: events.Key) -> None:
        action = None if event.is_printable else _EDIT_KEYS.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            await self.run_action(action)
            return
        await super()._on_key(event)


class FormField(Vertical):
    """Label, input, and an error line that appears only when there is something to fix."""

    DEFAULT_CSS = """
    FormField { height: auto; }
    FormField > Horizontal { height: 1; }
    FormField Label.field-label { width: 18; }
    FormField Input { width: 1fr; }
    FormField .field-error { display: none; color: $text-error; text-style: bold; padding-left: 18; }
    /* The focused field is marked by its label in reverse video: visible without colour (NO_COLOR,
       ansi themes), where a background shade alone is lost. */
    FormField.-focused Label.field-label { text-style: bold reverse; }
    FormField.-error .field-error { display: block; }
    FormField .field-hint { color: $text-muted; padding-left: 18; }
    """

    def __init__(self, label: str, input_id: str, value: str = "", *, placeholder: str = "",
                 password: bool = False, suggester: Suggester | None = None, hint: str = "",
                 max_length: int = 0, field_id: str | None = None) -> None:
        super().__init__(id=field_id or f"field-{input_id}")
        self.label = label
        self.input = FieldInput(value, placeholder=placeholder, password=password, suggester=suggester,
                                id=input_id, compact=True, max_length=max_length, select_on_focus=False)
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield self.input
        if self.hint:
            yield Static(self.hint, classes="field-hint")
        yield Static("", classes="field-error")

    # A class of our own, not :focus-within, which kept marking a field after focus had moved on.
    def on_descendant_focus(self) -> None:
        self.add_class("-focused")

    def on_descendant_blur(self) -> None:
        self.remove_class("-focused")

    def set_error(self, message: str | None) -> None:
        self.query_one(".field-error", Static).update(message or "")
        self.set_class(bool(message), "-error")

    @property
    def error(self) -> str:
        return str(self.query_one(".field-error", Static).content) if self.has_class("-error") else ""


class Ladder(Vertical):
    """The echo ladder: one line per rung, ticked or explained as each finishes."""

    DEFAULT_CSS = """
    Ladder { height: auto; }
    Ladder .rung { height: auto; }
    Ladder .rung.-ok { color: $text-success; }
    Ladder .rung.-bad { color: $text-error; }
    Ladder .rung.-todo { color: $text-muted; }
    """

    def __init__(self, rungs: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.rungs = rungs

    def compose(self) -> ComposeResult:
        for r in self.rungs:
            yield Static(f"{TODO} {RUNG_LABELS.get(r, r)}", id=f"rung-{r}", classes="rung -todo")

    def reset(self) -> None:
        for r in self.rungs:
            self._set(r, f"{TODO} {RUNG_LABELS.get(r, r)}", "-todo")

    def show(self, step: Any) -> None:
        """Tick or explain one rung (an engine.verify.Step)."""
        name = step.name
        if name not in self.rungs:
            self.rungs.append(name)
            self.mount(Static("", id=f"rung-{name}", classes="rung"))
        label = RUNG_LABELS.get(name, name)
        secs = f"{step.seconds:.2f} s" if getattr(step, "seconds", None) is not None else ""
        head = f"{OK if step.ok else BAD} {label:<18} {secs:>7}  "
        detail = _FP.sub(lambda m: m.group(0)[:11] + "…" + m.group(0)[-5:], step.detail)  # shown in full on step 2
        text = head + wrap_indent(detail, " " * len(head), width=76)[len(head):]
        if not step.ok:
            if step.cause:
                text += "\n" + wrap_indent(f"why: {step.cause}", "    ")
            action = step_action(step)
            if action:
                text += "\n" + wrap_indent(f"do:  {action}", "    ")
        self._set(name, text, "-ok" if step.ok else "-bad")

    def _set(self, name: str, text: str, cls: str) -> None:
        w = self.query_one(f"#rung-{name}", Static)
        w.update(Content(text))
        w.set_classes(f"rung {cls}")


class PathSuggester(Suggester):
    """Completes a file path as it is typed (accept with → or End); ~ is the home folder."""

    def __init__(self, suffixes: tuple[str, ...] = (".pem", ".crt", ".cer", ".key")) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        folder, stem = os.path.split(expanded)
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            return None
        hits = [n for n in names if n.startswith(stem) and not n.startswith(".")]
        for n in hits:
            full = os.path.join(folder, n)
            if os.path.isdir(full) or n.lower().endswith(self.suffixes):
                rest = n[len(stem):] + (os.sep if os.path.isdir(full) else "")
                return value + rest if rest else None
        return None


def fingerprint_lines(fp: str, indent: str = "") -> str:
    """A SHA-256 fingerprint (95 characters) as two lines of 16 bytes, so it never wraps mid-byte."""
    prefix = ""
    if fp.lower().startswith("sha256:"):
        prefix, fp = fp[:7], fp[7:]
    parts = fp.split(":")
    return "\n".join(indent + (prefix if i == 0 else " " * len(prefix)) + ":".join(parts[i:i + 16])
                     for i in range(0, len(parts), 16))


def wrap_indent(text: str, indent: str, width: int = 76, hang: str | None = None) -> str:
    """Wrap `text` so continuation lines keep the indent (Textual wraps to column 0 otherwise);
    `hang` sets the continuation indent instead (a label column)."""
    import textwrap

    more = hang if hang is not None else indent + "  "
    return "\n".join(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=more,
                                    break_on_hyphens=False, break_long_words=True)) or indent
