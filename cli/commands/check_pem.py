"""`dicomtls check-pem CERT KEY`: check the certificate-key pair before touching anything."""

from __future__ import annotations

import argparse
import os

from dicomtls.cli.output import emit_json
from dicomtls.engine.certs import PemReport, check_pair
from dicomtls.engine.ciphers import DEFAULT_POLICY, POLICIES
from dicomtls.engine.errors import UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-pem", help="check a PEM certificate and its private key (e.g. from Butterfly Cloud)",
                       description="Check that CERT and KEY are a usable PEM pair for the TLS listener: "
                                   "subject, SANs, validity, fingerprint, key type, and that the key matches.")
    p.add_argument("cert", metavar="CERT", help="the certificate file (PEM), e.g. Butterfly_SCP_Cert.pem")
    p.add_argument("key", metavar="KEY", help="the private key file (PEM), e.g. Butterfly_SCP_key.pem")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="name of an environment variable holding the key's passphrase (never on the command line)")
    p.add_argument("--policy", metavar="NAME", default=DEFAULT_POLICY,
                   help=f"cipher policy the pair will serve, to check the key type ({', '.join(POLICIES)}; "
                        f"default {DEFAULT_POLICY})")
    p.add_argument("--json", action="store_true", help="print one JSON object: ok, report, error")
    p.set_defaults(func=run)


def passphrase_from_env(var: str | None) -> bytes | None:
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise UserError(f"environment variable {var} is not set",
                        f"set it without echoing the passphrase: read -rs {var} && export {var}")
    return value.encode()


def run(args: argparse.Namespace) -> int:
    # A CertError or UserError goes to cli.main: "error: ... / fix: ...", or with --json its one error object.
    report = check_pair(args.cert, args.key, passphrase=passphrase_from_env(args.passphrase_env), policy=args.policy)
    if args.json:
        emit_json({"ok": True, "report": report.model_dump(mode="json"), "error": None})
    else:
        print_report(report)
    return 0


def print_report(r: PemReport) -> None:
    """The human report: one fact a line, warnings last so they are what the eye lands on."""
    key = f"{r.key_type} {r.key_bits} bits" + (f" ({r.curve})" if r.curve else "")
    if r.key_encrypted:
        key += ", passphrase-protected"
    rows = [
        ("certificate", r.cert_file),
        ("subject", r.subject),
        ("issuer", r.issuer + (" (self-signed)" if r.self_signed else "")),
        ("SANs", ", ".join(r.sans) or "(none)"),
        ("valid from", f"{r.not_before:%Y-%m-%d %H:%M} UTC"),
        ("valid to", f"{r.not_after:%Y-%m-%d %H:%M} UTC ({r.days_left} days left)"),
        ("SHA-256", r.fingerprint_sha256),
        ("key", f"{key}, signature {r.signature_hash or 'n/a'}"),
        ("key file", f"{r.key_file}: matches the certificate (OK)"),
    ]
    if len(r.chain) > 1:
        rows.append(("chain", "; ".join(f"{i}. {subj}" for i, subj in enumerate(r.chain, 1)) + " (leaf first)"))
    if r.policy:
        rows.append(("policy", r.policy))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for n in r.notes:
        print(f"note: {n}")
    for w in r.warnings:
        print(f"warning: {w}")
    verdict = "usable" if not r.warnings else f"usable, with {len(r.warnings)} warning{'s' if len(r.warnings) > 1 else ''}"
    print(f"result: {verdict}")
