"""Certificate and key checks, and self-signed rehearsal pairs.

check_pair() reads the two PEM files a user was given (Butterfly Cloud's PACS configuration
screen hands out a certificate and its key) and either returns a PemReport or raises CertError
with a `.code` and a fix. Error codes:

  missing, unreadable, empty      the file itself
  der, not_pem, corrupt           the encoding (DER is recognised and a conversion is given)
  swapped, no_cert, no_key        the wrong kind of file in a slot
  encrypted_no_passphrase, bad_passphrase
  mismatch, chain_order           key vs certificate, and which certificate comes first
  expired, not_yet_valid          the validity window
  exists                          make_self_signed would overwrite a file

Warnings (PemReport.warnings) are things that work but deserve attention; notes are plain
information (a self-signed certificate is normal here: Butterfly uses it for encryption, not
identity). Key material and passphrases never appear in messages.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from pydantic import BaseModel, Field

from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.ciphers import POLICIES, Policy, get_policy
from dicomtls.engine.errors import UserError

EXPIRY_WARNING_DAYS = 30
MIN_RSA_BITS = 2048
WEAK_HASHES = {"sha1", "md5"}
BOM = b"\xef\xbb\xbf"

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)
_CERT_LABELS = {b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY",
               b"ENCRYPTED PRIVATE KEY"}
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}


class CertError(UserError):
    """A certificate/key problem the user can fix; `.code` names it for the wizard and --json."""

    def __init__(self, code: str, problem: str, fix: str, advice: Advice | None = None) -> None:
        super().__init__(problem, fix, advice=advice)
        self.code = code


class PemReport(BaseModel):
    cert_file: str = ""
    key_file: str = ""
    subject: str
    issuer: str
    sans: list[str] = Field(default_factory=list)
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int
    fingerprint_sha256: str
    key_type: str  # "RSA", "ECDSA", "Ed25519", ...
    key_bits: int
    curve: str | None = None
    signature_hash: str | None  # e.g. "sha256"; None for Ed25519/Ed448
    key_encrypted: bool = False
    self_signed: bool
    chain: list[str] = Field(default_factory=list)  # subjects, leaf first
    policy: str | None = None
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# --- small helpers -------------------------------------------------------------------------------

def fingerprint(cert_pem_or_der: bytes) -> str:
    """SHA-256 over the certificate's DER, as "AB:CD:..." (what browsers and NetScaler show)."""
    data = _normalise(cert_pem_or_der)
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(_first_cert_block(data))
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertError("not_pem", "the data is neither a PEM nor a DER certificate",
                        "give a certificate file (-----BEGIN CERTIFICATE-----)") from None
    return _colon_hex(cert.fingerprint(hashes.SHA256()))


def _first_cert_block(data: bytes) -> bytes:
    for m in _BLOCK.finditer(data):
        if m.group(1) in _CERT_LABELS:
            return m.group(0)
    raise CertError("no_cert", "the data holds no PEM certificate",
                    "give a file with a -----BEGIN CERTIFICATE----- block")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def _normalise(data: bytes) -> bytes:
    """Tolerate what Windows editors and mail gateways do to PEM files: a UTF-8 BOM and CRLF."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    if b"-----BEGIN" not in data:
        return data  # binary (DER): its bytes must stay as they are
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CertError("missing", f"the {what} file {path} does not exist",
                        f"check the path; the {what} file is one of the two files from Butterfly Cloud's "
                        "PACS configuration screen") from None
    except IsADirectoryError:
        raise CertError("unreadable", f"the {what} path {path} is a directory, not a file",
                        f"give the path of the {what} file itself") from None
    except OSError as exc:
        raise CertError("unreadable", f"cannot read the {what} file {path}: {exc.strerror or exc}",
                        f"check the file's permissions (ls -l {path}); run as a user that may read it") from None
    data = _normalise(data)
    if not data.strip():
        raise CertError("empty", f"the {what} file {path} is empty",
                        f"copy the {what} again from Butterfly Cloud's PACS configuration screen; "
                        "the download or copy-paste was lost")
    return data


def _blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(label, whole PEM block) for every block in the file, in order."""
    return [(m.group(1), m.group(0)) for m in _BLOCK.finditer(data)]


def _der_kind(data: bytes) -> str | None:
    """'cert' or 'key' when the bytes are DER (binary ASN.1) of that kind, else None."""
    if not data.startswith(b"\x30"):
        return None
    try:
        x509.load_der_x509_certificate(data)
        return "cert"
    except ValueError:
        pass
    try:
        serialization.load_der_private_key(data, None)
        return "key"
    except TypeError:  # encrypted DER key: it is a key all the same
        return "key"
    except (ValueError, UnsupportedAlgorithm):
        pass
    return "unknown"


