"""`dicomtls install-service PLAN [--print]`: a hardened systemd unit for the built-in terminator.

The unit runs `dicomtls serve` on the applied plan in the state dir (what `dicomtls apply` installs),
so `dicomtls apply` and `systemctl reload` both reach it. It may only write to the state and log
dirs, cannot gain privileges, and gets CAP_NET_BIND_SERVICE only when a listener uses a port below
1024. Without --print it installs the plan into the state dir, writes the unit file and records the
unit's name there (so `apply` starts it through systemctl), then says which commands to run.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shutil
import sys
from pathlib import Path

from cli.commands.apply import backend_options
from cli.output import warn
from engine import paths
from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.terminator.config import StateFiles, state_dir_for

DEFAULT_UNIT_DIR = "/etc/systemd/system"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("install-service", help="write (or print) a hardened systemd unit for the built-in terminator",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the unit and change nothing")
    p.add_argument("--name", default="dicomtls", help="unit name (default: dicomtls)")
    p.add_argument("--user", help="account the service runs as (default: the current user)")
    p.add_argument("--unit-dir", default=DEFAULT_UNIT_DIR, help=f"where to write the unit (default {DEFAULT_UNIT_DIR})")
    p.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    p.set_defaults(func=run)


def _executable() -> list[str]:
    """How systemd should start us: the venv's console script if present, else this Python with -m."""
    script = Path(sys.executable).parent / "dicomtls"
    if script.exists():
        return [str(script)]
    found = shutil.which("dicomtls")
    return [found] if found else [sys.executable, "-m", "cli.main"]


def unit_text(plan: Plan, user: str, executable: list[str] | None = None, plan_label: str = "") -> str:
    state = StateFiles(state_dir_for(plan)).dir.resolve()
    log_dir = paths.log_dir().resolve()
    low_ports = sorted({v.port for v in plan.virtual_server if v.port < 1024})
    caps = ("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE"
            if low_ports else "CapabilityBoundingSet=")
    why_caps = (f"# ports {', '.join(map(str, low_ports))} are below 1024: binding them is the only privilege granted"
                if low_ports else "# every port is above 1023: no capabilities at all")
    env = ""
    if os.environ.get("DICOMTLS_HOME"):
        env = f"Environment=DICOMTLS_HOME={Path(os.environ['DICOMTLS_HOME']).resolve()}\n"
    exe = " ".join(executable or _executable())
    return f"""[Unit]
Description=dicomtls built-in DICOM-TLS terminator{f' ({plan_label})' if plan_label else ''}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
ExecStart={exe} serve {state / 'plan.toml'}
# SIGHUP: reload the applied plan (new connections; live associations continue).
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM: stop accepting, drain live associations for up to drain_timeout.
KillSignal=SIGTERM
TimeoutStopSec={int(plan.builtin.drain_timeout) + 15}
Restart=on-failure
RestartSec=2s
Environment=PYTHONUNBUFFERED=1
{env}UMask=0077
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
# "-": the log dir may not exist yet; the state dir does once the plan is installed.
ReadWritePaths={state} -{log_dir}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
{why_caps}
{caps}

[Install]
WantedBy=multi-user.target
"""


def run(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", args.name):
        raise UserError(f"--name {args.name!r} is not a valid unit name", "use letters, digits, - _ . @ only")
    plan = load_plan(args.plan)
    if plan.backend != "builtin":
        raise UserError(f"{args.plan} has backend = {plan.backend!r}; the systemd unit runs the built-in terminator",
                        "set backend = \"builtin\" in the plan")
    user = args.user or getpass.getuser()
    text = unit_text(plan, user, plan_label=str(Path(args.plan).resolve()))
    if args.print_only:
        sys.stdout.write(text)
        return 0
    if user == "root":
        warn("the unit runs as root (with its capabilities limited); pass --user ACCOUNT to run it unprivileged")
    from engine.terminator.install import prepare

    state = StateFiles(state_dir_for(plan))
    prepare(plan, backend_options(plan, args).passphrase).write()
    paths.log_dir().mkdir(parents=True, exist_ok=True)  # writable under ProtectSystem only if it exists
    unit = Path(args.unit_dir) / f"{args.name}.service"
    try:
        unit.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.with_name(unit.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(unit)
    except PermissionError:
        raise UserError(f"no permission to write {unit}",
                        "run with sudo, or use --print and put the unit in place yourself") from None
    state.unit.write_text(f"{args.name}.service\n")
    print(f"Wrote {unit} (runs as {user}; serves {state.plan}).")
    print("Next:")
    print("  systemctl daemon-reload")
    print(f"  systemctl enable --now {args.name}.service")
    print(f"Then `dicomtls apply {args.plan}` reloads it, and `journalctl -u {args.name}` shows its log.")
    return 0
