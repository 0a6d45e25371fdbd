"""Renewal on a re-run: the installed certificate's days to expiry on the Start screen, and the
short path "Replace the certificate" (Certificates, Review, Apply; on a NetScaler the pair is updated
in place)."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.content import Content
from textual.widgets import Static

from dicomtls.engine.check import DEFAULT_WARN_DAYS, InstalledCert
from dicomtls.engine.plan import Plan

# The screens of the short path, by index: Start, Certificates, then Review and Apply.
CERTIFICATES, REVIEW = 1, 5


class ExpiryNote(Static):
    """"Certificate: expires 2027-01-02 (29 days left)", read in a worker thread."""

    def __init__(self, plan: Plan, **kw: Any) -> None:
        super().__init__("Certificate: reading…", **kw)
        self.plan = plan

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exit_on_error=False)
    def _read(self) -> None:
        from dicomtls.wizard.app import WizardApp  # here: app.py imports the screens, which import this

        app = self.app
        if not isinstance(app, WizardApp):
            raise TypeError(f"the expiry note runs in the WizardApp, not in {type(app).__name__}")
        cert = app.services.installed_certificate(self.plan)
        self.app.call_from_thread(self.update, phrase(cert))


def phrase(cert: InstalledCert | None) -> Content:
    if cert is None:
        return Content("Certificate: the installed one cannot be read.")
    when = f"{cert.not_after:%Y-%m-%d}"
    if cert.days_left < 0:
        return Content.assemble(Content.styled("Certificate expired", "bold"), f" on {when}: replace it now.")
    days = f"{cert.days_left} day{'s' if cert.days_left != 1 else ''} left"
    if cert.days_left < DEFAULT_WARN_DAYS:
        return Content.assemble("Certificate: expires ", when, " (", Content.styled(days, "bold"),
                                "): replace it before then.")
    return Content(f"Certificate: expires {when} ({days}).")