def _not_pem(path: Path, what: str, data: bytes) -> CertError:
    kind = _der_kind(data)
    out = path.with_name(path.stem + ".pem") if path.suffix.lower() != ".pem" else path.with_name(path.stem + "-pem.pem")
    if kind == "cert":
        hint = " (it is a certificate: swap the two files)" if what == "key" else ""
        return CertError("der", f"the {what} file {path} is binary DER, not PEM{hint}",
                         f"convert it: openssl x509 -inform der -in {path} -out {out}, then give {out}")
    if kind == "key":
        hint = " (it is a private key: swap the two files)" if what == "certificate" else ""
        return CertError("der", f"the {what} file {path} is a binary DER private key, not PEM{hint}",
                         f"convert it: openssl pkey -inform der -in {path} -out {out} "
                         f"(keep {out} private: chmod 600 {out}), then give {out}")
    if kind == "unknown":
        return CertError("not_pem", f"the {what} file {path} is binary and not a DER certificate or key "
                         "(perhaps a .pfx/.p12 bundle)",
                         f"for a .pfx/.p12 bundle: openssl pkcs12 -in {path} -clcerts -nokeys -out cert.pem "
                         f"and openssl pkcs12 -in {path} -nocerts -nodes -out key.pem")
    return CertError("not_pem", f"the {what} file {path} has no PEM block (no -----BEGIN ...----- line)",
                     f"give the PEM {what} file as downloaded; it starts with -----BEGIN "
                     f"{'CERTIFICATE' if what == 'certificate' else 'PRIVATE KEY'}-----")


