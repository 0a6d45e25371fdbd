"""Rehearsal certificate-key pairs: a self-signed server pair for a demo or a test (`dicomtls make-cert`, the
wizard's ctrl+g, the demo). Never for production: Butterfly Cloud generates the real pair."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dicomtls.engine import paths
from dicomtls.engine.advice import advice
from dicomtls.engine.certs import CertError, PemReport, check_pair
from dicomtls.engine.errors import UserError


def _general_name(san: str) -> x509.GeneralName:
    value = san.strip()
    kind = None
    if ":" in value and value.split(":", 1)[0].upper() in ("DNS", "IP"):
        kind, value = value.split(":", 1)
        kind = kind.upper()
    if kind != "DNS":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            if kind == "IP":
                raise UserError(f"SAN {san!r} is not an IP address", "write IP:127.0.0.1 or IP:::1") from None
    if not value or not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9])?", value):
        raise UserError(f"SAN {san!r} is not a host name or IP address",
                        "give names like localhost, pacs.example.org or 127.0.0.1")
    return x509.DNSName(value)




_CURVES: dict[int, type[ec.EllipticCurve]] = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}


def make_self_signed(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
                     common_name: str = "dicomtls-test", days: int = 365,
                     sans: Sequence[str] | Iterable[str] = ("localhost", "127.0.0.1"),
                     key_type: str = "RSA", bits: int = 2048, *, overwrite: bool = False) -> PemReport:
    """Write a self-signed server certificate (0644) and its unencrypted key (0600) for rehearsals."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    if cert_path.resolve() == key_path.resolve():
        raise UserError("the certificate and key paths are the same file", "give two different file names")
    if not overwrite:
        existing = [str(p) for p in (cert_path, key_path) if p.exists()]
        if existing:
            raise CertError("exists", f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                            "not overwriting", "choose other file names, or allow replacing them", advice("files.exist"))
    if days < 1:
        raise UserError(f"days must be at least 1 (got {days})", "give a validity of at least one day",
                        advice=advice("cert.days"))
    names = [_general_name(s) for s in ([sans] if isinstance(sans, str) else sans)]

    kt = key_type.upper()
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kt == "RSA":
        if bits < 2048:
            raise UserError(f"an RSA key of {bits} bits is too small", "use 2048 bits or more")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        usage = x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False,
                              crl_sign=False, encipher_only=False, decipher_only=False)
    elif kt in ("ECDSA", "EC"):
        curve = _CURVES.get(bits, ec.SECP256R1)  # the RSA default of 2048 means "the usual": P-256
        key = ec.generate_private_key(curve())
        usage = x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False,
                              crl_sign=False, encipher_only=False, decipher_only=False)
    else:
        raise UserError(f"unknown key type {key_type!r}", "use RSA (the default) or ECDSA")

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew between hosts
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                              critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())

    paths.write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    paths.write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return check_pair(cert_path, key_path)
