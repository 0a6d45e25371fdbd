"""A PACS on several servers: the NetScaler backend makes a service group (docs/research/nitro.md §7).

Against the simulator over real HTTP: the whole procedure with a 2-member group, read back object by
object; the request budgets; the worklist addition reusing the group; members added, never removed;
conflicts (an extra member, a service/group name clash, a vserver bound elsewhere); export; status."""

from __future__ import annotations

import json

import pytest

from dicomtls.cli.phrasing import change_fix as cli_change
from dicomtls.cli.phrasing import fix_text as cli_fix
from dicomtls.engine.backends.base import Action
from dicomtls.engine.backends.netscaler.export import export
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan
from dicomtls.wizard.advice import change_fix as wizard_change

from .conftest import (
    MWL,
    PAIR,
    STORE,
    TcpListener,
    backend,
    check_tls_side,
    plan_text,
    reader,
    run_apply,
    unused_port,
    write_plan,
    writes_since,
)

CIPHERS, GROUP = "TLS-1.2-Only", "Qlink-DICOM"
MEMBERS = [("10.0.0.21", 104), ("10.0.0.22", 104)]
MEMBER_KIND = "servicegroup_servicegroupmember_binding"
# What a worklist addition must not write again: the pair, its files, the cipher group, the PACS group.
REUSED = {"nsfeature", "systemfile", "sslcertkey", "service", "servicegroup", MEMBER_KIND, "sslcipher",
          "sslcipher_sslciphersuite_binding"}


def group_plan(workdir, sim, name="plan.toml", **kw):
    return write_plan(workdir, sim, name, members=kw.pop("members", MEMBERS), **kw)


def check_group_state(sim, vservers=(STORE,), members=MEMBERS, policy="bcp195-nd") -> None:
    """Read the ADC back through NITRO, object by object."""
    with reader(sim) as ns:
        assert {"LB", "SSL"} <= set(ns.get("nsfeature")[0]["feature"])
        sg = ns.get("servicegroup", GROUP)[0]
        assert (sg["servicetype"], sg["monconnectionclose"]) == ("TCP", "RESET")
        rows = ns.get(MEMBER_KIND, GROUP)
        assert sorted((r["ip"], int(r["port"])) for r in rows) == sorted(members)
        for ip, _ in members:  # a member added by IP brings a server object named after it (§6)
            assert ns.get("server", ip)[0]["ipaddress"] == ip
        assert ns.get("service", GROUP, missing_ok=True) == []  # a group, not a service
        assert ns.get("sslcertkey", PAIR)[0]["status"] == "Valid"
        check_tls_side(ns, vservers=vservers, policy=policy, cipher_group=CIPHERS, bound_to=_bound)


def _bound(ns, vs_name: str) -> None:
    assert [b["servicegroupname"] for b in ns.get("lbvserver_servicegroup_binding", vs_name)] == [GROUP]
    assert ns.get("lbvserver_service_binding", vs_name) == []


# --- the procedure and its budgets ---------------------------------------------------------------------------

def test_group_procedure_then_state_object_by_object(sim, workdir):
    diff, result = run_apply(group_plan(workdir, sim))
    assert result.ok, result.error
    by_kind = {}
    for c in diff.changes:
        by_kind.setdefault(c.kind, []).append(c)
    assert [(c.name, c.action) for c in by_kind["servicegroup"]] == [(GROUP, Action.CREATE)]
    assert [(c.name, c.action) for c in by_kind[MEMBER_KIND]] == [
        (f"{GROUP} 10.0.0.21:104", Action.CREATE), (f"{GROUP} 10.0.0.22:104", Action.CREATE)]
    assert [(c.name, c.action) for c in by_kind["lbvserver_servicegroup_binding"]] == [
        (f"{STORE} -> {GROUP}", Action.CREATE)]
    assert "service" not in by_kind and "lbvserver_service_binding" not in by_kind
    assert result.requests <= 30 and result.requests == sim.state.requests
    assert result.writes == len([e for e in sim.log if e.write]) == 14
    # the group, its members and its vserver binding each in one request
    written = [(e.method, e.resource) for e in sim.log if e.write]
    for resource in ("servicegroup", MEMBER_KIND, "lbvserver_servicegroup_binding"):
        assert written.count(("POST", resource)) == 1
    check_group_state(sim)
    print(f"group first apply: {result.requests} requests, {result.writes} writes")


