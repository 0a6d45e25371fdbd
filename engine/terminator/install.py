"""Turn a plan into what `serve` runs: check everything first, then write the state dir.

prepare() reads and checks (certificate and key, policy, that OpenSSL accepts the pair with the
policy) and writes nothing, so a broken plan never damages a working installation. write() (the
bundle's install(), bundle.py) then installs cert.pem, key.pem (0600; decrypted if the source key has a passphrase, so the service
never needs the passphrase), dhparams.pem (when the policy has DHE suites) and runtime.json.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dicomtls.engine.certs import CertError, check_pair, fingerprint
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, dump_plan
from dicomtls.engine.terminator.bundle import Bundle, load_context
from dicomtls.engine.terminator.config import RuntimeConfig, StateFiles, runtime_from_plan, state_dir_for
from dicomtls.engine.terminator.tlsserver import FFDHE2048_PEM, MIN_DH_BITS, dh_bits


def installed_fingerprint(state: StateFiles) -> str | None:
    try:
        return fingerprint(state.cert.read_bytes())
    except (OSError, ValueError, UserError):
        return None


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def _canonical_chain(data: bytes) -> bytes:
    """The certificate blocks only, re-encoded (no BOM, CRLF, stray text or keys in the installed file)."""
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data.replace(b"\r\n", b"\n"))
              if m.group(1).endswith(b"CERTIFICATE") and b"REQUEST" not in m.group(1)]
    return b"".join(x509.load_pem_x509_certificate(b).public_bytes(serialization.Encoding.PEM) for b in blocks)


def _canonical_key(data: bytes, passphrase: bytes | None) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (the service must start without a passphrase)."""
    for m in _PEM_BLOCK.finditer(data.replace(b"\r\n", b"\n")):
        if m.group(1).endswith(b"PRIVATE KEY"):
            try:
                key = serialization.load_pem_private_key(m.group(0), password=passphrase)
            except TypeError:  # a passphrase given for a plain key
                key = serialization.load_pem_private_key(m.group(0), password=None)
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    raise UserError("no private key block found", "give the PEM private key file")


@dataclass
class Prepared:
    """A checked plan, ready to serve: its runtime config and a loaded SSLContext. Nothing written yet."""

    plan: Plan
    state: StateFiles
    cert_pem: bytes
    key_pem: bytes | None  # None: keep the installed key (same certificate, encrypted source, no passphrase)
    dh_pem: bytes | None
    fingerprint: str
    plan_path: Path | None
    context: ssl.SSLContext
    runtime: RuntimeConfig

    def bundle(self) -> Bundle:
        """What the terminator runs and installs (bundle.py): also what the checker helper prints."""
        return Bundle(runtime=self.runtime, cert_pem=self.cert_pem, key_pem=self.key_pem, dh_pem=self.dh_pem,
                      applied_plan=self._applied_plan())

    def write(self) -> RuntimeConfig:
        """Install into the state dir: cert.pem, key.pem (0600), dhparams.pem, plan.toml, runtime.json."""
        return self.bundle().install()

    def _applied_plan(self) -> str:
        """The plan as installed: certificate and key are the state dir's copies (no passphrase needed),
        every path absolute. The service started by `apply` or `install-service` serves this file."""
        applied = self.plan.model_copy(deep=True)
        applied.certificate.cert = str(self.state.cert.resolve())
        applied.certificate.key = str(self.state.key.resolve())
        applied.certificate.passphrase_env = None
        applied.builtin.state_dir = str(self.state.dir.resolve())
        return ("# Written by dicomtls apply: the plan this terminator serves. Edit your own plan and run\n"
                "# `dicomtls apply` again rather than this file.\n" + dump_plan(applied))


def prepare(plan: Plan, passphrase: str | bytes | None = None, plan_path: Path | None = None,
            now: datetime | None = None) -> Prepared:
    """Check the plan and its certificate/key for serving; write nothing."""
    if not plan.virtual_server:
        raise UserError("the plan has no [[virtual_server]], so the terminator would listen on nothing",
                        "add a [[virtual_server]] (e.g. port 2761, role \"store\") to the plan")
    state = StateFiles(state_dir_for(plan))
    policy = plan.policy
    pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    key_pem: bytes | None
    try:
        report = check_pair(plan.cert_path, plan.key_path, pw, policy.name, now)
        key_pem = _canonical_key(plan.key_path.read_bytes(), pw)
    except CertError as exc:
        # An encrypted key and no passphrase: fine if this very certificate is installed already
        # (`apply` was given the passphrase and installed the key decrypted, 0600).
        if exc.code != "encrypted_no_passphrase" or not state.key.exists() or \
                installed_fingerprint(state) != fingerprint(plan.cert_path.read_bytes()):
            raise
        report = check_pair(plan.cert_path, state.key, None, policy.name, now)
        key_pem = None
    if not policy.key_type_ok(report.key_type):
        raise UserError(f"cipher policy {policy.name} needs a {' or '.join(policy.key_types)} certificate; this one "
                        f"has an {report.key_type} key, so no TLS 1.2 client could connect",
                        "use an RSA certificate, or choose the bcp195-ex or bcp195-rfc8996 policy for ECDSA")
    cert_pem = _canonical_chain(plan.cert_path.read_bytes())
    fp = report.fingerprint_sha256
    dh_pem = _dh_pem(state) if policy.needs_dh_params else None
    ctx = _context(plan, cert_pem, key_pem if key_pem is not None else state.key.read_bytes(), dh_pem)
    runtime = runtime_from_plan(plan, state.cert, state.key, state.dh if dh_pem else None, fp, state.dir, plan_path,
                                not_after=report.not_after.timestamp())
    return Prepared(plan=plan, state=state, cert_pem=cert_pem, key_pem=key_pem, dh_pem=dh_pem, fingerprint=fp,
                    plan_path=plan_path, context=ctx, runtime=runtime)


def _dh_pem(state: StateFiles) -> bytes:
    """The operator's own >= 2048-bit dhparams.pem if there is one, else RFC 7919 ffdhe2048."""
    try:
        pem = state.dh.read_bytes()
        if dh_bits(pem) >= MIN_DH_BITS:
            return pem
    except (OSError, ValueError):
        pass
    return FFDHE2048_PEM


def _context(plan: Plan, cert_pem: bytes, key_pem: bytes, dh_pem: bytes | None) -> ssl.SSLContext:
    """The real server context, so that OpenSSL's verdict comes before anything is installed."""
    return load_context(plan.policy.name, cert_pem, key_pem, dh_pem)
