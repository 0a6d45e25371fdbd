"""Step 2: the certificate and key Butterfly Cloud gave you, checked before anything is touched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Static

from dicomtls.engine import paths
from dicomtls.engine.plan import DEFAULT_CERT_FILE, DEFAULT_KEY_FILE, Certificate
from dicomtls.wizard.advice import fix_text
from dicomtls.wizard.checks import stale_text
from dicomtls.wizard.renewal import REVIEW
from dicomtls.wizard.screens.base import StepScreen, error_text
from dicomtls.wizard.widgets import FormField, PathSuggester, fingerprint_lines, wrap_indent

if TYPE_CHECKING:
    from dicomtls.engine.certs import PemReport

PASSPHRASE_ENV = "DICOMTLS_KEY_PASSPHRASE"
PASSPHRASE_CODES = {"encrypted_no_passphrase", "bad_passphrase"}


def pem_summary(report: PemReport, show_path: Callable[[Path], str]) -> Content:
    """The check's result in plain words."""
    lines = [Content.styled("✓ The certificate and key match and can serve TLS.", "bold")]
    expiry = report.not_after.strftime("%Y-%m-%d")
    lines.append(Content(f"  Subject   {report.subject}"))
    if report.sans:
        lines.append(Content(f"  Names     {', '.join(report.sans)}"))
    lines.append(Content(f"  Expires   {expiry} (in {report.days_left} days)"))
    lines.append(Content("  SHA-256   " + fingerprint_lines(report.fingerprint_sha256, "            ").lstrip()))
    key = f"{report.key_type} {report.key_bits}" + (" (encrypted)" if report.key_encrypted else "")
    lines.append(Content(f"  Key       {key}{', self-signed' if report.self_signed else ''}"))
    for w in report.warnings:
        lines.append(Content.styled(wrap_indent(f"! {w}", "  "), "bold"))
    return Content("\n").join(lines)


