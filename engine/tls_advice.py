"""Why a TLS handshake failed, in the ladder's terms: (detail, cause, next action) for one exception.

Kept apart from the ladder (engine.verify) so that each stays a readable size; the advice is a code
(engine.advice) that each face phrases in its own words.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.ciphers import POLICIES


def tls_advice(exc: BaseException, policy_name: str | None, cafile: str | Path | None,
               host: str, port: int, timeout: float) -> tuple[str, str, str | Advice]:
    """(detail, cause, next_action) for a failed handshake."""
    versions = ("TLS " + "/".join(POLICIES[policy_name].versions)) if policy_name else "TLS 1.2 or later"
    policy_label = f"policy {policy_name}" if policy_name else "the default client settings (TLS 1.2+)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = f"certificate verify failed: {exc.verify_message}"
        if cafile:
            return (detail, f"the server's certificate is not signed by the CA in {cafile} ({exc.verify_message})",
                    advice("tls.untrusted_by_ca"))
        return (detail, f"the server's certificate is not trusted by this machine ({exc.verify_message}); "
                "DICOM-TLS certificates are usually self-signed", advice("tls.untrusted"))
    if isinstance(exc, TimeoutError | socket.timeout):
        return (f"no TLS answer within {timeout:g} s",
                "the port accepted TCP but did not answer the TLS handshake: it probably speaks plain DICOM "
                "(which waits for an A-ASSOCIATE), or a TLS server is stuck on another idle connection",
                advice("tls.silent_port", host=host, port=port))
    reason = getattr(exc, "reason", None) or ""
    detail = f"TLS error: {exc}"
    if reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"):
        return (detail, f"the server refuses {versions} ({policy_label}): it speaks other TLS versions",
                advice("tls.protocol_version"))
    if reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
                  "TLSV1_ALERT_INSUFFICIENT_SECURITY"):
        return (detail, f"the server shares no cipher suite with {policy_label} (it may only offer old "
                "versions or suites, e.g. TLS 1.0/1.1 or CBC), or it insists on a client certificate",
                advice("tls.no_shared_cipher"))
    if reason in ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                  "TLSV1_ALERT_ACCESS_DENIED"):
        return (detail, "the server requires a client certificate (mutual TLS) and this echo sends none",
                "relax the server's client-certificate requirement for this test, or test with DCMTK "
                "`echoscu +tls KEY CERT` using the client certificate it expects")
    if reason == "WRONG_VERSION_NUMBER" or reason == "HTTP_REQUEST" or reason == "RECORD_LAYER_FAILURE":
        return (detail, f"{host}:{port} answered, but not with TLS: it speaks plain DICOM (or another protocol)",
                advice("tls.not_tls"))
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionResetError | BrokenPipeError) \
            or reason == "UNEXPECTED_EOF_WHILE_READING":
        return (f"the connection closed during the TLS handshake ({exc})",
                f"{host}:{port} hung up on the TLS handshake: it probably speaks plain DICOM, or a terminator "
                "refused this client (address not allowed, or a client certificate required)",
                advice("tls.hung_up"))
    return (detail, "the TLS handshake failed", "check the server's TLS log for the reason it gives")
