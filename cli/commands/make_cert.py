"""`dicomtls make-cert`: a self-signed certificate-key pair for rehearsals (not for Butterfly)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dicomtls.cli.commands.check_pem import print_report
from dicomtls.engine.plan import DEFAULT_CERT_FILE, DEFAULT_KEY_FILE
from dicomtls.engine.rehearsal.pairs import make_self_signed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("make-cert", help="write a self-signed certificate and key for a rehearsal",
                       description="Write a self-signed certificate (0644) and its private key (0600) for "
                                   "rehearsing on loopback. In production use the pair from Butterfly Cloud.")
    p.add_argument("--out-dir", default=".", metavar="DIR", help="where to write the files (default: here)")
    p.add_argument("--cert", default=DEFAULT_CERT_FILE, metavar="NAME",
                   help=f"certificate file name (default {DEFAULT_CERT_FILE})")
    p.add_argument("--key", default=DEFAULT_KEY_FILE, metavar="NAME",
                   help=f"private key file name (default {DEFAULT_KEY_FILE})")
    p.add_argument("--cn", default="dicomtls-test", help="common name (default dicomtls-test)")
    p.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    p.add_argument("--san", action="append", metavar="NAME_OR_IP",
                   help="subject alternative name, repeatable: a host name or IP "
                        "(default: localhost and 127.0.0.1)")
    p.add_argument("--ecdsa", action="store_true", help="ECDSA P-256 instead of RSA 2048 "
                   "(needs policy bcp195-ex or bcp195-rfc8996)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    extra = {"sans": args.san} if args.san else {}  # else the engine's default SANs
    report = make_self_signed(out / args.cert, out / args.key, common_name=args.cn, days=args.days,
                              key_type="ECDSA" if args.ecdsa else "RSA", overwrite=args.force, **extra)
    print(f"wrote {out / args.cert} (certificate) and {out / args.key} (private key, mode 0600)")
    print_report(report)
    return 0
