"""The plan's certificate and key as they will be installed on the ADC (read and checked locally)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dicomtls.engine.plan import Plan


@dataclass
class LocalCert:
    """The plan's certificate as it will be installed. Never printed: key_pem is only sent to the ADC."""

    cert_file: str  # name in /nsconfig/ssl
    key_file: str
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)
    serial: int | None = None
    subject: str = ""
    not_after: str = ""

    @property
    def tag(self) -> str:
        """A short content tag for renewal file names (new names, never an overwrite)."""
        return hashlib.sha256(self.cert_pem or b"").hexdigest()[:8]


def normalise_pem(data: bytes) -> bytes:
    """What Windows editors do to PEM files (a BOM, CRLF) is undone before upload and comparison."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n")


def local_cert(plan: Plan, passphrase: str | None, *, check: bool = True) -> LocalCert:
    """Read and check the plan's PEM pair (engine.certs.check_pair) before touching the ADC."""
    from cryptography import x509

    cert_path, key_path = plan.cert_path, plan.key_path
    if check:
        from dicomtls.engine.certs import check_pair

        check_pair(cert_path, key_path, passphrase.encode() if passphrase else None,
                   policy=plan.cipher_policy.profile)
    cert_pem = normalise_pem(cert_path.read_bytes())
    key_pem = normalise_pem(key_path.read_bytes())
    leaf = x509.load_pem_x509_certificate(cert_pem)
    return LocalCert(cert_file=Path(plan.certificate.cert).name, key_file=Path(plan.certificate.key).name,
                     cert_pem=cert_pem, key_pem=key_pem, serial=leaf.serial_number,
                     subject=leaf.subject.rfc4514_string(), not_after=leaf.not_valid_after_utc.strftime("%Y-%m-%d"))


def offline_cert(plan: Plan) -> LocalCert:
    """For export: file names from the plan; the certificate's content if it is readable (it is public)."""
    out = LocalCert(cert_file=Path(plan.certificate.cert).name, key_file=Path(plan.certificate.key).name)
    try:
        out.cert_pem = normalise_pem(plan.cert_path.read_bytes())
    except OSError:
        pass
    return out