def _key_type(key: object) -> tuple[str, int, str | None]:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ECDSA", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return "DSA", key.key_size, None
    return type(key).__name__, 0, None


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = []
    for name in ext:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(f"URI:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            out.append(f"email:{name.value}")
        else:
            out.append(str(name.value))
    return out


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return True  # names match; the signature scheme is one we cannot verify (e.g. SHA-1 here)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _fmt_day(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


# --- the check -----------------------------------------------------------------------------------

def check_pair(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
               passphrase: bytes | None = None, policy: str | None = None,
               now: dt.datetime | None = None) -> PemReport:
    """Check that CERT and KEY are a usable PEM pair for a TLS server; raise CertError if not.

    In order: both files are PEM and hold what they should (_contents), every block decodes, the key
    belongs to the first certificate (_leaf_first), the leaf is valid now; then the warnings and notes."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    pol = get_policy(policy) if policy else None
    cert_blocks, key_blocks = _contents(cert_path, key_path)
    certs = _load_certs(cert_blocks, cert_path)
    keys: list[PrivateKeyTypes] = []
    encrypted = False
    for block in key_blocks:
        key, enc = _load_key(block, key_path, passphrase)
        keys.append(key)
        encrypted = encrypted or enc
    _leaf_first(certs, keys, cert_path, key_path)
    leaf = certs[0]
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now < not_before:
        raise CertError("not_yet_valid", f"the certificate is not valid yet: valid from {_fmt_day(not_before)}, "
                        f"and this machine's clock says {_fmt_day(now)}",
                        "check this machine's clock and time zone (date -u; timedatectl); if the clock is "
                        "right, wait until the start date or ask for a certificate valid from today")
    if now > not_after:
        raise CertError("expired", f"the certificate expired on {_fmt_day(not_after)}",
                        "get a new certificate-key pair from Butterfly Cloud's PACS configuration screen",
                        advice("cert.expired"))
    key_type, key_bits, curve = _key_type(leaf.public_key())
    self_signed = _self_signed(leaf)
    return PemReport(
        cert_file=str(cert_path), key_file=str(key_path),
        subject=_subject(leaf), issuer=leaf.issuer.rfc4514_string() or "(empty issuer)",
        sans=_sans(leaf), not_before=not_before, not_after=not_after, days_left=(not_after - now).days,
        fingerprint_sha256=_colon_hex(leaf.fingerprint(hashes.SHA256())),
        key_type=key_type, key_bits=key_bits, curve=curve,
        signature_hash=leaf.signature_hash_algorithm.name if leaf.signature_hash_algorithm else None,
        key_encrypted=encrypted, self_signed=self_signed, chain=[_subject(c) for c in certs],
        policy=pol.name if pol else None, warnings=_warnings(certs, key_type, key_bits, pol, now),
        notes=_notes(certs, cert_path, self_signed, encrypted),
    )


def _contents(cert_path: Path, key_path: Path) -> tuple[list[bytes], list[bytes]]:
    """The certificate blocks of CERT and the key blocks of KEY; CertError if either holds the wrong thing
    (not PEM, swapped, a CSR, a public key, nothing usable)."""
    cert_data, key_data = _read(cert_path, "certificate"), _read(key_path, "key")
    cert_blocks, key_blocks = _blocks(cert_data), _blocks(key_data)
    if not cert_blocks:
        raise _not_pem(cert_path, "certificate", cert_data)
    if not key_blocks:
        raise _not_pem(key_path, "key", key_data)
    certs_in_cert = [b for lbl, b in cert_blocks if lbl in _CERT_LABELS]
    keys_in_cert = [b for lbl, b in cert_blocks if lbl in _KEY_LABELS]
    certs_in_key = [b for lbl, b in key_blocks if lbl in _CERT_LABELS]
    keys_in_key = [b for lbl, b in key_blocks if lbl in _KEY_LABELS]
    if not certs_in_cert and keys_in_cert and certs_in_key and not keys_in_key:
        raise CertError("swapped", f"the two files are swapped: {cert_path} holds the private key and "
                        f"{key_path} holds the certificate",
                        "give them the other way round", advice("pair.swapped", cert=cert_path, key=key_path))
    if not certs_in_cert:
        raise _no_cert(cert_path, {lbl for lbl, _ in cert_blocks}, bool(keys_in_cert))
    if not keys_in_key:
        raise _no_key(key_path, {lbl for lbl, _ in key_blocks}, bool(certs_in_key))
    return certs_in_cert, keys_in_key


def _no_cert(cert_path: Path, labels: set[bytes], holds_a_key: bool) -> CertError:
    if labels & _CSR_LABELS:
        return CertError("no_cert", f"{cert_path} is a certificate signing request (CSR), not a certificate",
                         "give the signed certificate that came back for this request")
    found = "holds a private key, not a certificate" if holds_a_key else \
        f"holds no certificate (found: {', '.join(sorted(lbl.decode() for lbl in labels))})"
    return CertError("no_cert", f"{cert_path} {found}",
                     "give the certificate file (-----BEGIN CERTIFICATE-----)", advice("pair.give_cert"))


def _no_key(key_path: Path, labels: set[bytes], holds_a_cert: bool) -> CertError:
    if holds_a_cert:
        found = "holds a certificate, not a private key"
    elif any(b"PUBLIC KEY" in lbl for lbl in labels):
        found = "holds a public key; the server needs the private key"
    else:
        found = "holds no private key"
    return CertError("no_key", f"{key_path} {found}", "give the private key file (-----BEGIN PRIVATE KEY-----) "
                     "that came with the certificate", advice("pair.give_key"))


def _load_certs(blocks: list[bytes], cert_path: Path) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for i, block in enumerate(blocks, 1):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise CertError("corrupt", f"certificate {i} of {len(blocks)} in {cert_path} is damaged "
                            "(its base64 does not decode to a certificate)",
                            "copy the file again without editing it; copy-paste often loses or wraps lines") from None
    return certs


def _leaf_first(certs: list[x509.Certificate], keys: list[PrivateKeyTypes], cert_path: Path, key_path: Path) -> None:
    """The certificate that belongs to the key is the leaf (the server certificate), and it must come first."""
    key_spkis = {_spki(k.public_key()) for k in keys}
    leaf_index = next((i for i, c in enumerate(certs) if _spki(c.public_key()) in key_spkis), None)
    if leaf_index is None:
        ck, _, _ = _key_type(certs[0].public_key())
        kk, _, _ = _key_type(keys[0])
        detail = f" (the certificate has an {ck} key, the private key is {kk})" if ck != kk else ""
        which = "certificate" if len(certs) == 1 else f"any of the {len(certs)} certificates"
        raise CertError("mismatch", f"the private key in {key_path} does not belong to {which} in {cert_path}{detail}",
                        "use the key that was generated together with this certificate; download both files "
                        "again from the same place (Butterfly Cloud's PACS configuration screen)")
    if leaf_index != 0:
        order = "; ".join(f"{i}: {_subject(c)}" for i, c in enumerate(certs, 1))
        raise CertError("chain_order", f"{cert_path} holds {len(certs)} certificates ({order}); the one that "
                        f"matches the key is number {leaf_index + 1} ({_subject(certs[leaf_index])}), but the "
                        "server certificate must come first",
                        f"edit {cert_path} so that the block for {_subject(certs[leaf_index])} comes first, "
                        "followed by the certificate that issued it, and so on up")


def _warnings(certs: list[x509.Certificate], key_type: str, key_bits: int, pol: Policy | None,
              now: dt.datetime) -> list[str]:
    """What works today but will fail, or fails for some clients: expiry soon, a short key, a weak hash, a key
    the policy offers no TLS 1.2 suite for, a chain certificate expired or out of order."""
    leaf, out = certs[0], []
    days_left = (leaf.not_valid_after_utc - now).days
    if days_left < EXPIRY_WARNING_DAYS:
        out.append(f"the certificate expires in {days_left} day{'s' if days_left != 1 else ''} "
                   f"({_fmt_day(leaf.not_valid_after_utc)}); renew it before then, or connections will fail")
    if key_type == "RSA" and key_bits < MIN_RSA_BITS:
        out.append(f"the RSA key has only {key_bits} bits; {MIN_RSA_BITS} is the minimum that current "
                   "clients accept (OpenSSL 3 refuses smaller keys at its default security level)")
    for i, c in enumerate(certs):
        h = c.signature_hash_algorithm.name if c.signature_hash_algorithm else None
        if h in WEAK_HASHES and not (i > 0 and _self_signed(c)):  # a root's own signature is never checked
            who = "the certificate" if i == 0 else f"chain certificate {i + 1} ({_subject(c)})"
            out.append(f"{who} is signed with {h.upper()}, which is broken and rejected by current TLS "
                       "clients; ask for one signed with SHA-256")
    if pol is not None and not pol.key_type_ok(key_type):
        fits = [n for n, p in POLICIES.items() if p.key_type_ok(key_type)]
        remedy = (f"choose policy {' or '.join(fits)}, or use an {'/'.join(pol.key_types)} certificate" if fits
                  else f"use an {'/'.join(pol.key_types)} certificate")
        out.append(f"the certificate has an {key_type} key, but policy {pol.name} offers only "
                   f"{'/'.join(pol.key_types)} cipher suites for TLS 1.2: TLS 1.2 clients (Butterfly's "
                   f"connector) will fail with \"no shared cipher\"; {remedy}")
    return out + _chain_warnings(certs, now)


def _chain_warnings(certs: list[x509.Certificate], now: dt.datetime) -> list[str]:
    out = []
    for i, c in enumerate(certs[1:], 2):
        if c.not_valid_after_utc < now:
            out.append(f"chain certificate {i} ({_subject(c)}) expired on {_fmt_day(c.not_valid_after_utc)}; "
                       "clients that check the chain will reject it: ask for the current issuer certificate")
    for i in range(len(certs) - 1):
        if certs[i].issuer != certs[i + 1].subject:
            out.append(f"chain certificate {i + 2} ({_subject(certs[i + 1])}) did not issue certificate "
                       f"{i + 1}; clients that need the chain may reject it (order: leaf, its issuer, "
                       "that one's issuer, ...)")
    return out


def _notes(certs: list[x509.Certificate], cert_path: Path, self_signed: bool, encrypted: bool) -> list[str]:
    notes = []
    if self_signed:
        notes.append("the certificate is self-signed; that is normal for Butterfly Cloud's certificates, "
                     "which encrypt the link rather than prove identity")
    if len(certs) > 1:
        notes.append(f"{cert_path} holds {len(certs)} certificates; the first is the server certificate "
                     "(it matches the key)")
    if encrypted:
        notes.append("the private key is protected with a passphrase; a server that loads it needs the "
                     "passphrase too")
    return notes


def _load_key(block: bytes, key_path: Path, passphrase: bytes | None) -> tuple[PrivateKeyTypes, bool]:
    """Load one PEM private key; returns (key, was_encrypted). Never puts the passphrase in a message."""
    try:
        return serialization.load_pem_private_key(block, passphrase), passphrase is not None
    except TypeError as exc:
        if "not encrypted" in str(exc):  # a passphrase for a plain key: harmless, ignore it
            return _load_key(block, key_path, None)[0], False
        raise CertError("encrypted_no_passphrase", f"the private key in {key_path} is encrypted with a passphrase",
                        "give the key's passphrase", advice("key.passphrase_needed")) from None
    except ValueError as exc:
        # A wrong passphrase on a legacy (Proc-Type) key passes OpenSSL's padding check about 1 time
        # in 256 and then fails as unparseable data: with a passphrase for an encrypted key, any
        # failure most likely means the passphrase.
        encrypted = b"ENCRYPTED" in block
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower() or (encrypted and passphrase):
            raise CertError("bad_passphrase", f"the passphrase does not open the private key in {key_path}",
                            "check the passphrase (case, keyboard layout, a trailing newline in the variable) "
                            "and try again") from None
        raise CertError("corrupt", f"the private key in {key_path} is damaged or in a form that cannot be read",
                        "copy the key file again without editing it; copy-paste often loses or wraps lines") from None
    except UnsupportedAlgorithm:
        raise CertError("corrupt", f"the private key in {key_path} uses an algorithm this tool cannot read",
                        "use an RSA (2048 bits or more) or ECDSA P-256 key") from None
