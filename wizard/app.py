"""Placeholder until the wizard issue lands: says what is coming and how to use the CLI today."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

TEXT = """\
dicom-tls-wizard

The guided setup (certificates, PACS, cipher policy, virtual server, review,
apply, C-ECHO proof, Butterfly Cloud values) is being built.

Today, from the command line:
  dicomtls check-pem Butterfly_SCP_Cert.pem Butterfly_SCP_key.pem
  dicomtls plan validate plan.toml
  dicomtls echo HOST PORT --tls --insecure --called-ae PACS

Press q to quit.
"""


class PlaceholderApp(App):
    TITLE = "dicom-tls-wizard"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(TEXT)
        yield Footer()


def run(plan_path: str | None = None, demo: bool = False, backend: str | None = None, theme: str | None = None) -> int:
    app = PlaceholderApp()
    if theme:
        app.theme = theme
    app.run()
    return 0
