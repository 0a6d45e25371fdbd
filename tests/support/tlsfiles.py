"""Test certificates made with cryptography: a CA, a server certificate it signed, and a second,
unrelated self-signed certificate (for "wrong expected certificate" cases).

Generated once per session into a temporary folder; keys are written 0600 like real ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_cert: Path  # self-signed, not the server's: pinning it must fail
    other_key: Path

    @property
    def server_fingerprint(self) -> str:
        return fingerprint_of(self.server_cert)


def fingerprint_of(pem_path: Path) -> str:
    der = x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _cert(subject_cn: str, key, issuer_cn: str, issuer_key, *, ca: bool, sans: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, srv_key, other_key = _key(), _key(), _key()
    ca = _cert("dicomtls test CA", ca_key, "dicomtls test CA", ca_key, ca=True, sans=False)
    srv = _cert("localhost", srv_key, "dicomtls test CA", ca_key, ca=False, sans=True)
    other = _cert("someone-else", other_key, "someone-else", other_key, ca=False, sans=True)
    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                     folder / "other.crt", folder / "other.key")
    pem = serialization.Encoding.PEM
    files.ca_cert.write_bytes(ca.public_bytes(pem))
    files.server_cert.write_bytes(srv.public_bytes(pem))
    files.other_cert.write_bytes(other.public_bytes(pem))
    _write_key(files.server_key, srv_key)
    _write_key(files.other_key, other_key)
    return files
