"""Each screen's validation: bad input is refused where it is typed, with the engine's words and a fix,
and the wizard stays on that step."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from textual.widgets import Input

from dicomtls.engine.plan import Certificate, Service
from dicomtls.engine.rehearsal.pairs import make_self_signed
from dicomtls.wizard.app import WizardApp
from dicomtls.wizard.state import WizardState
from tests.wizard.wizard_helpers import on_step, pilot_test, screen_text, text_of, type_into, until


def fresh_state(home: Path) -> WizardState:
    return WizardState(plan_path=home / "dicomtls" / "config" / "plan.toml")


async def open_step(pilot, app, index: int) -> None:
    await until(pilot, on_step(app, 0))
    app.goto(index)
    await until(pilot, on_step(app, index), what=f"step {index + 1}")


def field_error(app, input_id: str) -> str:
    return text_of(app, f"#field-{input_id} .field-error") if \
        app.screen.query_one(f"#field-{input_id}").has_class("-error") else ""


async def next_and_settle(pilot, app, index: int) -> None:
    await pilot.press("ctrl+n")
    await until(pilot, lambda: not app.screen.running and not any(
        not w.is_finished for w in app.screen.workers), what="the step's checks")


# --- Certificates -------------------------------------------------------------------------------------

@pilot_test
async def test_found_butterfly_pair_is_offered_and_checked(home, butterfly_pair) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        assert app.screen.query_one("#cert", Input).value == "~/Downloads/Butterfly_SCP_Cert.pem"
        assert app.screen.query_one("#key", Input).value == "~/Downloads/Butterfly_SCP_key.pem"
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.state.pem is not None, what="the check")
        result = text_of(app, "#pem-result")
        assert "✓ The certificate and key match" in result
        assert "CN=dicomtls-wizard-test-fixture" in result and "Expires   2126-" in result
        assert app.state.pem.fingerprint_sha256[:47] in result


@pilot_test
async def test_mismatched_pair_is_refused_with_a_fix(home, butterfly_pair, tmp_path) -> None:
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other.key"
    make_self_signed(other_cert, other_key)
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        await type_into(pilot, app, "key", str(other_key))
        await next_and_settle(pilot, app, 1)
        assert app.index == 1, "a bad pair must not pass"
        result = text_of(app, "#pem-result")
        assert result.startswith("✗") and "does not belong to" in result and "fix:" in result
        assert app.screen.query_one("#pem-result").has_class("error")
        assert app.state.pem is None


@pilot_test
async def test_not_pem_and_empty_paths(home, tmp_path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello, not a certificate\n")
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        await type_into(pilot, app, "cert", "")
        await type_into(pilot, app, "key", "")
        await next_and_settle(pilot, app, 1)
        assert app.index == 1
        assert field_error(app, "cert") == "Certificate is empty; give the path of the certificate file"
        assert field_error(app, "key") == "Private key is empty; give the path of the private key file"
        await type_into(pilot, app, "cert", str(junk))
        await type_into(pilot, app, "key", str(junk))
        await next_and_settle(pilot, app, 1)
        assert app.index == 1
        result = text_of(app, "#pem-result")
        assert "has no PEM block" in result and "fix: give the PEM certificate file as downloaded" in result


@pilot_test
async def test_encrypted_key_asks_for_the_passphrase(home, tmp_path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    make_self_signed(cert, key)
    pk = serialization.load_pem_private_key(key.read_bytes(), None)
    key.write_bytes(pk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b"s3cret-phrase")))
    os.chmod(key, 0o600)
    state = fresh_state(home)
    state.certificate = Certificate(cert=str(cert), key=str(key))
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        assert not app.screen.query_one("#field-passphrase").display
        await next_and_settle(pilot, app, 1)
        assert app.index == 1
        assert app.screen.query_one("#field-passphrase").display
        assert field_error(app, "passphrase") == "Type the key's passphrase"
        assert app.screen.focused is app.screen.query_one("#passphrase", Input)
        await pilot.press(*"wrong")
        await next_and_settle(pilot, app, 1)
        assert app.index == 1 and field_error(app, "passphrase") == "That passphrase does not open the key"
        await type_into(pilot, app, "passphrase", "s3cret-phrase")
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 2), what="the PACS step")
    assert app.state.passphrase == "s3cret-phrase"
    assert app.state.certificate.passphrase_env == "DICOMTLS_KEY_PASSPHRASE"  # the plan names a variable, never the secret
    assert "s3cret" not in "".join(str(v) for d in app.state.drafts.values() for v in d.values())


@pilot_test
async def test_path_completion_and_generate_a_test_pair(home, butterfly_pair) -> None:
    state = fresh_state(home)
    state.drafts["certificates"] = {"cert": "", "key": ""}
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        await type_into(pilot, app, "cert", "~/Downloads/Butterfly_SCP_C")
        await until(pilot, lambda: app.screen.query_one("#cert", Input)._suggestion != "", 5, "a suggestion")
        await pilot.press("right")  # accepts the suggestion
        assert app.screen.query_one("#cert", Input).value == "~/Downloads/Butterfly_SCP_Cert.pem"
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.state.pem is not None, what="the generated pair's check")
        made = home / "dicomtls" / "config" / "test-pair"
        assert (made / "Butterfly_SCP_Cert.pem").exists()
        assert (made / "Butterfly_SCP_key.pem").stat().st_mode & 0o777 == 0o600
        assert app.screen.query_one("#cert", Input).value == "~/dicomtls/config/test-pair/Butterfly_SCP_Cert.pem"
        assert "CN=dicomtls-test" in text_of(app, "#pem-result")


# --- PACS ---------------------------------------------------------------------------------------------

@pilot_test
async def test_pacs_fields_port_0_long_ae_bad_ip(home) -> None:
    app = WizardApp(fresh_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await type_into(pilot, app, "svc-host", "10.0.0.999")
        await type_into(pilot, app, "svc-port", "0")
        await type_into(pilot, app, "svc-ae", "QLINKQLINKQLINKQL")
        await next_and_settle(pilot, app, 2)
        assert app.index == 2
        assert "looks like an IPv4 address but is not a valid one" in field_error(app, "svc-host")
        assert field_error(app, "svc-port") == "Port must be from 1 to 65535"
        assert field_error(app, "svc-ae") == ("AE title is 17 characters; DICOM AE titles have at most 16, "
                                              "shorten it")
        assert app.screen.focused is app.screen.query_one("#svc-host", Input)
        assert app.state.pacs_report is None  # nothing was sent with bad values
        await type_into(pilot, app, "svc-port", "abc")
        await next_and_settle(pilot, app, 2)
        assert field_error(app, "svc-port") == "Port must be a whole number from 1 to 65535"


@pilot_test
async def test_pacs_test_catches_a_wrong_ae_then_lets_you_go_on(home, demo_builtin) -> None:
    state = fresh_state(home)
    state.pacs_services = [Service(name="PACS", host="127.0.0.1", port=demo_builtin.pacs.port, ae_title="WRONG-AE")]
    state.service_name = "PACS"
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 2)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: type(app.screen).__name__ == "ChoiceModal", 20, "the question")
        assert app.index == 2
        assert "The PACS did not answer the C-ECHO" in text_of(app, ".question")
        await pilot.press("n")
        await until(pilot, on_step(app, 2))
        rep = app.state.pacs_report
        assert rep is not None and not rep.ok
        bad = rep.failed_step
        assert bad.name == "associate"
        assert app.screen.query_one("#rung-associate").has_class("-bad")
        assert app.screen.query_one("#rung-tcp").has_class("-ok")
        rung = text_of(app, "#rung-associate")
        assert "called AE title not recognised" in rung and "why: the peer does not answer to the called AE " \
            "title 'WRONG-AE'" in rung
        await type_into(pilot, app, "svc-ae", "DEMO-PACS")
        await next_and_settle(pilot, app, 2)
        await until(pilot, on_step(app, 3), what="the cipher step after a good echo")
        assert app.state.pacs_report.ok and app.state.service.ae_title == "DEMO-PACS"


# --- Cipher policy ------------------------------------------------------------------------------------

@pilot_test
async def test_policy_must_fit_the_certificate_key(home, tmp_path) -> None:
    cert, key = tmp_path / "ec.pem", tmp_path / "ec.key"
    report = make_self_signed(cert, key, key_type="ECDSA")
    state = fresh_state(home)
    state.pem = report
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 3)
        assert "(●) DICOM Non-downgrading BCP 195" in screen_text(app)  # the default, marked
        assert "this policy needs RSA" in text_of(app, "#policy-warning")
        await next_and_settle(pilot, app, 3)
        assert app.index == 3
        await pilot.press("down")  # bcp195-ex serves RSA and ECDSA
        assert "(●) DICOM Extended BCP 195" in screen_text(app)
        await pilot.press("ctrl+n")
        await until(pilot, on_step(app, 4), what="the virtual server step")
    assert app.state.cipher_policy.profile == "bcp195-ex"


# --- Virtual server -----------------------------------------------------------------------------------

def vs_state(home: Path) -> WizardState:
    state = fresh_state(home)
    pair = home / "Downloads"
    state.certificate = Certificate(cert=str(pair / "Butterfly_SCP_Cert.pem"), key=str(pair / "Butterfly_SCP_key.pem"))
    state.pacs_services = [Service(name="PACS", host="127.0.0.1", port=104, ae_title="QLINK")]
    state.service_name = "PACS"
    return state


@pilot_test
async def test_virtual_server_fields(home) -> None:
    app = WizardApp(vs_state(home))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        assert app.screen.query_one("#vs-port", Input).value == "2761"  # the store role's port
        assert app.screen.query_one("#vs-calling", Input).value == "BUTTERFLY"
        await type_into(pilot, app, "vs-ip", "10.0.0.999")
        await type_into(pilot, app, "vs-port", "0")
        await type_into(pilot, app, "vs-calling", "BUTTERFLYBUTTERFLY")
        await type_into(pilot, app, "vs-allowed-clients", "203.0.113.0/24, nonsense")
        await next_and_settle(pilot, app, 4)
        assert app.index == 4
        assert field_error(app, "vs-ip").startswith("IP address is not an IP address")
        assert field_error(app, "vs-port") == "Port must be from 1 to 65535"
        assert field_error(app, "vs-calling").startswith("Calling AE is 18 characters")
        assert "'nonsense' is not an address or CIDR block" in field_error(app, "vs-allowed-clients")
        # The state holds only valid parts, and saving names the first field that stops it.
        assert all(v.ip != "10.0.0.999" for v in app.state.virtual_servers)
        assert app.screen.collect().startswith("IP address = '10.0.0.999': is not an IP address")


@pilot_test
async def test_port_in_use_is_a_conflict_here(home, butterfly_pair) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = WizardApp(vs_state(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await open_step(pilot, app, 4)
            await type_into(pilot, app, "vs-ip", "127.0.0.1")
            await type_into(pilot, app, "vs-port", str(port))
            await next_and_settle(pilot, app, 4)
            assert app.index == 4
            problems = text_of(app, "#vs-problems")  # found by the built-in backend's diff
            assert f"listener Butterfly-DICOM-TLS: port {port} on 127.0.0.1 is in use by another program" in problems
            assert app.state.diff.conflicts  # Review cannot be reached with it


# --- Start: NetScaler ---------------------------------------------------------------------------------

@pilot_test
async def test_nitro_wrong_password_and_bad_url(home) -> None:
    from dicomtls.engine.rehearsal.nitro_sim import start_in_thread

    sim = start_in_thread(port=0, tls=True, password="right-password")
    try:
        app = WizardApp(fresh_state(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, on_step(app, 0))
            await pilot.press("down", "enter")  # the backend list: NetScaler
            assert app.screen.query_one("#ns").display
            await type_into(pilot, app, "ns-url", "ftp://adc")
            await pilot.press("ctrl+t")
            await until(pilot, lambda: field_error(app, "ns-url") != "", what="the URL error")
            assert "https://HOST[:PORT]" in field_error(app, "ns-url")
            await type_into(pilot, app, "ns-url", sim.url)
            await type_into(pilot, app, "ns-password", "wrong-password")
            await pilot.press("ctrl+t")
            await until(pilot, lambda: type(app.screen).__name__ == "ChoiceModal", what="the pinning question")
            await pilot.press("y")
            await until(pilot, lambda: field_error(app, "ns-password") != "", what="the login error")
            assert "did not accept the login" in field_error(app, "ns-password")
            status = text_of(app, "#status")
            assert 'refused the login for \'nsroot\': NITRO 354 "Invalid username or password"' in status
            assert "wrong-password" not in status
            assert not app.state.nitro_ok
            await next_and_settle(pilot, app, 0)
            assert app.index == 0
            await type_into(pilot, app, "ns-password", "right-password")
            await pilot.press("ctrl+n")
            await until(pilot, on_step(app, 1), what="the certificates step after logging in")
        assert app.state.nitro_ok and app.state.netscaler.fingerprint is not None
        assert app.state.cipher_groups  # the ADC's groups, offered on the cipher step
    finally:
        sim.stop()


@pilot_test
async def test_netscaler_name_taken_is_a_conflict_here(home, demo_netscaler) -> None:
    """Another vserver of the same name already exists on the ADC: the virtual server step says so
    (from the NetScaler backend's diff) and keeps the user there; nothing is written."""
    from dicomtls.engine.backends.netscaler.client import NitroClient

    demo = demo_netscaler
    with NitroClient(demo.nitro.url, demo.nitro.username, demo.nitro.password,
                     fingerprint=demo.nitro.fingerprint) as ns:
        ns.post("lbvserver", {"lbvserver": {"name": "Butterfly-DICOM-TLS", "servicetype": "HTTP",
                                            "ipv46": "127.0.0.1", "port": 8080}})
    writes = demo.nitro.state.writes
    state = WizardState(plan_path=demo.plan_path)
    state.load(demo.plan())
    state.netscaler = state.netscaler.model_copy(update={"fingerprint": demo.nitro.fingerprint})
    state.password, state.nitro_ok = demo.nitro.password, True
    state.demo = demo
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 4)
        await next_and_settle(pilot, app, 4)
        assert app.index == 4
        problems = text_of(app, "#vs-problems")
        assert problems.startswith("✗ Conflicts to resolve first:")
        assert "lbvserver Butterfly-DICOM-TLS:" in problems
    assert demo.nitro.state.writes == writes


