"""`dicomtls status PLAN`: what the backend reports now (listeners/vservers, health, counters)."""

from __future__ import annotations

import argparse

from dicomtls.cli.commands.apply import add_backend_flags, backend_options, describe_facts
from dicomtls.cli.output import emit_json
from dicomtls.engine.backends import get_backend
from dicomtls.engine.plan import load_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the backend's live state for a plan")
    p.add_argument("plan", help="path of the plan TOML file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    backend = get_backend(plan, backend_options(plan, args))
    try:
        st = backend.status(plan)
    finally:
        backend.close()
    if args.json:
        emit_json(st)
        return 0
    print(f"{st.backend} at {st.target}:" + (f" ({describe_facts(st.facts)})" if describe_facts(st.facts) else ""))
    for item in st.items:
        extra = ", ".join(f"{k}={v}" for k, v in item.detail.items())
        print(f"  {item.kind:12} {item.name:32} {item.state}{'  ' + extra if extra else ''}")
    return 0
