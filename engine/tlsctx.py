"""The client-side TLS context for talking to a DICOM-TLS endpoint (the echo ladder and any probe).

Versions and cipher suites come from engine.ciphers, the one place they are spelled.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

from dicomtls.engine.ciphers import SSL_VERSIONS, get_policy
from dicomtls.engine.errors import UserError


def client_context(policy_name: str | None, cafile: str | Path | None = None,
                   insecure: bool = False) -> ssl.SSLContext:
    """A client context for `policy_name` (None: TLS 1.2+ with OpenSSL's default suites).

    Trust: `insecure` accepts any certificate (a rehearsal, or when the caller pins the leaf's
    fingerprint itself); `cafile` verifies the chain against that file only; with neither, the
    system's CA store is used (which rarely knows a DICOM peer's self-signed certificate).
    """
    if insecure and cafile:
        raise UserError("both a CA file and --insecure were given",
                        "use --cafile to verify the server's certificate, or --insecure to skip that, not both")
    cx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if policy_name is None:
        cx.minimum_version = ssl.TLSVersion.TLSv1_2
    else:
        policy = get_policy(policy_name)
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated; only the (warned) legacy policy uses them
            warnings.simplefilter("ignore", DeprecationWarning)
            cx.minimum_version = SSL_VERSIONS[policy.min_version]
            cx.maximum_version = SSL_VERSIONS[policy.max_version]
        ciphers = policy.openssl_cipher_string
        if SSL_VERSIONS[policy.min_version] < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 refuses TLS 1.0/1.1 above security level 0; a policy that allows them
            # must lower it or it would silently be TLS 1.2 only.
            ciphers += ":@SECLEVEL=0"
        if policy.tls12_suites:
            cx.set_ciphers(ciphers)
    # Butterfly's DICOM-TLS certificates are self-signed and, in Butterfly's words, used "only for
    # encryption/decryption, not for end-point trust" (docs/research/dicom-tls.md §6); peers are often
    # addressed by an IP that is not in the SAN. So we verify the chain (with --cafile) but never
    # require the host name to match; identity is pinned with --expect-cert instead.
    cx.check_hostname = False
    if insecure:
        cx.verify_mode = ssl.CERT_NONE
    elif cafile is not None:
        path = Path(cafile).expanduser()
        try:
            cx.load_verify_locations(cafile=str(path))
        except FileNotFoundError:
            raise UserError(f"no CA file at {path}", "give the PEM file of the CA (or the server's own "
                            "self-signed certificate) with --cafile") from None
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise UserError(f"cannot read CA certificates from {path}: {exc}",
                            "give a PEM file with one or more certificates (-----BEGIN CERTIFICATE-----)") from None
        cx.verify_mode = ssl.CERT_REQUIRED
    else:
        cx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        cx.verify_mode = ssl.CERT_REQUIRED
    return cx
