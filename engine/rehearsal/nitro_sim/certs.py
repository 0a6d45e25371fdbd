"""The simulator's management certificate (self-signed, as an ADC ships with)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import tempfile


def make_management_cert(common_name: str = "ns-sim.localhost") -> tuple[bytes, bytes]:
    """A self-signed management certificate (as an ADC ships with) and its key, in memory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NITRO simulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.IPAddress(ipaddress.ip_address("::1"))]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def pem_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate as AB:CD:... (the form `show ssl certKey` and browsers print)."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:  # ssl loads only from files; the key lives here for a moment, 0600
        cpath, kpath = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cpath, "wb") as fh:
            fh.write(cert_pem)
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        ctx.load_cert_chain(cpath, kpath)
    return ctx
