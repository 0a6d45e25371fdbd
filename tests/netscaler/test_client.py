"""The NITRO client: sessions, TLS verification and pinning, errors mapped to messages with a fix."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from dicomtls.cli.phrasing import fix_text as cli_fix
from dicomtls.cli.phrasing import render as cli_render
from dicomtls.engine.advice import Advice
from dicomtls.engine.backends.netscaler.client import (
    FingerprintMismatch,
    NitroClient,
    NitroConnectionError,
    NitroError,
    fetch_fingerprint,
)
from dicomtls.engine.errors import UserError
from dicomtls.engine.rehearsal.nitro_sim import make_management_cert, start_in_thread
from dicomtls.wizard.advice import fix_text as wizard_fix
from dicomtls.wizard.advice import render as wizard_render

from .conftest import PASSWORD


def client(sim, **kw) -> NitroClient:
    kw.setdefault("fingerprint", sim.fingerprint)
    return NitroClient(sim.url, "nsroot", kw.pop("password", PASSWORD), **kw)


def test_fetch_fingerprint_matches_the_served_certificate(sim):
    assert fetch_fingerprint(sim.url) == sim.fingerprint
    with pytest.raises(UserError, match="http://"):
        fetch_fingerprint("http://127.0.0.1:1")


def test_pinned_session_logs_in_once_and_out_at_close(sim):
    with client(sim) as c:
        assert c.get("nsfeature")[0]["feature"] == []
        c.get("lbvserver")
        assert c.requests == 3 and c.writes == 0
    assert [e.resource for e in sim.log] == ["login", "nsfeature", "lbvserver", "logout"]
    assert c.requests == 4  # logout counted too


def test_fingerprint_mismatch_refused_before_any_credential(sim):
    other_cert, other_key = make_management_cert()
    with start_in_thread(password=PASSWORD, cert_pem=other_cert, key_pem=other_key) as impostor:
        c = NitroClient(impostor.url, "nsroot", PASSWORD, fingerprint=sim.fingerprint)  # pinned to the real one
        with pytest.raises(FingerprintMismatch) as info:
            c.get("nsfeature")
        c.close()
        assert impostor.log == []  # not a single request reached it: no login, no password
        assert impostor.state.requests == 0
        msg = str(info.value)
        assert impostor.fingerprint in msg and sim.fingerprint in msg
        assert "nothing was sent" in msg and PASSWORD not in msg


def test_ca_file_verification(sim, tmp_path):
    ca = tmp_path / "mgmt.pem"
    ca.write_bytes(sim.state.files["/nsconfig/ssl"]["ns-server.cert"])  # the ADC's self-signed certificate
    with NitroClient(sim.url, "nsroot", PASSWORD, ca_file=str(ca)) as c:
        assert c.get("nsfeature") is not None
    other_cert, _ = make_management_cert()
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(other_cert)
    n = len(sim.log)
    c = NitroClient(sim.url, "nsroot", PASSWORD, ca_file=str(wrong))
    with pytest.raises(UserError) as info:
        c.get("nsfeature")
    c.close()
    assert len(sim.log) == n  # refused before any request
    assert sim.fingerprint in cli_fix(info.value)  # the fix offers the fingerprint to pin


def test_system_trust_refuses_a_self_signed_adc(sim):
    c = NitroClient(sim.url, "nsroot", PASSWORD)
    with pytest.raises(UserError, match="not trusted") as info:
        c.get("nsfeature")
    c.close()
    assert sim.log == [] and f'fingerprint = "sha256:{sim.fingerprint}"' in cli_fix(info.value)


def test_insecure_warns_loudly(sim, caplog):
    with caplog.at_level(logging.WARNING, logger="dicomtls.netscaler"):
        with NitroClient(sim.url, "nsroot", PASSWORD, insecure=True) as c:
            c.get("nsfeature")
    assert any("NOT verified" in w for w in c.warnings)
    assert "NOT verified" in caplog.text


def test_http_works_with_a_clear_text_warning():
    with start_in_thread(tls=False, password=PASSWORD) as h:
        with NitroClient(h.url, "nsroot", PASSWORD) as c:
            assert c.get("nsfeature")
        assert any("clear text" in w for w in c.warnings)


def test_wrong_password(sim):
    c = client(sim, password="not-it", password_source="$DICOMTLS_NITRO_PASSWORD")
    with pytest.raises(NitroError) as info:
        c.get("nsfeature")
    c.close()
    e = info.value
    assert (e.status, e.errorcode) == (401, 354)
    assert "Invalid username or password" in e.problem and "$DICOMTLS_NITRO_PASSWORD" in cli_fix(e)
    assert "not-it" not in str(e)


def test_expired_session_is_renewed_transparently(sim):
    with client(sim) as c:
        c.get("nsfeature")
        sim.state.expire_sessions()
        c.post("nsfeature", {"nsfeature": {"feature": ["LB"]}}, action="enable")
        assert c.get("nsfeature")[0]["feature"] == ["LB"]
    assert [(e.resource, e.errorcode) for e in sim.log] == [
        ("login", 0), ("nsfeature", 0), ("nsfeature", 444), ("login", 0), ("nsfeature", 0), ("nsfeature", 0),
        ("logout", 0)]


def test_unknown_attribute_is_599_278_with_the_message(sim):
    with client(sim) as c:
        with pytest.raises(NitroError) as info:
            c.post("service", {"service": {"name": "s", "ip": "10.0.0.20", "servicetype": "TCP", "port": 104,
                                           "bogus": 1}})
    e = info.value
    assert (e.status, e.errorcode, e.nitro_message) == (599, 278, "Invalid argument [bogus]")
    assert "Invalid argument [bogus]" in e.problem and "firmware" in e.fix


def test_default_profile_errors_never_suggest_disabling_it():
    """3740/3679 are explained with a fix that works in the profile mode; disabling the Default SSL Profile
    is refused by the ADC once enabled (3738), so it is never suggested."""
    with start_in_thread(password=PASSWORD, default_profile=True) as h:
        with client(h) as c:
            c.post("lbvserver", {"lbvserver": {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10",
                                               "port": 2761}})
            with pytest.raises(NitroError) as info:
                c.delete("sslvserver_sslcipher_binding", "vs", args={"ciphername": "DEFAULT"})
            assert info.value.errorcode == 3740
            assert "SSL profile" in info.value.fix and "DISABLED" not in info.value.fix
            with pytest.raises(NitroError) as info:
                c.put("sslvserver", {"sslvserver": {"vservername": "vs", "ssl3": "DISABLED"}}, name="vs")
            assert info.value.errorcode == 3679
            assert "SSL profile" in info.value.fix and "DISABLED" not in info.value.fix
            with pytest.raises(NitroError) as info:
                c.put("sslparameter", {"sslparameter": {"defaultprofile": "DISABLED"}})
            assert info.value.errorcode == 3738 and "keep it on" in info.value.fix


def test_missing_ok_and_bulk_failure_reports_the_failing_item(sim):
    with client(sim) as c:
        assert c.get("lbvserver", "ghost", missing_ok=True) == []
        c.post("sslcipher", {"sslcipher": {"ciphergroupname": "g"}})
        with pytest.raises(NitroError) as info:
            c.post("sslcipher_sslciphersuite_binding", {"sslcipher_sslciphersuite_binding": [
                {"ciphergroupname": "g", "ciphername": "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256"},
                {"ciphergroupname": "g", "ciphername": "NOPE"}]}, onerror="exit")
    assert (info.value.status, info.value.errorcode) == (207, 3621)
    assert "NOPE" in info.value.problem


def test_unreachable_and_timeout_messages():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    c = NitroClient(f"https://127.0.0.1:{port}", "nsroot", PASSWORD, insecure=True, timeout=2)
    with pytest.raises(NitroConnectionError) as info:
        c.get("nsfeature")
    assert "cannot reach the NetScaler" in info.value.problem and info.value.advice == Advice(code="ns.check_url")
    assert "netscaler.url" in cli_fix(info.value) and "NITRO URL on the Start step" in wizard_fix(info.value)

    silent = socket.socket()  # accepts, then says nothing: a hung management plane
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    c = NitroClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "nsroot", PASSWORD, timeout=0.5)
    with pytest.raises(NitroConnectionError) as info:
        c.get("nsfeature")
    assert "did not answer" in info.value.problem and "0.5 s" in info.value.problem
    assert info.value.advice == Advice(code="ns.slow") and "netscaler.timeout" in cli_fix(info.value)
    silent.close()
    for h in held:
        h.close()


def test_password_never_in_repr_or_messages(sim):
    c = client(sim)
    assert PASSWORD not in repr(c) and PASSWORD not in str(vars(c).get("password", ""))
    try:
        c.get("nosuchresource")
    except UserError as exc:
        assert PASSWORD not in str(exc)
    c.close()


def test_every_code_the_simulator_answers_has_an_explanation_with_a_fix():
    """No NITRO message reaches the user raw: each errorcode the simulated ADC can answer maps to a
    specific explanation (not the generic fallback), naming the code and the ADC's message."""
    import re
    from pathlib import Path

    from dicomtls.engine.backends.netscaler.explain import explain

    class Who:
        url, username, password_source = "https://192.0.2.10", "nsroot", "$DICOMTLS_NITRO_PASSWORD"

    src = "".join(p.read_text() for p in Path("engine/rehearsal/nitro_sim").glob("*.py"))
    codes = sorted({int(c) for c in re.findall(r"Fault\(\d+, (\d+)", src)})
    assert {368, 3679, 3738, 3739, 3740, 1642, 1647} <= set(codes)
    generic = explain(99999, 599, "x", "req", Who())[1]
    for code in codes:
        problem, fix = explain(code, 599, "the ADC's words", "req", Who())
        assert fix != generic, code
        assert f"NITRO {code}" in problem and "the ADC's words" in problem, code
        for words in ([fix] if isinstance(fix, str) else [cli_render(fix), wizard_render(fix)]):
            assert words and "defaultProfile DISABLED" not in words, code
