"""`dicomtls install-service PLAN [--print]`: a hardened systemd unit for the built-in terminator.

The unit runs `dicomtls serve` on the applied plan in the state dir (what `dicomtls apply` installs),
so `dicomtls apply` and `systemctl reload` both reach it. It may only write to the state and log
dirs, cannot gain privileges, and gets CAP_NET_BIND_SERVICE only when a listener uses a port below
1024. Without --print it installs the plan into the state dir, writes the unit file and records the
unit's name there (so `apply` starts it through systemctl), then says which commands to run.

The unit is Type=notify: `serve` tells systemd when its listeners are bound and when a reload is
done, and pings the watchdog, so a hung terminator is restarted. With --check-every it also writes
NAME-check.service (a oneshot `dicomtls check`) and NAME-check.timer that runs it, its status line
in the journal (`journalctl -u NAME-check`).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shutil
import sys
from pathlib import Path

from dicomtls.cli.commands.apply import backend_options
from dicomtls.cli.output import warn
from dicomtls.engine import paths
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, load_plan
from dicomtls.engine.terminator.config import StateFiles, state_dir_for

DEFAULT_UNIT_DIR = "/etc/systemd/system"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("install-service", help="write (or print) a hardened systemd unit for the built-in terminator",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the unit and change nothing")
    p.add_argument("--name", default="dicomtls", help="unit name (default: dicomtls)")
    p.add_argument("--user", help="account the service runs as (default: the current user)")
    p.add_argument("--unit-dir", default=DEFAULT_UNIT_DIR, help=f"where to write the unit (default {DEFAULT_UNIT_DIR})")
    p.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    p.add_argument("--check-every", metavar="SPAN",
                   help="also a systemd timer running `dicomtls check` this often (a systemd time span: 15min, 1h)")
    p.set_defaults(func=run)


def _executable() -> list[str]:
    """How systemd should start us: the venv's console script if present, else this Python with -m."""
    script = Path(sys.executable).parent / "dicomtls"
    if script.exists():
        return [str(script)]
    found = shutil.which("dicomtls")
    return [found] if found else [sys.executable, "-m", "dicomtls.cli.main"]


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
# serve sends READY=1 once its listeners are bound, RELOADING=1/READY=1 around a reload, STOPPING=1
# on drain (sd_notify(3)); it pings the watchdog every WatchdogSec/2 from its event loop.
Type=notify
NotifyAccess=main
WatchdogSec=30s
User={user}
# serve execs the terminator's own entry: the main PID stays the terminator (NotifyAccess=main).
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


_SPAN = re.compile(r"[1-9][0-9]*(s|sec|m|min|h|hr|d)")


def check_units(plan: Plan, user: str, every: str, name: str = "dicomtls",
                executable: list[str] | None = None) -> tuple[str, str]:
    """(NAME-check.service, NAME-check.timer): `dicomtls check` on the applied plan, every `every`."""
    if not _SPAN.fullmatch(every):
        raise UserError(f"--check-every {every!r} is not a time span systemd understands here",
                        "give a number and a unit, for example --check-every 15min (or 30s, 1h, 1d)")
    state = StateFiles(state_dir_for(plan)).dir.resolve()
    env = f"Environment=DICOMTLS_HOME={Path(os.environ['DICOMTLS_HOME']).resolve()}\n" \
        if os.environ.get("DICOMTLS_HOME") else ""
    exe = " ".join(executable or _executable())
    service = f"""[Unit]
Description=dicomtls check: the {name} endpoint through TLS, its certificate and its PACS
After={name}.service

[Service]
Type=oneshot
User={user}
# One monitoring-plugin status line on stdout, into the journal; exit 1 (WARNING) and 2 (CRITICAL)
# mark this unit failed, so `systemctl --failed` shows it too.
ExecStart={exe} check {state / 'plan.toml'}
SuccessExitStatus=0
Environment=PYTHONUNBUFFERED=1
{env}UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=-{paths.log_dir().resolve()}
PrivateTmp=yes
PrivateDevices=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
"""
    timer = f"""[Unit]
Description=dicomtls check every {every}

[Timer]
OnBootSec=2min
OnUnitActiveSec={every}
Unit={name}-check.service

[Install]
WantedBy=timers.target
"""
    return service, timer


def run(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", args.name):
        raise UserError(f"--name {args.name!r} is not a valid unit name", "use letters, digits, - _ . @ only")
    plan = load_plan(args.plan)
    if plan.backend != "builtin":
        raise UserError(f"{args.plan} has backend = {plan.backend!r}; the systemd unit runs the built-in terminator",
                        "set backend = \"builtin\" in the plan")
    user = args.user or getpass.getuser()
    text = unit_text(plan, user, plan_label=str(Path(args.plan).resolve()))
    extra: dict[str, str] = {}
    if args.check_every:
        service, timer = check_units(plan, user, args.check_every, args.name)
        extra = {f"{args.name}-check.service": service, f"{args.name}-check.timer": timer}
    if args.print_only:
        sys.stdout.write(text)
        for fname, body in extra.items():
            sys.stdout.write(f"\n# --- {fname}\n{body}")
        return 0
    if user == "root":
        warn("the unit runs as root (with its capabilities limited); pass --user ACCOUNT to run it unprivileged")
    from dicomtls.engine.terminator.install import prepare

    state = StateFiles(state_dir_for(plan))
    prepare(plan, backend_options(plan, args).passphrase).write()
    paths.log_dir().mkdir(parents=True, exist_ok=True)  # writable under ProtectSystem only if it exists
    unit = Path(args.unit_dir) / f"{args.name}.service"
    for path, body in [(unit, text)] + [(Path(args.unit_dir) / f, b) for f, b in extra.items()]:
        _write_unit(path, body)
    state.unit.write_text(f"{args.name}.service\n")
    print(f"Wrote {unit} (runs as {user}; serves {state.plan}).")
    for fname in extra:
        print(f"Wrote {Path(args.unit_dir) / fname}.")
    print("Next:")
    print("  systemctl daemon-reload")
    print(f"  systemctl enable --now {args.name}.service")
    if extra:
        print(f"  systemctl enable --now {args.name}-check.timer")
    print(f"Then `dicomtls apply {args.plan}` reloads it, and `journalctl -u {args.name}` shows its log.")
    return 0


def _write_unit(unit: Path, text: str) -> None:
    try:
        unit.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.with_name(unit.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(unit)
    except PermissionError:
        raise UserError(f"no permission to write {unit}",
                        "run with sudo, or use --print and put the unit in place yourself") from None
