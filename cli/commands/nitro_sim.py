"""`dicomtls nitro-sim [--port P] [--http] [--default-ssl-profile] [--release X.Y] [--ha NODE] [--partition P]`:
a NITRO simulator on loopback, to rehearse the NetScaler path on the kinds of ADC hospitals run.

Runs in the foreground until Ctrl-C (or SIGTERM). Prints the URL, the user name, the password and
the management certificate's SHA-256 fingerprint: everything a plan's [netscaler] table needs.
The password is a rehearsal credential for this simulator only.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading

from dicomtls.engine.errors import UserError

RELEASES = ("11.1", "12.0", "12.1", "13.0", "13.1", "14.1")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("nitro-sim", help="serve a NITRO simulator on loopback (rehearse the NetScaler path)")
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1 or ::1)")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument("--username", default="nsroot", help="the simulated ADC's user (default nsroot)")
    p.add_argument("--password", help="its password (default: a random one, printed)")
    p.add_argument("--default-ssl-profile", "--default-profile", dest="default_profile", action="store_true",
                   help="start with the Default SSL Profile enabled (the enhanced SSL profile mode)")
    p.add_argument("--release", "--firmware", dest="release", default="14.1", choices=RELEASES,
                   help="release to imitate: 12.0 has no tls13; 13.1 lists cipher groups only as suite bindings; "
                        "11.1 is older than supported (default 14.1)")
    p.add_argument("--ha", choices=("primary", "secondary"),
                   help="be one node of an HA pair (a secondary refuses writes with NITRO 368)")
    p.add_argument("--partition", metavar="NAME", help="have an admin partition of that name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dicomtls.engine.rehearsal.nitro_sim import start_in_thread

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port", "give 1-65535, or leave it out for a free one")
    password = args.password or secrets.token_urlsafe(12)
    try:
        handle = start_in_thread(port=args.port, tls=not args.http, host=args.host, username=args.username,
                                 password=password, default_profile=args.default_profile, firmware=args.release,
                                 ha=args.ha, partition=args.partition)
    except ValueError as exc:
        raise UserError(str(exc), "use --host 127.0.0.1 or --host ::1") from None
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                        "choose another --port, or leave it out for a free one") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"NITRO simulator listening on {handle.url}")
    print(f"  username: {args.username}")
    print(f"  password: {password}")
    if handle.fingerprint:
        print(f"  certificate SHA-256 fingerprint: {handle.fingerprint}")
    print("  for the plan's [netscaler] table:")
    print(f'    url = "{handle.url}"')
    print(f'    username = "{args.username}"')
    if handle.fingerprint:
        print(f'    fingerprint = "sha256:{handle.fingerprint}"')
    if args.partition:
        print(f'    partition = "{args.partition}"')
    print("  and in the shell: export DICOMTLS_NITRO_PASSWORD=<the password above>")
    print(f"  release {args.release}, Default SSL Profile {'enabled' if args.default_profile else 'off'}"
          + (f", HA {args.ha}" if args.ha else ", standalone"))
    print(f"  a connection from outside to a vserver: curl -k -X POST {handle.url}/nitro-sim/connect/VSERVER")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    print("stopped", file=sys.stderr)
    return 0
