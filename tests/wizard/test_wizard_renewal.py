"""A re-run with a saved plan: the Start screen shows the installed certificate's days to expiry,
and "Replace the certificate" walks only Certificates, then Review (and Apply), asking the backend
to replace the pair in place."""

from __future__ import annotations

import datetime as dt

from recorded import NOW, SnapshotServices, story

from dicomtls.engine.plan import save_plan
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.renewal import phrase
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import on_step, pilot_test, screen_text, until


class Recording(SnapshotServices):
    def __init__(self) -> None:
        super().__init__()
        self.options = []

    def backend(self, plan, options=None):
        self.options.append(options)
        return super().backend(plan, options)


@pilot_test
async def test_replace_the_certificate_walks_certificates_review(home, butterfly_pair) -> None:
    st = story(home)
    save_plan(st.build_plan(), st.plan_path)
    services = Recording()
    app = WizardApp(WizardState.from_plan_file(st.plan_path), services)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, on_step(app, 0))
        await until(pilot, lambda: "days left" in screen_text(app), what="the expiry note")
        assert "Certificate: expires 2126-11-04" in screen_text(app)
        app.screen.query_one("#replace-cert").press()
        await until(pilot, on_step(app, 1), what="the certificate step")
        assert app.state.renewal
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.index == 5 and app.state.diff is not None, what="Review, directly")
        assert services.options and services.options[-1].replace_cert is True
        await pilot.press("ctrl+p")
        await until(pilot, on_step(app, 1), what="back to the certificate step, not the cipher policy")


def test_the_expiry_phrases():
    from dicomtls.engine.check import InstalledCert

    def cert(days):
        return InstalledCert(path="c.pem", not_after=NOW + dt.timedelta(days=days, hours=1), days_left=days)

    assert str(phrase(cert(200)).plain) == "Certificate: expires 2027-08-03 (200 days left)."
    assert "(10 days left): replace it before then" in phrase(cert(10)).plain
    assert phrase(cert(-1)).plain.startswith("Certificate expired on")
    assert "cannot be read" in phrase(None).plain
