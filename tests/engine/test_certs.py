"""engine.certs: every error and warning of the certificate check, from files generated here,
and the rehearsal pair from make_self_signed (checked with OpenSSL and a real TLS handshake)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dicomtls.cli.phrasing import fix_text as cli_fix
from dicomtls.engine.certs import CertError, PemReport, check_pair, fingerprint
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.rehearsal.pairs import make_self_signed
from tests.support.pki import (
    NOW,
    Issuer,
    cert_pem,
    chain,
    ec_key,
    key_der,
    key_pem,
    make_cert,
    name,
    rsa_key,
    write_pair,
)

OPENSSL = shutil.which("openssl") or "openssl"  # Debian base; the DER fixes below are run for real


def good_pair(tmp_path: Path, **kw) -> tuple[Path, Path]:
    key = kw.pop("key", None) or rsa_key()
    return write_pair(tmp_path, cert_pem(make_cert(key=key, **kw)), key_pem(key))


def error(tmp_path_or_cert, key_path=None, **kw) -> CertError:
    with pytest.raises(CertError) as ei:
        check_pair(tmp_path_or_cert, key_path, now=NOW, **kw)
    exc = ei.value
    assert exc.problem and exc.fix, "every certificate error carries a problem and a fix"
    assert exc.exit_code != 0
    return exc


def run_fix(fix: str) -> Path:
    """Run the `openssl ...` conversion a fix suggests, exactly as written; return its -out file."""
    cmd = fix.split("convert it: ", 1)[1].split(" (keep", 1)[0].split(", then give", 1)[0]
    argv = shlex.split(cmd)
    assert argv[0] == "openssl"
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    return Path(argv[argv.index("-out") + 1])


# --- a good pair ---------------------------------------------------------------------------------

def test_good_pair_reports_everything(tmp_path):
    cert = make_cert(cn="pacs.test", sans=("localhost", "127.0.0.1", "pacs.test"))
    c, k = write_pair(tmp_path, cert_pem(cert), key_pem(rsa_key()))
    r = check_pair(c, k, now=NOW)
    assert isinstance(r, PemReport)
    assert r.subject == "CN=pacs.test" and r.issuer == "CN=pacs.test"
    assert r.sans == ["DNS:localhost", "IP:127.0.0.1", "DNS:pacs.test"]
    assert r.not_before == NOW - dt.timedelta(days=1) and r.not_after == NOW + dt.timedelta(days=365)
    assert r.not_before.tzinfo is not None and r.not_after.tzinfo is not None
    assert r.days_left == 365
    assert (r.key_type, r.key_bits, r.signature_hash) == ("RSA", 2048, "sha256")
    assert r.chain == ["CN=pacs.test"]
    assert r.warnings == []
    assert r.self_signed and any("self-signed" in n for n in r.notes)


def test_fingerprint_matches_openssl(tmp_path):
    c, k = good_pair(tmp_path)
    out = subprocess.run([OPENSSL, "x509", "-in", str(c), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True).stdout
    expected = out.strip().split("=", 1)[1]
    assert check_pair(c, k, now=NOW).fingerprint_sha256 == expected
    assert fingerprint(c.read_bytes()) == expected
    der = x509.load_pem_x509_certificate(c.read_bytes()).public_bytes(Encoding.DER)
    assert fingerprint(der) == expected


def test_crlf_and_bom_are_tolerated(tmp_path):
    key = rsa_key()
    pem = cert_pem(make_cert(key=key))
    c, k = write_pair(tmp_path, b"\xef\xbb\xbf" + pem.replace(b"\n", b"\r\n"),
                      b"\xef\xbb\xbf" + key_pem(key).replace(b"\n", b"\r\n"))
    r = check_pair(c, k, now=NOW)
    assert r.fingerprint_sha256 == fingerprint(pem)


# --- the files themselves ------------------------------------------------------------------------

def test_missing_file(tmp_path):
    c, _ = good_pair(tmp_path)
    e = error(c, tmp_path / "nope.pem")
    assert e.code == "missing" and "nope.pem" in e.problem


def test_empty_file(tmp_path):
    c, k = good_pair(tmp_path)
    c.write_bytes(b"\n  \n")
    e = error(c, k)
    assert e.code == "empty" and "certificate" in e.problem


def test_directory_is_unreadable(tmp_path):
    c, _ = good_pair(tmp_path)
    e = error(c, tmp_path)
    assert e.code == "unreadable" and "directory" in e.problem


def test_permission_denied_is_unreadable(tmp_path, monkeypatch):
    c, k = good_pair(tmp_path)
    k.chmod(0)
    if os.geteuid() == 0:  # root reads mode-000 files; produce the same OSError the kernel gives others
        real = Path.read_bytes

        def denied(self):
            if self == k:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)
        monkeypatch.setattr(Path, "read_bytes", denied)
    e = error(c, k)
    assert e.code == "unreadable" and "Permission denied" in e.problem
    assert "ls -l" in e.fix


def test_der_certificate_with_working_conversion(tmp_path):
    key = rsa_key()
    cert = make_cert(key=key)
    c, k = write_pair(tmp_path, cert.public_bytes(Encoding.DER), key_pem(key), cert_name="cert.cer")
    e = error(c, k)
    assert e.code == "der" and "DER" in e.problem
    assert f"openssl x509 -inform der -in {c}" in e.fix
    converted = run_fix(e.fix)
    assert check_pair(converted, k, now=NOW).fingerprint_sha256 == fingerprint(cert_pem(cert))


def test_der_key_with_working_conversion(tmp_path):
    key = rsa_key()
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), key_der(key), key_name="key.der")
    e = error(c, k)
    assert e.code == "der" and "private key" in e.problem
    assert f"openssl pkey -inform der -in {k}" in e.fix
    converted = run_fix(e.fix)
    assert check_pair(c, converted, now=NOW).key_type == "RSA"


def test_not_pem_text(tmp_path):
    c, k = good_pair(tmp_path)
    c.write_text("this is the PACS configuration page, not a certificate\n")
    e = error(c, k)
    assert e.code == "not_pem" and "BEGIN" in e.problem


def test_binary_that_is_neither_cert_nor_key(tmp_path):
    c, k = good_pair(tmp_path)
    c.write_bytes(b"\x30\x82\x01\x00" + os.urandom(64))
    e = error(c, k)
    assert e.code == "not_pem" and "pkcs12" in e.fix


def test_swapped_files(tmp_path):
    c, k = good_pair(tmp_path)
    e = error(k, c)
    assert e.code == "swapped"
    assert e.advice.code == "pair.swapped" and e.advice.data == {"cert": str(k), "key": str(c)}
    assert f"CERT={c}" in cli_fix(e) and f"KEY={k}" in cli_fix(e)  # the other way round


def test_key_in_both_slots(tmp_path):
    _, k = good_pair(tmp_path)
    e = error(k, k)
    assert e.code == "no_cert" and "private key" in e.problem


def test_certificate_in_both_slots(tmp_path):
    c, _ = good_pair(tmp_path)
    e = error(c, c)
    assert e.code == "no_key" and "certificate" in e.problem


def test_public_key_instead_of_private_key(tmp_path):
    key = rsa_key()
    pub = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), pub)
    e = error(c, k)
    assert e.code == "no_key" and "public key" in e.problem


def test_combined_file_in_both_slots(tmp_path):
    """stunnel-style: certificate and key in one file, given as both CERT and KEY."""
    key = rsa_key()
    c, _ = write_pair(tmp_path, cert_pem(make_cert(key=key)) + key_pem(key), b"")
    assert check_pair(c, c, now=NOW).key_type == "RSA"


def test_pem_pasted_on_one_line_is_still_read(tmp_path):
    """A web form that joins lines with spaces: the block is found and decoded all the same."""
    c, k = good_pair(tmp_path)
    before = fingerprint(c.read_bytes())
    c.write_text(c.read_text().replace("\n", " "))
    assert check_pair(c, k, now=NOW).fingerprint_sha256 == before


def test_csr_instead_of_certificate(tmp_path):
    key = rsa_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(name("pacs.test")).sign(key, hashes.SHA256())
    c, k = write_pair(tmp_path, csr.public_bytes(Encoding.PEM), key_pem(key))
    e = error(c, k)
    assert e.code == "no_cert" and "signing request" in e.problem


def test_damaged_certificate(tmp_path):
    c, k = good_pair(tmp_path)
    lines = c.read_text().splitlines()
    del lines[3:6]  # lose a few lines, as a bad copy-paste does
    c.write_text("\n".join(lines) + "\n")
    e = error(c, k)
    assert e.code == "corrupt"


# --- key vs certificate --------------------------------------------------------------------------

def test_key_does_not_match(tmp_path):
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=rsa_key())), key_pem(rsa_key(2048, 1)))
    e = error(c, k)
    assert e.code == "mismatch" and "does not belong" in e.problem
    assert "generated together" in e.fix


def test_key_of_other_type_says_so(tmp_path):
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=rsa_key())), key_pem(ec_key()))
    e = error(c, k)
    assert e.code == "mismatch" and "RSA" in e.problem and "ECDSA" in e.problem


@pytest.mark.parametrize("traditional", [False, True], ids=["pkcs8", "openssl-legacy"])
def test_encrypted_key(tmp_path, traditional):
    key = rsa_key()
    secret = b"correct horse"
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), key_pem(key, secret, traditional))
    e = error(c, k)
    assert e.code == "encrypted_no_passphrase" and e.advice.code == "key.passphrase_needed"
    assert "--passphrase-env" in cli_fix(e) and "passphrase" in e.fix

    wrong = b"Tr0ub4dor&3"
    e = error(c, k, passphrase=wrong)
    assert e.code == "bad_passphrase"
    assert wrong.decode() not in str(e) and secret.decode() not in str(e)

    r = check_pair(c, k, passphrase=secret, now=NOW)
    assert r.key_encrypted and any("passphrase" in n for n in r.notes)
    assert secret.decode() not in r.model_dump_json()


def test_a_wrong_passphrase_that_decrypts_to_garbage_is_still_a_wrong_passphrase(tmp_path):
    """Legacy (Proc-Type) keys: about 1 wrong passphrase in 200 passes OpenSSL's padding check and
    fails later as unparseable data; that must not be reported as a damaged key."""
    from cryptography.hazmat.primitives import serialization

    key = rsa_key()
    pem = key_pem(key, b"correct horse", True)
    sneaky = None
    for i in range(20000):
        try:
            serialization.load_pem_private_key(pem, f"wrong{i}".encode())
        except ValueError as exc:
            if "password" not in str(exc).lower() and "decrypt" not in str(exc).lower():
                sneaky = f"wrong{i}".encode()
                break
    assert sneaky is not None, "no passphrase in 20,000 reached the parser: the premise of this test changed"
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), pem)
    e = error(c, k, passphrase=sneaky)
    assert e.code == "bad_passphrase", e


def test_passphrase_for_plain_key_is_ignored(tmp_path):
    c, k = good_pair(tmp_path)
    r = check_pair(c, k, passphrase=b"unneeded", now=NOW)
    assert not r.key_encrypted


# --- validity ------------------------------------------------------------------------------------

def test_expired(tmp_path):
    c, k = good_pair(tmp_path, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=2))
    e = error(c, k)
    assert e.code == "expired"
    assert (NOW - dt.timedelta(days=2)).strftime("%Y-%m-%d") in e.problem
    assert e.advice.code == "cert.expired" and "make-cert" in cli_fix(e)


def test_not_yet_valid(tmp_path):
    c, k = good_pair(tmp_path, not_before=NOW + dt.timedelta(days=3))
    e = error(c, k)
    assert e.code == "not_yet_valid" and "clock" in e.fix
    # The same pair is fine once its start date has come (now= is how the wizard re-checks).
    assert check_pair(c, k, now=NOW + dt.timedelta(days=4)).days_left > 300


def test_now_defaults_to_the_real_clock(tmp_path):
    c, k = good_pair(tmp_path, not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=100, hours=1))
    assert check_pair(c, k).days_left == 100


@pytest.mark.parametrize("days,warned", [(10, True), (29, True), (31, False), (200, False)])
def test_expiry_warning_within_30_days(tmp_path, days, warned):
    c, k = good_pair(tmp_path, not_after=NOW + dt.timedelta(days=days, hours=1))
    r = check_pair(c, k, now=NOW)
    assert r.days_left == days
    hits = [w for w in r.warnings if "expires in" in w]
    assert bool(hits) == warned
    if warned:
        assert f"expires in {days} days" in hits[0]


# --- chains --------------------------------------------------------------------------------------

def test_chain_leaf_first_is_fine(tmp_path):
    certs, leaf_key = chain(1)
    c, k = write_pair(tmp_path, cert_pem(*certs), key_pem(leaf_key))
    r = check_pair(c, k, now=NOW)
    assert r.chain == ["CN=pacs.test", "CN=Test Intermediate 1", "CN=Test Root CA"]
    assert r.subject == "CN=pacs.test" and r.issuer == "CN=Test Intermediate 1"
    assert not r.self_signed and not any("self-signed" in n for n in r.notes)
    assert any("3 certificates" in n and "first is the server certificate" in n for n in r.notes)
    assert r.warnings == []


def test_chain_leaf_last_is_chain_order(tmp_path):
    certs, leaf_key = chain(1)
    c, k = write_pair(tmp_path, cert_pem(*certs[::-1]), key_pem(leaf_key))
    e = error(c, k)
    assert e.code == "chain_order"
    assert "3 certificates" in e.problem and "number 3 (CN=pacs.test)" in e.problem
    assert "1: CN=Test Root CA" in e.problem
    assert "CN=pacs.test comes first" in e.fix


def test_expired_intermediate_warns(tmp_path):
    root_key, mid_key, leaf_key = rsa_key(2048, 10), rsa_key(2048, 11), rsa_key()
    root = make_cert(cn="Root", key=root_key, ca=True, sans=())
    mid = make_cert(cn="Old Mid", key=mid_key, issuer=Issuer(root_key, root.subject), ca=True, sans=(),
                    not_before=NOW - dt.timedelta(days=900), not_after=NOW - dt.timedelta(days=5))
    leaf = make_cert(key=leaf_key, issuer=Issuer(mid_key, mid.subject))
    c, k = write_pair(tmp_path, cert_pem(leaf, mid, root), key_pem(leaf_key))
    r = check_pair(c, k, now=NOW)
    assert [w for w in r.warnings if "expired" in w] == [w for w in r.warnings if "CN=Old Mid" in w]
    assert len(r.warnings) == 1


def test_chain_with_issuers_out_of_order_warns(tmp_path):
    certs, leaf_key = chain(1)
    c, k = write_pair(tmp_path, cert_pem(certs[0], certs[2], certs[1]), key_pem(leaf_key))
    r = check_pair(c, k, now=NOW)
    assert any("did not issue" in w for w in r.warnings)


# --- warnings ------------------------------------------------------------------------------------

def test_small_rsa_key_warns(tmp_path):
    c, k = good_pair(tmp_path, key=rsa_key(1024))
    r = check_pair(c, k, now=NOW)
    assert r.key_bits == 1024
    assert any("1024 bits" in w for w in r.warnings)


@pytest.mark.parametrize("weak", ["sha1", "md5"])
def test_weak_signature_hash_warns(tmp_path, weak):
    c, k = good_pair(tmp_path, hash=weak)
    r = check_pair(c, k, now=NOW)
    assert r.signature_hash == weak
    assert any(weak.upper() in w and "SHA-256" in w for w in r.warnings)
    assert r.self_signed


def test_weak_hash_certificate_is_genuinely_signed(tmp_path):
    """The re-signed test certificate is real: OpenSSL checks its SHA-1 signature and accepts it."""
    c, _ = good_pair(tmp_path, hash="sha1")
    text = subprocess.run([OPENSSL, "x509", "-in", str(c), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "sha1WithRSAEncryption" in text
    ok = subprocess.run([OPENSSL, "verify", "-auth_level", "0", "-CAfile", str(c), str(c)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_weak_hash_on_intermediate_warns_but_not_on_root(tmp_path):
    root_key, mid_key, leaf_key = rsa_key(2048, 10), rsa_key(2048, 11), rsa_key()
    root = make_cert(cn="Old Root", key=root_key, ca=True, sans=(), hash="sha1")
    mid = make_cert(cn="Old Mid", key=mid_key, issuer=Issuer(root_key, root.subject), ca=True, sans=(), hash="sha1")
    leaf = make_cert(key=leaf_key, issuer=Issuer(mid_key, mid.subject))
    c, k = write_pair(tmp_path, cert_pem(leaf, mid, root), key_pem(leaf_key))
    r = check_pair(c, k, now=NOW)
    weak = [w for w in r.warnings if "SHA1" in w]
    assert len(weak) == 1 and "CN=Old Mid" in weak[0]


@pytest.mark.parametrize("policy", list(POLICIES))
def test_ecdsa_key_against_each_policy(tmp_path, policy):
    c, k = good_pair(tmp_path, key=ec_key())
    r = check_pair(c, k, policy=policy, now=NOW)
    assert (r.key_type, r.key_bits, r.curve) == ("ECDSA", 256, "secp256r1")
    assert r.policy == policy
    hits = [w for w in r.warnings if "no shared cipher" in w]
    if "ECDSA" in POLICIES[policy].key_types:
        assert hits == []
    else:
        assert len(hits) == 1 and policy in hits[0]
        assert "bcp195-ex" in hits[0] and "bcp195-rfc8996" in hits[0] and "RSA certificate" in hits[0]


def test_ecdsa_without_policy_is_not_judged(tmp_path):
    c, k = good_pair(tmp_path, key=ec_key())
    assert check_pair(c, k, now=NOW).warnings == []


def test_rsa_key_fits_every_policy(tmp_path):
    c, k = good_pair(tmp_path)
    for policy in POLICIES:
        assert check_pair(c, k, policy=policy, now=NOW).warnings == []


def test_unknown_policy_is_a_user_error(tmp_path):
    c, k = good_pair(tmp_path)
    with pytest.raises(UserError) as ei:
        check_pair(c, k, policy="tls-everything", now=NOW)
    assert "bcp195-nd" in ei.value.fix


# --- make_self_signed ----------------------------------------------------------------------------

def test_make_self_signed_defaults(tmp_path):
    old = os.umask(0o022)
    try:
        r = make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c.pem").stat().st_mode) == 0o644
    assert (r.key_type, r.key_bits, r.signature_hash) == ("RSA", 2048, "sha256")
    assert r.subject == "CN=dicomtls-test" and r.self_signed
    assert r.sans == ["DNS:localhost", "IP:127.0.0.1"]
    assert 364 <= r.days_left <= 365 and r.warnings == []
    assert r == check_pair(tmp_path / "c.pem", tmp_path / "k.pem", now=None).model_copy(
        update={"days_left": r.days_left})
    assert b"PRIVATE KEY" not in (tmp_path / "c.pem").read_bytes()


def test_make_self_signed_modes_ignore_a_strict_umask(tmp_path):
    old = os.umask(0o077)
    try:
        make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.pem").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_make_self_signed_single_san_string(tmp_path):
    r = make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", sans="pacs.local")
    assert r.sans == ["DNS:pacs.local"]


def test_make_self_signed_ecdsa_and_sans(tmp_path):
    r = make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", common_name="rehearsal", days=30,
                         sans=("pacs.example.org", "IP:::1", "DNS:localhost", "10.0.0.5"), key_type="ECDSA")
    assert (r.key_type, r.curve) == ("ECDSA", "secp256r1")
    assert r.sans == ["DNS:pacs.example.org", "IP:::1", "DNS:localhost", "IP:10.0.0.5"]
    assert any("expires in" in w for w in r.warnings)  # 30 days is inside the warning window


def test_make_self_signed_refuses_to_overwrite(tmp_path):
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    first = make_self_signed(c, k)
    before = (c.read_bytes(), k.read_bytes())
    with pytest.raises(CertError) as ei:
        make_self_signed(c, k)
    assert ei.value.code == "exists" and "--force" in cli_fix(ei.value)
    assert (c.read_bytes(), k.read_bytes()) == before
    k.unlink()  # one of the two still exists: still refused, and the cert is untouched
    with pytest.raises(CertError):
        make_self_signed(c, k)
    assert c.read_bytes() == before[0] and not k.exists()
    second = make_self_signed(c, k, overwrite=True)
    assert second.fingerprint_sha256 != first.fingerprint_sha256


@pytest.mark.parametrize("bad", [dict(sans=("not a name",)), dict(sans=("IP:300.1.1.1",)),
                                 dict(days=0), dict(key_type="DSA"), dict(bits=1024)])
def test_make_self_signed_rejects_bad_input(tmp_path, bad):
    with pytest.raises(UserError) as ei:
        make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", **bad)
    assert ei.value.fix
    assert not (tmp_path / "c.pem").exists() and not (tmp_path / "k.pem").exists()


@pytest.mark.parametrize("key_type", ["RSA", "ECDSA"])
def test_made_pair_serves_tls_and_verifies_by_name(tmp_path, key_type):
    """A real handshake on loopback: the server loads the pair, the client trusts the certificate
    itself and checks the host name against the SANs."""
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    report = make_self_signed(c, k, key_type=key_type)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(c, k)
    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[Exception] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client = ssl.create_default_context(cafile=str(c))
    for host in ("localhost",):
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.recv(2) == b"ok"
            peer = tls.getpeercert(binary_form=True)
    t.join(10)
    listener.close()
    assert errors == []
    assert fingerprint(peer) == report.fingerprint_sha256


def test_fingerprint_rejects_non_certificates():
    with pytest.raises(CertError):
        fingerprint(key_pem(rsa_key()))
    with pytest.raises(CertError):
        fingerprint(b"\x30\x03\x02\x01\x00")
    with pytest.raises(CertError):
        fingerprint(b"hello")


def test_key_material_never_in_errors(tmp_path):
    """Whatever goes wrong, no message quotes the key file's content."""
    key = rsa_key()
    pem = key_pem(key)
    body = pem.decode().splitlines()[1]
    cases = [
        write_pair(tmp_path, cert_pem(make_cert(key=rsa_key(2048, 1))), pem, "a.pem", "b.pem"),  # mismatch
        write_pair(tmp_path, pem, cert_pem(make_cert(key=key)), "c.pem", "d.pem"),  # swapped
        write_pair(tmp_path, pem, pem, "e.pem", "f.pem"),  # key twice
    ]
    for c, k in cases:
        with pytest.raises(CertError) as ei:
            check_pair(c, k, now=NOW)
        assert body not in str(ei.value) and "PRIVATE KEY-----" not in str(ei.value)
