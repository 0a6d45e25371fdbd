"""The NetScaler backend against the simulator: the seed procedure, idempotence, the worklist addition,
conflicts, failures part-way and their completion, renewal, status; request budgets asserted."""

from __future__ import annotations

import base64
import shutil

import pytest
from cryptography import x509

from dicomtls.cli.phrasing import change_fix as cli_change
from dicomtls.engine.backends.base import Action
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan

from .conftest import (
    CERT_NAME,
    KEY_NAME,
    MWL,
    PAIR,
    STORE,
    TcpListener,
    backend,
    check_tls_side,
    reader,
    run_apply,
    write_plan,
    writes_since,
)

GROUP, SERVICE = "TLS-1.2-Only", "Qlink-DICOM"
CONFIG_RESOURCES = {"nsfeature", "systemfile", "sslcertkey", "service", "sslcipher", "sslcipher_sslciphersuite_binding"}


def serial(path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def check_seed_state(sim, workdir, vservers=(STORE,), policy="bcp195-nd") -> None:
    """Read the ADC back through NITRO, object by object, and compare with the plan."""
    with reader(sim) as ns:
        assert {"LB", "SSL"} <= set(ns.get("nsfeature")[0]["feature"])
        for name in (CERT_NAME, KEY_NAME):
            row = ns.get("systemfile", name, args={"filelocation": "/nsconfig/ssl"})[0]
            assert base64.b64decode(row["filecontent"]) == (workdir / name).read_bytes()
        ck = ns.get("sslcertkey", PAIR)[0]
        assert (ck["cert"], ck["key"]) == (CERT_NAME, KEY_NAME)
        assert int(ck["serial"], 16) == serial(workdir / CERT_NAME)
        svc = ns.get("service", SERVICE)[0]
        assert (svc["ipaddress"], int(svc["port"]), svc["servicetype"], svc["monconnectionclose"]) == (
            "10.0.0.20", 104, "TCP", "RESET")
        check_tls_side(ns, vservers=vservers, policy=policy, cipher_group=GROUP, bound_to=_bound)


def _bound(ns, vs_name: str) -> None:
    assert [b["servicename"] for b in ns.get("lbvserver_service_binding", vs_name)] == [SERVICE]


def test_seed_procedure_then_state_object_by_object(sim, workdir):
    plan = write_plan(workdir, sim)
    diff, result = run_apply(plan)
    assert result.ok, result.error
    assert {c.action for c in diff.changes} == {Action.CREATE, Action.UPDATE}
    assert result.not_done == [] and len(result.done) == len([c for c in diff.changes if c.writes])
    # budget: the seed's first apply in at most 30 requests; the client's count is the server's count
    assert result.requests <= 30
    assert result.requests == sim.state.requests
    assert result.writes == len([e for e in sim.log if e.write])
    check_seed_state(sim, workdir)
    assert sim.state.saves == 1
    print(f"first apply: {result.requests} requests, {result.writes} writes, diff {diff.requests} reads")


def test_second_apply_makes_no_writes(sim, workdir):
    plan = write_plan(workdir, sim)
    run_apply(plan)
    n = len(sim.log)
    diff, result = run_apply(plan)
    assert diff.is_noop and all(c.action is Action.UNCHANGED for c in diff.changes)
    assert result.ok and result.writes == 0 and result.done == []
    assert writes_since(sim, n) == []
    # 10 reads of the objects, plus the ADC's facts read first: release, HA role, SSL mode
    assert result.requests <= 13 and result.requests == len(sim.log) - n
    print(f"no-change re-run: {result.requests} requests, {result.writes} writes")


def test_worklist_addition_writes_only_what_is_new(sim, workdir):
    run_apply(write_plan(workdir, sim))
    n = len(sim.log)
    diff, result = run_apply(write_plan(workdir, sim, "plan-mwl.toml", worklist=True))
    assert result.ok, result.error
    new = {c.kind + " " + c.name for c in diff.changes if c.writes}
    assert all(MWL in name or name == "nsconfig save" for name in new), new
    unchanged = {(c.kind, c.name) for c in diff.changes if c.action is Action.UNCHANGED}
    assert {("sslcertkey", PAIR), ("sslcipher", GROUP), ("service", SERVICE), ("lbvserver", STORE)} <= unchanged
    written = writes_since(sim, n)
    assert not {r for _, r in written} & CONFIG_RESOURCES  # the pair, files, group, service are reused
    assert ("POST", "lbvserver") in written and ("POST", "nsconfig") in written
    check_seed_state(sim, workdir, vservers=(STORE, MWL))
    assert result.requests <= 23  # 20 + the ADC facts read first (release, HA role, SSL mode)
    print(f"worklist addition: {result.requests} requests, {result.writes} writes")


def test_worklist_with_its_own_service_reuses_pair_and_group(sim, workdir):
    run_apply(write_plan(workdir, sim))
    n = len(sim.log)
    _, result = run_apply(write_plan(workdir, sim, "p2.toml", worklist=True, extra_service=True,
                                     worklist_service="Qlink-MWL"))
    assert result.ok
    written = {r for _, r in writes_since(sim, n)}
    assert "service" in written and not written & (CONFIG_RESOURCES - {"service"})
    assert sim.state.services["Qlink-MWL"]["port"] == 105
    assert [b["servicename"] for b in sim.state.lb_bindings if b["name"] == MWL] == ["Qlink-MWL"]
    assert result.requests <= 23  # 20 + the ADC facts read first (release, HA role, SSL mode)


def test_diff_alone_writes_nothing(sim, workdir):
    b = backend(write_plan(workdir, sim))
    diff = b.diff()
    b.close()
    assert diff.writes and diff.requests <= 12  # 9 + release, HA role, SSL mode
    assert [e for e in sim.log if e.write] == []
    assert {c.kind for c in diff.changes} >= {"nsfeature", "systemfile", "sslcertkey", "service", "sslcipher",
                                              "lbvserver", "lbvserver_service_binding",
                                              "sslvserver_sslcertkey_binding", "sslvserver_sslcipher_binding",
                                              "sslvserver", "nsconfig"}
    assert all(c.cli for c in diff.changes if c.writes)


# --- conflicts: reported with the object, nothing written -------------------------------------------------

def _setup_other_pair(ns, other_pem_pair):
    for name, path in (("other.pem", other_pem_pair[0]), ("other.key", other_pem_pair[1])):
        ns.post("systemfile", {"systemfile": {"filename": name, "filelocation": "/nsconfig/ssl",
                                              "filecontent": base64.b64encode(path.read_bytes()).decode()}})
    ns.post("sslcertkey", {"sslcertkey": {"certkey": PAIR, "cert": "other.pem", "key": "other.key"}})


def _setup_other_file(ns, other_pem_pair):
    ns.post("systemfile", {"systemfile": {"filename": CERT_NAME, "filelocation": "/nsconfig/ssl",
                                          "filecontent": base64.b64encode(other_pem_pair[0].read_bytes()).decode()}})


def _setup_taken_ip_port(ns, _):
    ns.post("lbvserver", {"lbvserver": {"name": "Legacy-VIP", "servicetype": "TCP", "ipv46": "10.0.0.10",
                                        "port": 2761}})


def _setup_service_elsewhere(ns, _):
    ns.post("service", {"service": {"name": SERVICE, "ip": "10.0.0.99", "servicetype": "TCP", "port": 104}})


@pytest.mark.parametrize("setup, kind, name, words", [
    (_setup_other_pair, "sslcertkey", PAIR, "another certificate"),
    (_setup_other_file, "systemfile", f"/nsconfig/ssl/{CERT_NAME}", "other content"),
    (_setup_taken_ip_port, "lbvserver", STORE, "10.0.0.10:2761 is taken by lbvserver 'Legacy-VIP'"),
    (_setup_service_elsewhere, "service", SERVICE, "points elsewhere: TCP 10.0.0.99:104"),
])
def test_conflicts_are_reported_never_overwritten(sim, workdir, other_pem_pair, setup, kind, name, words):
    with reader(sim) as ns:
        setup(ns, other_pem_pair)
    n = len(sim.log)
    b = backend(write_plan(workdir, sim))
    diff = b.diff()
    conflicts = diff.conflicts
    assert [(c.kind, c.name) for c in conflicts] == [(kind, name)]
    assert words in conflicts[0].summary and cli_change(conflicts[0])
    with pytest.raises(UserError) as info:
        b.apply(diff=diff)
    b.close()
    assert info.value.exit_code == 3 and "nothing was changed" in info.value.problem
    assert writes_since(sim, n) == []


# --- failures part-way and the run that completes them ------------------------------------------------------

def test_expired_session_mid_run_is_renewed_transparently(sim, workdir):
    sim.state.faults.expire_sessions_at_request = 12  # in the middle of the writes
    _, result = run_apply(write_plan(workdir, sim))
    assert result.ok, result.error
    assert [e.errorcode for e in sim.log].count(444) == 1
    assert len(sim.state.logins()) == 2
    check_seed_state(sim, workdir)


@pytest.mark.parametrize("die_after", [1, 3, 4, 9, 12])
def test_killed_mid_apply_then_rerun_completes(sim, workdir, die_after):
    plan = write_plan(workdir, sim)
    sim.state.faults.die_after_writes = die_after
    diff, result = run_apply(plan)
    assert not result.ok
    assert "broke" in result.error or "cannot reach" in result.error
    assert "run again" in result.fix
    planned = [f"{c.kind} {c.name}: {c.action.value}" for c in diff.changes if c.writes]
    assert result.done + result.not_done == planned  # every step accounted for, in order
    assert result.not_done  # the step in flight and the rest
    assert sim.wait_dead()
    sim.restart()
    n = len(sim.log)
    diff2, result2 = run_apply(plan)
    assert result2.ok, result2.error
    # the re-run redoes nothing that was done, including the write that was made but never answered
    redone = {c.kind + " " + c.name for c in diff2.changes if c.writes} - {"nsconfig save"}
    assert not redone & {d.rsplit(":", 1)[0] for d in result.done}
    # so both runs together make exactly the 13 writes of one clean first apply
    assert result2.writes == len(writes_since(sim, n))
    assert len([e for e in sim.log if e.write]) == 13
    check_seed_state(sim, workdir)
    assert sim.state.configchanged is False
    _, result3 = run_apply(plan)
    assert result3.writes == 0  # and the marker of the unsaved run is gone


# --- renewal, policy change, status ---------------------------------------------------------------------------

def test_renewal_only_with_replace_cert_and_without_a_gap(sim, workdir, other_pem_pair):
    plan = write_plan(workdir, sim)
    run_apply(plan)
    shutil.copy(other_pem_pair[0], workdir / CERT_NAME)
    shutil.copy(other_pem_pair[1], workdir / KEY_NAME)
    b = backend(plan)
    diff = b.diff()
    b.close()
    assert [(c.kind, c.name) for c in diff.conflicts] == [("sslcertkey", PAIR)]
    # The fix is advice each face phrases: the CLI names --replace-cert, the wizard its Start choice.
    from dicomtls.cli.phrasing import change_fix as cli_fix
    from dicomtls.wizard.advice import change_fix as wizard_fix

    assert diff.conflicts[0].advice.code == "ns.renew_or_rename"
    assert "--replace-cert" in cli_fix(diff.conflicts[0]) and "--" not in wizard_fix(diff.conflicts[0])
    assert "Replace the certificate" in wizard_fix(diff.conflicts[0])
    n = len(sim.log)
    diff, result = run_apply(plan, replace_cert=True)
    assert result.ok, result.error
    assert [(c.kind, c.action) for c in diff.changes if c.writes] == [
        ("systemfile", Action.CREATE), ("systemfile", Action.CREATE), ("sslcertkey", Action.UPDATE),
        ("systemfile", Action.UPDATE), ("systemfile", Action.UPDATE), ("nsconfig", Action.UPDATE)]
    written = writes_since(sim, n)
    assert ("POST", "sslcertkey") in written  # ?action=update
    # no unbind, no pair removed: never without a certificate; the replaced files go after the update
    assert [w for w in written if w[0] == "DELETE"] == [("DELETE", "systemfile")] * 2
    assert written.index(("POST", "sslcertkey")) < written.index(("DELETE", "systemfile"))
    assert sim.state.certkeys[PAIR]["serial"] == format(serial(other_pem_pair[0]), "X")
    assert sim.state.certkeys[PAIR]["cert"] != CERT_NAME  # new file names
    assert CERT_NAME not in sim.state.files["/nsconfig/ssl"] and KEY_NAME not in sim.state.files["/nsconfig/ssl"]
    assert [b["certkeyname"] for b in sim.state.cert_bindings] == [PAIR]
    assert run_apply(plan)[1].writes == 0


def test_status_and_cipher_groups(sim, workdir):
    pacs = TcpListener()
    try:
        plan = write_plan(workdir, sim, pacs_host="127.0.0.1", pacs_port=pacs.port)
        b = backend(plan)
        before = {(i.kind, i.name): i.state for i in b.status().items}
        assert before[("lbvserver", STORE)] == "absent"
        result = b.apply()  # no diff given: it reads first
        assert result.ok, result.error
        st = {(i.kind, i.name): i for i in b.status().items}
        assert st[("lbvserver", STORE)].state == "UP"
        assert st[("lbvserver", STORE)].detail["services_up"] == "1/1"
        assert "tothits" in st[("lbvserver", STORE)].detail
        assert st[("service", SERVICE)].state == "UP"
        assert st[("sslcertkey", PAIR)].state == "Valid"
        groups = b.list_cipher_groups()
        assert GROUP in groups and "DEFAULT" in groups
        b.close()
    finally:
        pacs.close()
    sim.state.monitor_interval = 0  # probe now, not at the next monitor interval
    b = backend(plan)
    assert {(i.kind, i.name): i.state for i in b.status().items}[("service", SERVICE)] == "DOWN"
    b.close()


def test_host_name_for_a_service_is_a_clear_error(sim, workdir):
    b = backend(write_plan(workdir, sim, pacs_host="pacs.example.org"))
    with pytest.raises(UserError, match="by IP address"):
        b.diff()
    b.close()


def test_missing_password_and_bad_pem_before_touching_the_adc(sim, workdir):
    plan = load_plan(write_plan(workdir, sim))
    b = backend(plan, password="")
    with pytest.raises(UserError, match="DICOMTLS_NITRO_PASSWORD"):
        b.diff()
    (workdir / KEY_NAME).write_text("not a key\n")
    b = backend(plan)
    with pytest.raises(UserError):
        b.diff()
    b.close()
    assert sim.log == []


def test_encrypted_key_with_its_passphrase(sim, workdir):
    from cryptography.hazmat.primitives import serialization

    phrase = "key-phrase-91d2"
    key = serialization.load_pem_private_key((workdir / KEY_NAME).read_bytes(), None)
    (workdir / KEY_NAME).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.BestAvailableEncryption(phrase.encode())))
    plan = write_plan(workdir, sim)
    b = backend(plan)  # no passphrase: refused locally, before the ADC is touched
    with pytest.raises(UserError):
        b.diff()
    b.close()
    assert sim.log == []
    diff, result = run_apply(plan, passphrase=phrase)
    assert result.ok, result.error
    assert "-password" in next(c for c in diff.changes if c.kind == "sslcertkey").cli[0]
    assert phrase not in repr(sim.log) and phrase not in repr(diff.model_dump())
    assert sim.state.certkeys[PAIR]["serial"] == format(serial(workdir / CERT_NAME), "X")


def test_service_monitor_close_bit_is_updated_in_place(sim, workdir):
    with reader(sim) as ns:
        ns.post("service", {"service": {"name": SERVICE, "ip": "10.0.0.20", "servicetype": "TCP", "port": 104}})
    diff, result = run_apply(write_plan(workdir, sim))
    assert result.ok
    (c,) = [c for c in diff.changes if c.kind == "service"]
    assert c.action is Action.UPDATE and c.fields == {"monconnectionclose": ("NONE", "RESET")}
    assert c.cli == [f"set service {SERVICE} -monConnectionClose RESET"]
    assert sim.state.services[SERVICE]["monconnectionclose"] == "RESET"