@pilot_test
async def test_found_pair_is_offered_when_other_paths_are_set(home, butterfly_pair, tmp_path) -> None:
    cert, key = tmp_path / "old.pem", tmp_path / "old.key"
    make_self_signed(cert, key)
    state = fresh_state(home)
    state.certificate = Certificate(cert=str(cert), key=str(key))
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 1)
        assert "Found ~/Downloads/Butterfly_SCP_Cert.pem and its key." in text_of(app, "#found")
        app.screen.query_one("#use-found").focus()
        await pilot.press("enter")
        await until(pilot, lambda: app.state.pem is not None, what="the check of the found pair")
        assert app.screen.query_one("#cert", Input).value == "~/Downloads/Butterfly_SCP_Cert.pem"
        assert "CN=dicomtls-wizard-test-fixture" in text_of(app, "#pem-result")


# --- Butterfly Cloud ----------------------------------------------------------------------------------

@pilot_test
async def test_public_host_fills_the_values_and_is_checked(home, butterfly_pair) -> None:
    state = vs_state(home)
    from dicomtls.engine.plan import VirtualServer

    state.virtual_servers = [VirtualServer(name="Butterfly-DICOM-TLS", ip="0.0.0.0", port=2761, service="PACS")]
    app = WizardApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(pilot, app, 8)
        assert "Host             <the public IP Butterfly connects to>" in text_of(app, "#values")
        await type_into(pilot, app, "public-host", "10.0.0.999")
        await until(pilot, lambda: field_error(app, "public-host") != "", what="the host error")
        assert "looks like an IPv4 address but is not a valid one" in field_error(app, "public-host")
        await type_into(pilot, app, "public-host", "198.51.100.7")
        await until(pilot, lambda: "Host             198.51.100.7" in text_of(app, "#values"))
        assert field_error(app, "public-host") == ""
        assert "198.51.100.7:2761 (NAT to this host)" in text_of(app, "#firewall")
        assert "SCP AET          QLINK" in text_of(app, "#values")
