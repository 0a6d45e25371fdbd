"""The engine speaks in facts, each face phrases them: every advice code the engine can emit has a
rendering in the CLI (with its options) and in the wizard (with its steps and fields), and neither
face's words leak into the other's. Also checked against a real echo to the demo PACS."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dicomtls.cli import phrasing as cli
from dicomtls.engine.advice import CODES, Advice, advice
from dicomtls.wizard import advice as wiz
from tests.support.words import OPTION, PLAN_KEYS, cli_words, string_literals

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def sample(code: str) -> Advice:
    """The code with made-up data of the right kinds (a port is a number)."""
    return advice(code, **{k: 2761 if k == "port" else f"<{k}>" for k in CODES[code]})




def test_plan_key_patterns_are_real():
    texts = ["certificate.name", "[netscaler]", "[[service]]", "passphrase_env", "ae_title"]
    assert all(any(p.search(t) for p in PLAN_KEYS) for t in texts)
    assert not any(p.search("the PACS's own AE title on the PACS step") for p in PLAN_KEYS)


def test_both_faces_render_exactly_the_engine_s_codes():
    assert set(cli.ADVICE) == set(CODES) == set(wiz.ADVICE)


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_in_each_face_s_words(code):
    a = sample(code)
    cli_text, wiz_text = cli.render(a), wiz.render(a)
    assert cli_text and wiz_text
    for key in CODES[code]:  # the data it carries is used, in both faces
        assert str(a.data[key]) in cli_text + wiz_text
    assert "ctrl+" not in cli_text.lower()
    assert not OPTION.search(wiz_text), wiz_text
    hits = [p.pattern for p in PLAN_KEYS if p.search(wiz_text)]
    assert not hits, (wiz_text, hits)


def emitted_codes() -> dict[str, list[str]]:
    """Each advice code written in engine/ (advice("code", ...) or Advice(code="...")), with where."""
    out: dict[str, list[str]] = {}
    for path in ENGINE.rglob("*.py"):
        if path.name == "advice.py":  # the model itself (its helper passes the code through)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("advice", "Advice")):
                continue
            for arg in node.args[:1] + [k.value for k in node.keywords if k.arg == "code"]:
                for code in _literals(arg, f"{path.name}:{node.lineno}"):
                    out.setdefault(code, []).append(f"{path.name}:{node.lineno}")
    return out


def _literals(node: ast.expr, where: str) -> list[str]:
    """The codes an argument can be: a literal, or either branch of `a if test else b`."""
    if isinstance(node, ast.IfExp):
        return _literals(node.body, where) + _literals(node.orelse, where)
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), f"{where}: spell the code out"
    return [node.value]


def test_every_code_written_in_the_engine_is_known_and_every_known_code_is_used():
    used = emitted_codes()
    assert len(used) >= 20
    assert set(used) - set(CODES) == set(), {c: used[c] for c in set(used) - set(CODES)}
    assert set(CODES) - set(used) == set()


def test_unknown_codes_and_wrong_data_are_refused():
    with pytest.raises(ValueError, match="unknown advice code"):
        Advice(code="no.such.code")
    with pytest.raises(ValueError, match="expected"):
        advice("pair.swapped", cert="c.pem")  # the key's path is missing


# export.py writes the CLI's own script (its comments name commands on purpose); nothing else is exempt.
SWEPT = ["verify.py", "certs.py", "backends/builtin.py", "demo.py", "errors.py"] + sorted(
    str(p.relative_to(ENGINE)) for p in (ENGINE / "backends" / "netscaler").glob("*.py") if p.name != "export.py")


@pytest.mark.parametrize("module", SWEPT)
def test_the_engine_s_own_words_name_no_option_and_no_plan_key(module):
    """Causes, details, hints and face-neutral fixes reach both faces as they are: no face's words in them."""
    assert string_literals(ENGINE / module)
    assert cli_words(ENGINE / module) == []


def test_a_real_rejection_is_advice_that_each_face_phrases(tmp_path):
    """The demo PACS rejects a wrong called AE (A-ASSOCIATE-RJ 1/1/7): the engine names the fix by code,
    the CLI says --called-ae, the wizard names the field on its PACS step."""
    from dicomtls.engine.demo import DemoPacs
    from dicomtls.engine.verify import echo

    pacs = DemoPacs()
    try:
        report = echo("127.0.0.1", pacs.port, called_ae="NOT-THE-PACS", timeout=5)
    finally:
        pacs.stop()
    step = report.failed_step
    assert step is not None and step.name == "associate"
    assert step.advice == Advice(code="reject.called_ae") and "'NOT-THE-PACS'" in step.cause
    assert "--called-ae" in cli.step_action(step)
    assert wiz.step_action(step) == "enter the PACS's own AE title on the PACS step (ask its administrator)"
