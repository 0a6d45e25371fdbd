"""Test PKI: build the certificates and keys the certificate checks are tested with.

Everything is generated with `cryptography` at test time (no files checked in). Certificates
signed with SHA-1 or MD5, which cryptography refuses to produce, are made by signing a SHA-256
certificate's TBS again with the weak hash and swapping the algorithm identifier in the DER:
the result is a correctly signed certificate that OpenSSL verifies (see test_certs).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# AlgorithmIdentifier DER for sha*WithRSAEncryption (OID 1.2.840.113549.1.1.x, NULL parameters).
_RSA_ALG = {
    "sha256": bytes.fromhex("300d06092a864886f70d01010b0500"),
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
}


@cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """An RSA key, cached per (bits, n) so a test run generates each only once."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key(n: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issuer:
    key: object
    name: x509.Name


@dataclass
class CertSpec:
    cn: str = "pacs.test"
    key: object = None  # default: rsa_key()
    issuer: Issuer | None = None  # default: self-signed
    not_before: dt.datetime = field(default_factory=lambda: NOW - dt.timedelta(days=1))
    not_after: dt.datetime = field(default_factory=lambda: NOW + dt.timedelta(days=365))
    hash: str = "sha256"  # "sha256", "sha1" or "md5" (the last two RSA-signed only)
    sans: tuple[str, ...] = ("localhost", "127.0.0.1")
    ca: bool = False


def make_cert(spec: CertSpec | None = None, **kw) -> x509.Certificate:
    spec = spec or CertSpec(**kw)
    key = spec.key or rsa_key()
    issuer = spec.issuer or Issuer(key, name(spec.cn))
    b = (x509.CertificateBuilder()
         .subject_name(name(spec.cn)).issuer_name(issuer.name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(spec.not_before).not_valid_after(spec.not_after)
         .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True))
    if spec.sans:
        names = []
        for s in spec.sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = b.sign(issuer.key, hashes.SHA256())
    if spec.hash != "sha256":
        cert = _resign(cert, issuer.key, spec.hash)
    return cert


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _resign(cert: x509.Certificate, key: rsa.RSAPrivateKey, hash_name: str) -> x509.Certificate:
    """The same certificate, signed with a weak hash (RSA issuers only)."""
    assert isinstance(key, rsa.RSAPrivateKey), "weak-hash certificates need an RSA issuer key"
    old, new = _RSA_ALG["sha256"], _RSA_ALG[hash_name]
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(old) == 1
    tbs = tbs.replace(old, new)
    algo = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}[hash_name]
    sig = key.sign(tbs, padding.PKCS1v15(), algo)
    bitstring = b"\x03" + _der_len(len(sig) + 1) + b"\x00" + sig
    body = tbs + new + bitstring
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(body)) + body)


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key, passphrase: bytes | None = None, traditional: bool = False) -> bytes:
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def key_der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_pair(d: Path, cert_bytes: bytes, key_bytes: bytes,
               cert_name: str = "cert.pem", key_name: str = "key.pem") -> tuple[Path, Path]:
    c, k = d / cert_name, d / key_name
    c.write_bytes(cert_bytes)
    k.write_bytes(key_bytes)
    k.chmod(0o600)
    return c, k


def chain(n_intermediates: int = 1) -> tuple[list[x509.Certificate], object]:
    """(certificates leaf-first, the leaf's key): a root, n intermediates and a leaf, all RSA."""
    root_key = rsa_key(2048, 10)
    root = make_cert(cn="Test Root CA", key=root_key, ca=True, sans=())
    certs = [root]
    issuer = Issuer(root_key, root.subject)
    for i in range(n_intermediates):
        k = rsa_key(2048, 11 + i)
        c = make_cert(cn=f"Test Intermediate {i + 1}", key=k, issuer=issuer, ca=True, sans=())
        certs.append(c)
        issuer = Issuer(k, c.subject)
    leaf_key = rsa_key(2048, 20)
    certs.append(make_cert(cn="pacs.test", key=leaf_key, issuer=issuer))
    return certs[::-1], leaf_key