def test_group_second_apply_makes_no_writes(sim, workdir):
    plan = group_plan(workdir, sim)
    run_apply(plan)
    n = len(sim.log)
    diff, result = run_apply(plan)
    assert diff.is_noop and all(c.action is Action.UNCHANGED for c in diff.changes)
    assert {c.kind for c in diff.changes} >= {"servicegroup", MEMBER_KIND, "lbvserver_servicegroup_binding"}
    assert result.ok and result.writes == 0 and writes_since(sim, n) == []
    # 10 reads of the objects, plus the ADC's facts read first: release, HA role, SSL mode
    assert result.requests <= 13 and result.requests == len(sim.log) - n
    # the members came with the vservers' bindings: no separate member read when they agree with the plan
    assert MEMBER_KIND not in {e.resource for e in sim.log[n:]}
    print(f"group no-change re-run: {result.requests} requests, {result.writes} writes")


def test_group_worklist_addition_reuses_the_group(sim, workdir):
    run_apply(group_plan(workdir, sim))
    n = len(sim.log)
    diff, result = run_apply(group_plan(workdir, sim, "plan-mwl.toml", worklist=True))
    assert result.ok, result.error
    new = {c.kind + " " + c.name for c in diff.changes if c.writes}
    assert all(MWL in name or name == "nsconfig save" for name in new), new
    assert f"lbvserver_servicegroup_binding {MWL} -> {GROUP}" in new
    unchanged = {(c.kind, c.name) for c in diff.changes if c.action is Action.UNCHANGED}
    assert {("servicegroup", GROUP), (MEMBER_KIND, f"{GROUP} 10.0.0.21:104"),
            (MEMBER_KIND, f"{GROUP} 10.0.0.22:104"), ("sslcertkey", PAIR), ("sslcipher", CIPHERS)} <= unchanged
    written = writes_since(sim, n)
    assert not {r for _, r in written} & REUSED
    assert ("POST", "lbvserver_servicegroup_binding") in written
    check_group_state(sim, vservers=(STORE, MWL))
    assert result.requests <= 20
    print(f"group worklist addition: {result.requests} requests, {result.writes} writes")


@pytest.mark.parametrize("die_after", [4, 5, 9])  # the group, its members, the vserver binding
def test_group_killed_mid_apply_then_rerun_completes(sim, workdir, die_after):
    plan = group_plan(workdir, sim)
    sim.state.faults.die_after_writes = die_after
    _, result = run_apply(plan)
    assert not result.ok and result.not_done
    assert sim.wait_dead()
    sim.restart()
    _, result2 = run_apply(plan)
    assert result2.ok, result2.error
    assert len([e for e in sim.log if e.write]) == 14  # nothing done twice
    check_group_state(sim)
    assert run_apply(plan)[1].writes == 0


# --- reconcile, don't replay ---------------------------------------------------------------------------------

def test_missing_member_is_added_and_nothing_else_written(sim, workdir):
    plan = group_plan(workdir, sim)
    run_apply(plan)
    with reader(sim) as ns:
        ns.delete(MEMBER_KIND, GROUP, args={"ip": "10.0.0.22", "port": 104})
    n = len(sim.log)
    diff, result = run_apply(plan)
    assert result.ok, result.error
    assert [(c.kind, c.name) for c in diff.changes if c.writes] == [
        (MEMBER_KIND, f"{GROUP} 10.0.0.22:104"), ("nsconfig", "save")]
    assert next(c for c in diff.changes if c.writes).cli == [f"bind serviceGroup {GROUP} 10.0.0.22 104"]
    assert writes_since(sim, n) == [("POST", MEMBER_KIND), ("POST", "nsconfig")]
    check_group_state(sim)


