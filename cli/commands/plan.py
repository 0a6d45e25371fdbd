"""`dicomtls plan validate PLAN`: check a plan file and say what is wrong, key by key."""

from __future__ import annotations

import argparse

from dicomtls.cli.output import emit_json, warn
from dicomtls.engine.plan import load_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="work with plan files")
    psub = p.add_subparsers(dest="plan_command", metavar="ACTION", required=True)
    v = psub.add_parser("validate", help="validate a plan file (exit 0 when valid)")
    v.add_argument("plan", help="path of the plan TOML file")
    v.add_argument("--json", action="store_true", help="print the normalised plan and warnings as JSON")
    v.set_defaults(func=validate)


def validate(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    if args.json:
        emit_json({"valid": True, "plan": plan.model_dump(mode="json"), "warnings": plan.warnings})
        return 0
    for w in plan.warnings:
        warn(w)
    print(f"{args.plan}: valid ({len(plan.service)} service(s), {len(plan.virtual_server)} virtual server(s), "
          f"backend {plan.backend}, policy {plan.cipher_policy.profile})")
    return 0
