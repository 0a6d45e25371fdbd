"""The server SSLContext, built from a cipher policy (engine/ciphers.py) and nothing else.

Choices, and why:
- Exactly the policy's versions (minimum = maximum for TLS-1.2-only policies) and TLS 1.2 suites;
  TLS 1.3 suites are OpenSSL's defaults, which is what the policies list (Python 3.11 cannot set them).
- No compression (CRIME), no renegotiation (OP_NO_RENEGOTIATION: a client-initiated renegotiation is
  a cheap CPU-exhaustion lever and DICOM never needs one), server cipher preference.
- A client's TCP FIN without close_notify counts as its end of data (OP_IGNORE_UNEXPECTED_EOF).
  Without it OpenSSL 3 answers with a fatal decode_error alert and the PACS's last replies could no
  longer reach the client. DICOM's own framing (PDU lengths, A-RELEASE) shows any truncation.
- No session tickets (OP_NO_TICKET, num_tickets = 0): ticket keys would live for the whole process
  lifetime and weaken forward secrecy, and Butterfly's few long associations gain nothing from them.
  Resumption still works through OpenSSL's in-memory session-ID cache.
- DHE suites need DH parameters. We use the RFC 7919 ffdhe2048 group, written once to the state dir
  as dhparams.pem, instead of generating our own: generating 2048-bit parameters with cryptography took
  17 s of CPU on the 2-core build machine (and varies widely), RFC 7919 §1 recommends the named groups
  over ad-hoc ones (clients can recognise them; no risk of weak generated primes), and Mozilla's server
  guidelines ship exactly this file. An operator who wants private parameters can put a >= 2048-bit
  dhparams.pem there themselves (openssl dhparam -out dhparams.pem 2048); it is kept.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

from dicomtls.engine.ciphers import SSL_VERSIONS, Policy
from dicomtls.engine.errors import UserError

# RFC 7919 Appendix A.1, as printed by `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048`.
FFDHE2048_PEM = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""
MIN_DH_BITS = 2048


def dh_bits(pem: bytes) -> int:
    from cryptography.hazmat.primitives.serialization import load_pem_parameters

    return load_pem_parameters(pem).parameter_numbers().p.bit_length()


def server_context(policy: Policy, cert_file: str | Path, key_file: str | Path,
                   password: bytes | str | None = None, dh_file: str | Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated; only the (warned) legacy policy has them
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = SSL_VERSIONS[policy.min_version]
        ctx.maximum_version = SSL_VERSIONS[policy.max_version]
    ciphers = policy.openssl_cipher_string
    if policy.min_version in ("1.0", "1.1"):
        # OpenSSL 3 refuses TLS < 1.2 at security level >= 1 (SHA-1 handshake signatures).
        ciphers += ":@SECLEVEL=0"
    ctx.set_ciphers(ciphers)
    ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
                    | ssl.OP_NO_TICKET | ssl.OP_SINGLE_DH_USE | ssl.OP_SINGLE_ECDH_USE
                    | ssl.OP_IGNORE_UNEXPECTED_EOF)
    ctx.num_tickets = 0
    if policy.needs_dh_params:
        if dh_file is None:
            raise UserError(f"cipher policy {policy.name} has DHE suites but no DH parameters were given",
                            "run `dicomtls apply` again; it writes dhparams.pem into the state dir")
        ctx.load_dh_params(str(dh_file))
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file), password=password)
    except ssl.SSLError as exc:
        raise UserError(f"OpenSSL refused the certificate/key pair {cert_file} / {key_file}: {exc.reason or exc}",
                        "check that the key belongs to the certificate and both are PEM "
                        "(`dicomtls check-pem` explains what is wrong)") from None
    _check_suites(ctx, policy)
    return ctx


def _check_suites(ctx: ssl.SSLContext, policy: Policy) -> None:
    """OpenSSL silently drops names it does not know: make sure every TLS 1.2 suite is there, and no other."""
    have = {c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    want = {s.openssl for s in policy.tls12_suites}
    if have != want:
        raise UserError(f"this OpenSSL cannot offer exactly the {policy.name} suites "
                        f"(missing {sorted(want - have)}, extra {sorted(have - want)})",
                        "use a system OpenSSL 3 with the default providers, or another cipher policy")