def test_member_on_the_adc_not_in_the_plan_is_a_conflict(sim, workdir):
    plan = group_plan(workdir, sim)
    run_apply(plan)
    with reader(sim) as ns:
        ns.post(MEMBER_KIND, {MEMBER_KIND: {"servicegroupname": GROUP, "ip": "10.0.0.23", "port": 104}})
    n = len(sim.log)
    b = backend(plan)
    diff = b.diff()
    (c,) = diff.conflicts
    assert (c.kind, c.name) == (MEMBER_KIND, f"{GROUP} 10.0.0.23:104")
    assert "does not list" in c.summary
    assert "unbind serviceGroup Qlink-DICOM 10.0.0.23 104" in c.hint
    assert "members" in cli_change(c) and "10.0.0.23:104" in wizard_change(c)
    with pytest.raises(UserError) as info:
        b.apply(diff=diff)
    b.close()
    assert info.value.exit_code == 3
    assert writes_since(sim, n) == []
    assert ("10.0.0.23", 104) in {(m["ip"], m["port"]) for m in sim.state.sg_members[GROUP]}  # never removed


def _service_named_like_the_group(ns):
    ns.post("service", {"service": {"name": GROUP, "ip": "10.0.0.21", "servicetype": "TCP", "port": 104}})


def _group_named_like_the_service(ns):
    ns.post("servicegroup", {"servicegroup": {"servicegroupname": GROUP, "servicetype": "TCP"}})


@pytest.mark.parametrize("setup, members, kind, words", [
    (_service_named_like_the_group, MEMBERS, "servicegroup", "a service (not a service group) of that name exists"),
    (_group_named_like_the_service, None, "service", "a service group of that name exists"),
])
def test_service_and_group_of_one_name_is_a_conflict(sim, workdir, setup, members, kind, words):
    with reader(sim) as ns:
        setup(ns)
    n = len(sim.log)
    b = backend(write_plan(workdir, sim, members=members))
    diff = b.diff()
    b.close()
    assert [(c.kind, c.name) for c in diff.conflicts] == [(kind, GROUP)]
    assert words in diff.conflicts[0].summary and diff.conflicts[0].hint
    assert not [c for c in diff.changes if c.kind == MEMBER_KIND]  # no members planned into a service
    assert writes_since(sim, n) == []


def test_group_monitor_close_bit_is_updated_in_place(sim, workdir):
    with reader(sim) as ns:
        ns.post("servicegroup", {"servicegroup": {"servicegroupname": GROUP, "servicetype": "TCP"}})
        ns.post(MEMBER_KIND, {MEMBER_KIND: [{"servicegroupname": GROUP, "ip": ip, "port": p} for ip, p in MEMBERS]})
    n = len(sim.log)
    diff, result = run_apply(group_plan(workdir, sim))
    assert result.ok, result.error
    (c,) = [c for c in diff.changes if c.kind == "servicegroup"]
    assert c.action is Action.UPDATE and c.fields == {"monconnectionclose": ("NONE", "RESET")}
    assert c.cli == [f"set serviceGroup {GROUP} -monConnectionClose RESET"]
    assert all(m.action is Action.UNCHANGED for m in diff.changes if m.kind == MEMBER_KIND)
    assert ("PUT", "servicegroup") in writes_since(sim, n) and ("POST", MEMBER_KIND) not in writes_since(sim, n)
    check_group_state(sim)


def test_vserver_bound_to_another_service_is_a_conflict(sim, workdir):
    with reader(sim) as ns:
        ns.post("lbvserver", {"lbvserver": {"name": STORE, "servicetype": "SSL_TCP", "ipv46": "10.0.0.10",
                                            "port": 2761}})
        ns.post("service", {"service": {"name": "Old-PACS", "ip": "10.0.0.99", "servicetype": "TCP", "port": 104}})
        ns.post("lbvserver_service_binding", {"lbvserver_service_binding": {"name": STORE, "servicename": "Old-PACS"}})
    b = backend(group_plan(workdir, sim))
    diff = b.diff()
    b.close()
    (c,) = diff.conflicts
    assert (c.kind, c.name) == ("lbvserver_servicegroup_binding", f"{STORE} -> {GROUP}")
    assert "service Old-PACS" in c.summary and f"unbind lb vserver {STORE} Old-PACS" in c.hint


