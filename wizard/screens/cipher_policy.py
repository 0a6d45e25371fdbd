"""Step 4: the cipher policy, one line each on what it means and whom it suits; the default marked."""

from __future__ import annotations

import textwrap
from typing import Any

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.suggester import SuggestFromList
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from dicomtls.engine.ciphers import DEFAULT_POLICY, POLICIES
from dicomtls.engine.plan import CipherPolicy
from dicomtls.wizard.screens.base import StepScreen
from dicomtls.wizard.widgets import FormField

NAMES = list(POLICIES)


def policy_label(name: str, chosen: bool) -> Content:
    """Two lines: the marker and title (the default says so), then what it means and whom it suits."""
    p = POLICIES[name]
    mark = " (default)" if name == DEFAULT_POLICY else ""
    desc = "\n    ".join(textwrap.wrap(p.description, 72))  # hanging indent, fits 80 columns
    return Content.assemble(("(●) " if chosen else "( ) "), Content.styled(f"{p.title}{mark}", "bold"),
                            "\n    ", desc)


class CipherPolicyScreen(StepScreen):
    KEY = "cipher_policy"
    TITLE = "Cipher policy: which TLS versions and suites the endpoint offers"
    INDEX = 3

    def compose_body(self) -> ComposeResult:
        st = self.state
        idx = self.draft_value("policy", NAMES.index(st.cipher_policy.profile))
        self.chosen: str = NAMES[idx]
        # The highlighted policy is the chosen one: arrows move both, so there is no hidden second state.
        yield OptionList(*[Option(policy_label(n, n == self.chosen), id=n) for n in NAMES], id="policy",
                         compact=True)
        yield Static("", id="policy-warning", classes="warn")
        hint = "the cipher group's name on the NetScaler" if st.backend == "netscaler" else \
            "a label for the policy in the terminator's config"
        groups = st.cipher_groups if st.backend == "netscaler" else []
        yield FormField("Group name", "group-name", self.draft_value("group-name", st.cipher_policy.name), hint=hint,
                        suggester=SuggestFromList(groups, case_sensitive=False) if groups else None)
        if groups:
            yield Static(Content.assemble(Content.styled("On the ADC now: ", "bold"), ", ".join(groups),
                                          "\nType an existing group's name to reuse it (→ completes); the review "
                                          "shows whether its suites match the policy."),
                         id="groups", classes="note")

    def on_mount(self) -> None:
        ol = self.query_one("#policy", OptionList)
        ol.highlighted = NAMES.index(self.chosen)
        ol.focus()
        self._show_warning()

    @property
    def choice(self) -> str:
        return self.chosen

    def _values(self) -> dict[str, Any]:
        return {**super()._values(), "policy": self.chosen}

    def store_draft(self) -> None:
        super().store_draft()
        self.state.draft(self.KEY)["policy"] = NAMES.index(self.chosen)

    @on(OptionList.OptionHighlighted, "#policy")
    def _choose(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id or DEFAULT_POLICY
        if name != self.chosen:
            ol = self.query_one("#policy", OptionList)
            old, self.chosen = self.chosen, name
            ol.replace_option_prompt(old, policy_label(old, False))
            ol.replace_option_prompt(name, policy_label(name, True))
        self._show_warning()

    def _show_warning(self) -> None:
        p = POLICIES[self.choice]
        notes = []
        if p.warning:
            notes.append(f"! {p.warning}")
        pem = self.state.pem
        if pem is not None and not p.key_type_ok(pem.key_type):
            notes.append(f"✗ Your certificate's key is {pem.key_type}; this policy needs "
                         f"{' or '.join(p.key_types)}. Pick another policy or another certificate.")
        w = self.query_one("#policy-warning", Static)
        w.update("\n".join(notes))
        w.display = bool(notes)

    def collect(self, *, quiet: bool = False) -> str | None:
        return self.run_checks(quiet, self._collect)

    def _collect(self) -> str | None:
        st = self.state
        try:
            st.cipher_policy = CipherPolicy(name=self.value("group-name") or st.cipher_policy.name,
                                            profile=POLICIES[self.choice].name)
        except ValidationError as err:
            self.problem("group-name", err.errors()[0]["msg"].removeprefix("Value error, "))
        return self.first_problem()

    async def commit(self) -> bool:
        st = self.state
        p = POLICIES[self.choice]
        if st.pem is not None and not p.key_type_ok(st.pem.key_type):
            self.status(f"{p.name} cannot serve a {st.pem.key_type} certificate; choose a policy that can.", "error")
            return False
        return self.collect() is None
