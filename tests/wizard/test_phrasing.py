"""The echo ladder's CLI advice reaches wizard users in the wizard's words, never as --flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from engine.verify import Step
from wizard.phrasing import for_wizard, reword_step

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# The ladder and the modules that phrase its rungs.
LADDER_TEXTS = [ENGINE / "verify.py", ENGINE / "tls_advice.py", ENGINE / "worklist.py"]
FLAG = re.compile(r"--[a-z]")


def _texts_with_flags() -> list[str]:
    """Every string literal of the ladder's modules that names an option (f-string holes become X)."""
    out = []
    nodes = [n for path in LADDER_TEXTS for n in ast.walk(ast.parse(path.read_text()))]
    for node in nodes:
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if FLAG.search(text):
            out.append(text)
    return out


def test_verify_does_name_options():
    assert len(_texts_with_flags()) >= 10  # the sweep below would pass vacuously if this broke


@pytest.mark.parametrize("text", _texts_with_flags())
def test_no_option_survives(text):
    assert not FLAG.search(for_wizard(text)), for_wizard(text)


@pytest.mark.parametrize("cli, wizard", [
    ("use the PACS's own AE title with --called-ae (ask its administrator)",
     "enter the PACS's own AE title on the PACS step (ask its administrator)"),
    ("add --tls (with --cafile CA.pem, --expect-cert SERVER.pem or --insecure)",
     "on the PACS step, give the PACS's plain DICOM port (this one expects TLS)"),
    ("drop --tls if 127.0.0.1:2761 is a plain DICOM port, or use the TLS port; else retry",
     "check the Virtual server step's port is the TLS listener's, and that Apply completed; else retry"),
    ("check the PACS's log; retry with a longer --timeout", "check the PACS's log; retry with ctrl+t"),
])
def test_whole_clauses_are_rewritten(cli, wizard):
    assert for_wizard(cli) == wizard


def test_reword_step_keeps_the_rest():
    step = Step(name="associate", ok=False, seconds=0.5, detail="rejected 1/1/7",
                cause="wrong called AE", next_action="use the PACS's own AE title with --called-ae")
    out = reword_step(step)
    assert (out.name, out.ok, out.seconds, out.detail, out.cause) == ("associate", False, 0.5, "rejected 1/1/7",
                                                                       "wrong called AE")
    assert out.next_action == "enter the PACS's own AE title on the PACS step"
    assert step.next_action.endswith("--called-ae")  # the engine's report is not changed in place