def test_member_given_by_host_name_is_a_clear_error(sim, workdir):
    b = backend(group_plan(workdir, sim, members=[("10.0.0.21", 104), ("pacs2.example.org", 104)]))
    with pytest.raises(UserError, match="by IP address") as info:
        b.diff()
    b.close()
    assert "members" in cli_fix(info.value)
    assert [e for e in sim.log if e.write] == []


# --- export and status ----------------------------------------------------------------------------------------

def test_export_has_the_group_its_members_and_the_binding(workdir):
    plan_path = workdir / "plan.toml"
    plan_path.write_text(plan_text("https://192.0.2.10", None, worklist=True, members=MEMBERS))
    plan = load_plan(plan_path)
    lines = export(plan, "netscaler-cli").splitlines()
    expected = [
        f"add serviceGroup {GROUP} TCP -monConnectionClose RESET",
        f"bind serviceGroup {GROUP} 10.0.0.21 104",
        f"bind serviceGroup {GROUP} 10.0.0.22 104",
        f"bind lb vserver {STORE} {GROUP}",
        f"bind lb vserver {MWL} {GROUP}",
    ]
    assert [e for e in expected if e not in lines] == []
    assert [lines.index(e) for e in expected] == sorted(lines.index(e) for e in expected)  # group before use
    assert not [x for x in lines if x.startswith("add service ")]
    requests = json.loads(export(plan, "nitro"))
    by_url = {r["url"]: r for r in requests}
    assert by_url["/nitro/v1/config/servicegroup"]["body"] == {"servicegroup": {
        "servicegroupname": GROUP, "servicetype": "TCP", "monconnectionclose": "RESET"}}
    assert by_url[f"/nitro/v1/config/{MEMBER_KIND}"]["body"] == {MEMBER_KIND: [
        {"servicegroupname": GROUP, "ip": ip, "port": p} for ip, p in MEMBERS]}
    assert by_url["/nitro/v1/config/lbvserver_servicegroup_binding"]["body"] == {"lbvserver_servicegroup_binding": [
        {"name": STORE, "servicegroupname": GROUP}, {"name": MWL, "servicegroupname": GROUP}]}
    assert "/nitro/v1/config/service" not in by_url


def test_status_shows_the_group_and_each_member(sim, workdir):
    up = TcpListener()
    down = unused_port()  # nothing listens there: that member is DOWN
    try:
        plan = group_plan(workdir, sim, members=[("127.0.0.1", up.port), ("127.0.0.1", down)])
        b = backend(plan)
        assert b.apply().ok
        items = {(i.kind, i.name): i for i in b.status().items}
        b.close()
        assert items[("servicegroup", GROUP)].state == "PARTIAL-UP"
        assert items[("servicegroup", GROUP)].detail["members_up"] == "1/2"
        assert items[("servicegroupmember", f"{GROUP} 127.0.0.1:{up.port}")].state == "UP"
        assert items[("servicegroupmember", f"{GROUP} 127.0.0.1:{down}")].state == "DOWN"
        assert items[("lbvserver", STORE)].state == "UP"  # one member up is enough
        assert items[("lbvserver", STORE)].detail["services_up"] == "1/2"
        assert ("service", GROUP) not in items
    finally:
        up.close()
    sim.state.monitor_interval = 0  # probe now: with no member left, the group and the vserver go DOWN
    b = backend(plan)
    items = {(i.kind, i.name): i.state for i in b.status().items}
    b.close()
    assert items[("servicegroup", GROUP)] == "DOWN" and items[("lbvserver", STORE)] == "DOWN"


def test_status_names_a_member_the_plan_does_not_list(sim, workdir):
    plan = group_plan(workdir, sim)
    run_apply(plan)
    with reader(sim) as ns:
        ns.post(MEMBER_KIND, {MEMBER_KIND: {"servicegroupname": GROUP, "ip": "10.0.0.23", "port": 104}})
    b = backend(plan)
    items = {(i.kind, i.name): i for i in b.status().items}
    b.close()
    extra = items[("servicegroupmember", f"{GROUP} 10.0.0.23:104")]
    assert extra.detail == {"note": "not in the plan"} and extra.state == "DOWN"
    assert items[("servicegroup", GROUP)].detail["members_up"] == "0/3"
