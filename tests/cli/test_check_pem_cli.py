"""`dicomtls check-pem` and `dicomtls make-cert` as a user runs them: a real process, real files,
exit codes, the two-line error with a fix, the --json shape, and no key material on screen."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtls.engine.certs import fingerprint
from tests.support.pki import cert_pem, chain, ec_key, key_pem, make_cert, rsa_key, write_pair

SECRET = "s3cret passphrase"


def dicomtls(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "KEYPASS"}
    full_env = {**base, "DICOMTLS_HOME": str(cwd / ".dicomtls-home"), **(env or {})}
    r = subprocess.run([sys.executable, "-m", "dicomtls.cli.main", *args], cwd=cwd, env=full_env,
                       capture_output=True, text=True, timeout=60)
    # Whatever happened, nothing a user sees is a traceback or key material.
    for stream in (r.stdout, r.stderr):
        assert "Traceback" not in stream
        assert "PRIVATE KEY" not in stream
        assert SECRET not in stream
    return r


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    key = rsa_key()
    return write_pair(tmp_path, cert_pem(make_cert(key=key, cn="pacs.test")), key_pem(key))


def test_good_pair(tmp_path, pair):
    c, k = pair
    r = dicomtls("check-pem", str(c), str(k), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert fingerprint(c.read_bytes()) in r.stdout
    assert "CN=pacs.test" in r.stdout and "DNS:localhost, IP:127.0.0.1" in r.stdout
    assert "days left" in r.stdout and "RSA 2048 bits" in r.stdout
    assert "matches the certificate (OK)" in r.stdout
    assert "warning:" not in r.stdout and "result: usable" in r.stdout
    assert r.stderr == ""


def test_mismatch_is_an_error_with_a_fix(tmp_path):
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=rsa_key())), key_pem(rsa_key(2048, 1)))
    r = dicomtls("check-pem", str(c), str(k), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: ") and "does not belong" in lines[0]
    assert lines[1].startswith("  fix: ")
    assert r.stdout == ""


def test_json_good_and_bad(tmp_path, pair):
    c, k = pair
    r = dicomtls("check-pem", str(c), str(k), "--json", cwd=tmp_path)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert set(doc) == {"ok", "report", "error"}
    assert doc["ok"] is True and doc["error"] is None
    rep = doc["report"]
    assert rep["fingerprint_sha256"] == fingerprint(c.read_bytes())
    assert rep["key_type"] == "RSA" and rep["key_bits"] == 2048 and rep["signature_hash"] == "sha256"
    assert rep["sans"] == ["DNS:localhost", "IP:127.0.0.1"] and rep["chain"] == ["CN=pacs.test"]
    assert rep["policy"] == "bcp195-nd" and rep["warnings"] == []
    assert rep["not_after"].endswith("Z") or "+00:00" in rep["not_after"]

    r = dicomtls("check-pem", str(k), str(c), "--json", cwd=tmp_path)
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert set(doc) == {"ok", "error", "exit_code"} and doc["ok"] is False and doc["exit_code"] == 2
    assert doc["error"]["code"] == "swapped" and doc["error"]["advice"]["code"] == "pair.swapped"
    assert doc["error"]["problem"] and f"CERT={c}" in doc["error"]["fix"]  # the fix in the CLI's words


def test_passphrase_env(tmp_path):
    key = rsa_key()
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), key_pem(key, SECRET.encode()))

    r = dicomtls("check-pem", str(c), str(k), "--json", cwd=tmp_path)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "encrypted_no_passphrase"

    r = dicomtls("check-pem", str(c), str(k), "--passphrase-env", "KEYPASS", cwd=tmp_path)
    assert r.returncode == 2 and "KEYPASS is not set" in r.stderr

    r = dicomtls("check-pem", str(c), str(k), "--passphrase-env", "KEYPASS", "--json", cwd=tmp_path,
                 env={"KEYPASS": "wrong " + SECRET[::-1]})
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "bad_passphrase"

    r = dicomtls("check-pem", str(c), str(k), "--passphrase-env", "KEYPASS", cwd=tmp_path,
                 env={"KEYPASS": SECRET})
    assert r.returncode == 0, r.stderr
    assert "passphrase-protected" in r.stdout
    logs = list((tmp_path / ".dicomtls-home").rglob("*.log*"))
    assert all(SECRET not in p.read_text(errors="replace") for p in logs)


def test_ecdsa_pair_warns_under_the_default_policy(tmp_path):
    key = ec_key()
    c, k = write_pair(tmp_path, cert_pem(make_cert(key=key)), key_pem(key))
    r = dicomtls("check-pem", str(c), str(k), cwd=tmp_path)
    assert r.returncode == 0  # usable (TLS 1.3 works), but TLS 1.2 clients will fail: a warning
    assert "warning:" in r.stdout and "no shared cipher" in r.stdout and "bcp195-ex" in r.stdout
    assert "result: usable, with 1 warning" in r.stdout
    r = dicomtls("check-pem", str(c), str(k), "--policy", "bcp195-ex", cwd=tmp_path)
    assert r.returncode == 0 and "warning:" not in r.stdout


def test_chain_is_listed_leaf_first(tmp_path):
    certs, leaf_key = chain(1)
    c, k = write_pair(tmp_path, cert_pem(*certs), key_pem(leaf_key))
    r = dicomtls("check-pem", str(c), str(k), cwd=tmp_path)
    assert r.returncode == 0
    assert "1. CN=pacs.test; 2. CN=Test Intermediate 1; 3. CN=Test Root CA (leaf first)" in r.stdout
    assert "(self-signed)" not in r.stdout

    c.write_bytes(cert_pem(*certs[::-1]))
    r = dicomtls("check-pem", str(c), str(k), "--json", cwd=tmp_path)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "chain_order"


def test_unknown_policy(tmp_path, pair):
    c, k = pair
    r = dicomtls("check-pem", str(c), str(k), "--policy", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "unknown cipher policy" in r.stderr and "fix:" in r.stderr


def test_make_cert_defaults_then_check(tmp_path):
    r = dicomtls("make-cert", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cert, key = tmp_path / "Butterfly_SCP_Cert.pem", tmp_path / "Butterfly_SCP_key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    fp = fingerprint(cert.read_bytes())
    assert fp in r.stdout and "RSA 2048 bits" in r.stdout

    checked = dicomtls("check-pem", cert.name, key.name, "--json", cwd=tmp_path)
    assert checked.returncode == 0 and json.loads(checked.stdout)["report"]["fingerprint_sha256"] == fp

    before = (cert.read_bytes(), key.read_bytes())
    again = dicomtls("make-cert", cwd=tmp_path)
    assert again.returncode == 2 and "already exist" in again.stderr and "--force" in again.stderr
    assert (cert.read_bytes(), key.read_bytes()) == before

    forced = dicomtls("make-cert", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and fingerprint(cert.read_bytes()) != fp
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_make_cert_options(tmp_path):
    out = tmp_path / "rehearsal"
    r = dicomtls("make-cert", "--out-dir", str(out), "--cert", "c.pem", "--key", "k.pem", "--cn", "demo",
                 "--days", "90", "--san", "pacs.local", "--san", "::1", "--ecdsa", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(dicomtls("check-pem", str(out / "c.pem"), str(out / "k.pem"), "--policy", "bcp195-rfc8996",
                              "--json", cwd=tmp_path).stdout)
    rep = doc["report"]
    assert rep["subject"] == "CN=demo" and rep["key_type"] == "ECDSA" and rep["curve"] == "secp256r1"
    assert rep["sans"] == ["DNS:pacs.local", "IP:::1"] and 89 <= rep["days_left"] <= 90
    assert stat.S_IMODE((out / "k.pem").stat().st_mode) == 0o600


def test_make_cert_bad_san(tmp_path):
    r = dicomtls("make-cert", "--san", "two words", cwd=tmp_path)
    assert r.returncode == 2 and "error:" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "Butterfly_SCP_key.pem").exists()