class CertificatesScreen(StepScreen):
    KEY = "certificates"
    TITLE = "Certificates: the PEM pair from Butterfly Cloud"
    INDEX = 1

    def next_index(self) -> int:
        return REVIEW if self.state.renewal else self.INDEX + 1  # renewal: straight to Review
    BINDINGS = [
        Binding("ctrl+t", "check", "Check pair", id="check"),
        Binding("ctrl+g", "generate", "Generate test pair", id="generate"),
    ]

    def compose_body(self) -> ComposeResult:
        st = self.state
        cert, key = self._initial_paths()
        yield Static("Butterfly Cloud's Connectivity page hands out the pair (Butterfly_SCP_Cert.pem and "
                     "Butterfly_SCP_key.pem). Give their paths (→ completes a path).", id="intro")
        found = self.services.find_butterfly_pair(self.search_folders())
        if found and (str(found[0]), str(found[1])) != (cert, key):
            with Horizontal(id="found-row"):
                yield Static(f"Found {st.show_path(found[0].parent)}/{found[0].name} and its key. ", id="found")
                yield Button("Use them", id="use-found", compact=True)
            self.found: tuple[Path, Path] | None = found
        else:
            self.found = None
        yield FormField("Certificate", "cert", self.draft_value("cert", st.show_path(cert)), suggester=PathSuggester(),
                        placeholder=f"~/Downloads/{DEFAULT_CERT_FILE}")
        yield FormField("Private key", "key", self.draft_value("key", st.show_path(key)), suggester=PathSuggester(),
                        placeholder=f"~/Downloads/{DEFAULT_KEY_FILE}")
        yield FormField("Passphrase", "passphrase", st.passphrase or "", password=True,
                        hint=f"the key is encrypted; kept in memory only (headless runs read ${PASSPHRASE_ENV})",
                        field_id="field-passphrase")
        yield FormField("Name on backend", "cert-name", self.draft_value("cert-name", st.certificate.name))
        with Horizontal(classes="buttons"):
            yield Button("Check the pair  ctrl+t", id="check", compact=True)
            yield Button("Generate a test pair  ctrl+g", id="generate", compact=True)
        yield Static("", id="pem-result")

    def on_mount(self) -> None:
        self.show_results()
        self.query_one("#cert", Input).focus()

    def _key_encrypted(self) -> bool | None:
        """What the last check of these very files said of the key (None: not known)."""
        st = self.state
        if st.pem is not None and not st.stale("pem"):
            return bool(st.pem.key_encrypted)
        return None

    def show_results(self) -> None:
        st = self.state
        result = self.query_one("#pem-result", Static)
        stale = st.stale("pem")
        if st.pem_checked_for is not None and stale:
            result.update(stale_text(stale, again="check again"))
            result.set_classes("warn")
        elif st.pem is not None and st.pem_checked_for is not None:
            result.update(pem_summary(st.pem, st.show_path))
            result.set_classes("ok")
        elif st.pem_failure is not None and st.pem_checked_for is not None:
            result.update(error_text(*st.pem_failure))
            result.set_classes("error")
        else:
            result.update(Content("ctrl+t checks the pair: subject, expiry, fingerprint, and that the key matches."))
            result.set_classes("")
        encrypted = self._key_encrypted()
        typed = bool(self.query_one("#passphrase", Input).value)
        asked = st.pem_failure is not None and st.pem_failure_code in PASSPHRASE_CODES and not stale
        # A key that is not encrypted has no passphrase: the field (and passphrase_env) go away.
        self.field("passphrase").display = encrypted is True or asked or (encrypted is None and (
            typed or st.certificate.passphrase_env is not None))

    def collect(self, *, quiet: bool = False) -> str | None:
        return self.run_checks(quiet, self._collect)

    def _collect(self) -> str | None:
        st = self.state
        cert, key = self.value("cert"), self.value("key")
        for fid, v, what in (("cert", cert, "certificate"), ("key", key, "private key")):
            if not v:
                self.problem(fid, f"is empty; give the path of the {what} file", "")
        inp = self.query_one("#passphrase", Input)
        encrypted = self._key_encrypted()
        if encrypted is False and inp.value:
            inp.value = ""  # the key opens without one: nothing to keep in memory
        st.passphrase = inp.value or None
        if cert and key:
            if encrypted is None:
                encrypted = st.passphrase is not None or st.certificate.passphrase_env is not None
            try:
                st.certificate = Certificate(name=self.value("cert-name") or st.certificate.name,
                                             cert=self._abs(cert), key=self._abs(key),
                                             passphrase_env=PASSPHRASE_ENV if encrypted else None)
            except ValidationError as err:
                self.problem("cert-name", err.errors()[0]["msg"].removeprefix("Value error, "))
        return self.first_problem()

    def search_folders(self) -> list[Path]:
        return [Path.cwd(), Path.home() / "Downloads"]

    def _initial_paths(self) -> tuple[str, str]:
        st = self.state
        c = st.certificate
        plan_has = st.existing is not None or st.demo is not None or "certificates" in st.drafts
        if plan_has or c.cert != DEFAULT_CERT_FILE or c.key != DEFAULT_KEY_FILE:
            return c.cert, c.key
        found = self.services.find_butterfly_pair(self.search_folders())
        if found:
            return str(found[0]), str(found[1])
        return "", ""

    @staticmethod
    def _abs(p: str) -> str:
        return str(Path(p).expanduser().resolve()) if p else ""

    # --- actions -----------------------------------------------------------------------------------
    @on(Button.Pressed, "#use-found")
    def use_found(self) -> None:
        if self.found:
            self.query_one("#cert", Input).value = self.state.show_path(self.found[0])
            self.query_one("#key", Input).value = self.state.show_path(self.found[1])
            self.query_one("#found-row").display = False
            self.action_check()

    @on(Button.Pressed, "#check")
    def action_check(self) -> None:
        self._check_worker()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _check_worker(self) -> None:
        await self.check_pair()

    @on(Button.Pressed, "#generate")
    def action_generate(self) -> None:
        self._generate_worker()

    @work(exclusive=True, group="nav", exit_on_error=False)
    async def _generate_worker(self) -> None:
        folder = paths.config_dir() / "test-pair"
        made = await self.guarded("Generating a self-signed test pair", self.services.make_test_pair, folder)
        if made is None:
            return
        self.query_one("#cert", Input).value = self.state.show_path(made[0])
        self.query_one("#key", Input).value = self.state.show_path(made[1])
        await self.check_pair()

    async def check_pair(self) -> bool:
        st = self.state
        if self.collect() is not None:
            return False
        inputs = st.pem_inputs()  # the result belongs to these
        cert, key, passphrase = self._abs(self.value("cert")), self._abs(self.value("key")), st.passphrase
        from dicomtls.engine.certs import CertError

        self.running = True
        self.status("Checking the pair…", "busy")
        failure: tuple[str, str, str] | None = None
        report = None
        try:
            report = await self.in_thread(self.services.check_pair, cert, key, passphrase, st.cipher_policy.profile)
        except CertError as exc:
            failure = (exc.problem, fix_text(exc), exc.code)
        except Exception as exc:  # an engine error that is not a CertError (a UserError, say)
            failure = (getattr(exc, "problem", str(exc)), fix_text(exc), "")
        finally:
            self.running = False
            self.status("")
        st.pem, st.pem_checked_for = report, inputs
        st.pem_failure = failure[:2] if failure else None
        st.pem_failure_code = failure[2] if failure else None
        self.collect(quiet=True)  # passphrase_env follows what the check found
        self.show_results()
        if failure is None:
            self.field("passphrase").set_error(None)
            return True
        code = failure[2]
        if code in PASSPHRASE_CODES:
            self.field("passphrase").display = True
            self.field("passphrase").set_error("Type the key's passphrase" if code != "bad_passphrase"
                                               else "That passphrase does not open the key")
            self.query_one("#passphrase", Input).focus()
        elif code in ("der", "not_pem", "corrupt", "no_cert", "missing", "unreadable", "empty"):
            self.query_one("#cert" if "certificate" in failure[0].lower() else "#key", Input).focus()
        return False

    async def commit(self) -> bool:
        st = self.state
        if self.collect() is not None:
            return False
        if st.pem is None or st.stale("pem"):
            if not await self.check_pair():
                return False
        return self.collect() is None
