"""`dicomtls apply PLAN [--dry-run] [--yes] [--json]`: reconcile a backend with the plan."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from dicomtls.cli.output import emit_json, warn
from dicomtls.cli.phrasing import change_fix, fix_text
from dicomtls.engine.backends import BackendOptions, get_backend
from dicomtls.engine.backends.base import Action, ApplyResult, Diff, Progress, TargetFacts
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, load_plan

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.UNCHANGED: "=", Action.CONFLICT: "!"}


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure", action="store_true",
                   help="NetScaler: do NOT verify the management certificate (dangerous; prefer ca_file or fingerprint)")
    p.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="show the changes a plan needs on its backend, then make them")
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--dry-run", action="store_true", help="print the change list and change nothing")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before writing")
    p.add_argument("--replace-cert", action="store_true",
                   help="allow replacing the certificate of an existing cert-key pair (renewal)")
    p.add_argument("--json", action="store_true", help="print one JSON object (diff and result)")
    add_backend_flags(p)
    p.set_defaults(func=run)


def backend_options(plan: Plan, args: argparse.Namespace) -> BackendOptions:
    opts = BackendOptions(insecure=getattr(args, "insecure", False),
                          replace_cert=getattr(args, "replace_cert", False))
    if getattr(args, "passphrase_env", None):
        opts.passphrase = os.environ.get(args.passphrase_env)
        if opts.passphrase is None:
            raise UserError(f"${args.passphrase_env} is not set", f"export {args.passphrase_env}=... first")
    elif plan.certificate.passphrase_env:
        opts.passphrase = os.environ.get(plan.certificate.passphrase_env)
    if plan.backend == "netscaler" and plan.netscaler:
        opts.password = os.environ.get(plan.netscaler.password_env)
        if not opts.password:
            if not sys.stdin.isatty():
                raise UserError(f"no NetScaler password: ${plan.netscaler.password_env} is not set",
                                f"export {plan.netscaler.password_env}=... (or run in a terminal to be prompted)")
            opts.password = getpass.getpass(f"NetScaler password for {plan.netscaler.username}@{plan.netscaler.url}: ")
    if opts.insecure:
        warn("--insecure: the NetScaler's management certificate is NOT verified; anyone on the path can "
             "read the password. Use ca_file or fingerprint in the plan instead.")
    return opts


def describe_facts(f: TargetFacts) -> str:
    """The target's facts in the CLI's words (empty for a backend without them)."""
    parts = []
    if f.release:
        parts.append(f"release {f.release}")
    if f.ssl_mode:
        parts.append(f"Default SSL Profile enabled: protocols and ciphers in SSL profile {f.ssl_profile}"
                     if f.ssl_mode == "profile" else "Default SSL Profile off: protocols and ciphers per vserver")
    if f.ha_role == "secondary":
        parts.append(f"HA secondary node (the primary is {f.ha_primary or 'the other node'})")
    elif f.ha_role == "primary":
        parts.append(f"HA primary node (peer {f.ha_peer})")
    elif f.ha_role == "standalone":
        parts.append("standalone")
    if f.partition:
        parts.append(f"admin partition {f.partition}")
    return "; ".join(parts)


def describe_sync(result: ApplyResult) -> str:
    if not result.ha_sync:
        return ""
    if result.ha_sync == "in-sync":
        return "HA: the secondary node is in sync with the saved configuration (check: `show ha node` on it)"
    if result.ha_sync == "not-in-sync":
        return (f"HA: the secondary node is NOT in sync ({result.ha_sync_detail or 'no reason given'}); check "
                "`show ha node` on the primary, then `force ha sync` if it stays so")
    return "HA: the sync state could not be read; check `show ha node` on the primary"


def print_diff(diff: Diff) -> None:
    print(f"Changes on {diff.backend} at {diff.target}:")
    facts = describe_facts(diff.facts)
    if facts:
        print(f"  ({facts})")
    for c in diff.changes:
        line = f"  {SYMBOL[c.action]} {c.action.value:9} {c.kind} {c.name}"
        if c.summary:
            line += f": {c.summary}"
        print(line)
        for field, (old, new) in c.fields.items():
            print(f"        {field}: {old!r} -> {new!r}")
        if c.hint or c.advice:
            print(f"        fix: {change_fix(c)}")
    n = diff.counts()
    print(f"  {n['create']} to create, {n['update']} to update, {n['unchanged']} unchanged, {n['conflict']} conflict(s)")


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    for w in plan.warnings:
        warn(w)
    backend = get_backend(plan, backend_options(plan, args))
    try:
        diff = backend.diff(plan)
        if not args.json:
            print_diff(diff)
        if diff.conflicts:
            _not_applied(args, diff)
            raise UserError(f"{len(diff.conflicts)} conflict(s) on the backend; nothing was changed",
                            "resolve each conflict shown above (or use --replace-cert for a renewal), then run again",
                            exit_code=3)
        if args.dry_run or diff.is_noop:
            _not_applied(args, diff, "Nothing to change: the backend already matches the plan." if diff.is_noop else "")
            return 0
        if not args.yes and not _confirmed():
            _not_applied(args, diff, "Nothing changed.")
            return 1

        def progress(p: Progress) -> None:
            if not args.json and p.state in ("done", "failed", "info"):
                print(f"  [{p.state}] {p.step}{': ' + p.message if p.message else ''}")

        result = backend.apply(plan, diff, progress)
        _report(args, diff, result)
        return 0 if result.ok else 4
    finally:
        backend.close()


def _not_applied(args: argparse.Namespace, diff: Diff, said: str = "") -> None:
    """Nothing is written: the one JSON object says so, or the line `said` does."""
    if args.json:
        emit_json({"diff": diff.model_dump(mode="json"), "result": None, "applied": False})
    elif said:
        print(said)


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        raise UserError("refusing to write without confirmation", "add --yes, or run in a terminal")
    # The question goes to stderr, so that with --json stdout holds the one object only.
    print("Apply these changes? [y/N] ", end="", file=sys.stderr, flush=True)
    return input().strip().lower() in ("y", "yes")


def _report(args: argparse.Namespace, diff: Diff, result: ApplyResult) -> None:
    if args.json:
        emit_json({"diff": diff.model_dump(mode="json"), "result": result.model_dump(mode="json"),
                   "applied": result.ok})
        return
    print(f"{'Applied' if result.ok else 'FAILED'}: {len(result.done)} step(s) done, "
          f"{len(result.not_done)} not done; {result.requests} request(s), {result.writes} write(s)")
    if describe_sync(result):
        print(describe_sync(result))
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        if fix_text(result):
            print(f"  fix: {fix_text(result)}", file=sys.stderr)
        for s in result.not_done:
            print(f"  not done: {s}", file=sys.stderr)
