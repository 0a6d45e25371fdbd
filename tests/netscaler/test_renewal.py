"""Certificate renewal on the NetScaler through the headless CLI (`dicomtls apply --replace-cert`),
against the NITRO simulator: the cert-key pair is updated in place (`update ssl certKey ...
-noDomainCheck` = POST sslcertkey?action=update with nodomaincheck) under new file names, the vserver
is never without a bound, loadable certificate (read from the simulator's request log), and the
replaced files are removed only after the update succeeded."""

from __future__ import annotations

import json
import shutil

from cryptography import x509

from .cli_run import dicomtls
from .conftest import CERT_NAME, KEY_NAME, PAIR, STORE, reader, write_plan

SSL = "/nsconfig/ssl"


def test_renewal_updates_the_pair_in_place_and_never_unbinds(sim, workdir, home, other_pem_pair):
    plan = write_plan(workdir, sim)
    first = dicomtls("apply", plan, "--yes", home=home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [b["certkeyname"] for b in sim.state.cert_bindings if b["vservername"] == STORE] == [PAIR]
    n = len(sim.log)
    shutil.copy(other_pem_pair[0], workdir / CERT_NAME)  # Butterfly issued a new pair, same file names
    shutil.copy(other_pem_pair[1], workdir / KEY_NAME)

    refused = dicomtls("apply", plan, "--yes", home=home)  # without --replace-cert: a conflict, nothing written
    assert refused.returncode == 3 and "--replace-cert" in refused.stdout + refused.stderr
    assert not [e for e in sim.log[n:] if e.write]

    r = dicomtls("apply", plan, "--yes", "--replace-cert", "--json", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["result"]["ok"] is True
    writes = [e for e in sim.log[n:] if e.write]
    assert all(200 <= e.status < 300 for e in writes), [(e.method, e.path, e.status) for e in writes]
    # in place: one update of the existing pair, no new pair, nothing unbound or deleted but files
    updates = [e for e in writes if e.resource == "sslcertkey"]
    assert [(e.method, e.query) for e in updates] == [("POST", "action=update")]
    assert not [e for e in writes if e.resource in ("sslvserver_sslcertkey_binding", "lbvserver", "sslvserver")]
    deletes = [e for e in writes if e.method == "DELETE"]
    assert [e.resource for e in deletes] == ["systemfile", "systemfile"]
    assert {e.name for e in deletes} == {CERT_NAME, KEY_NAME}
    uploads = [e for e in writes if e.method == "POST" and e.resource == "systemfile"]
    assert uploads and max(e.seq for e in uploads) < updates[0].seq < min(e.seq for e in deletes)

    # read back through NITRO: the same pair, bound as before, holding the new certificate from new files
    with reader(sim) as ns:
        pair = ns.get("sslcertkey", PAIR, attrs="certkey,cert,key,serial")[0]
        bound = ns.get("sslvserver_sslcertkey_binding", STORE)
    new_serial = x509.load_pem_x509_certificate(other_pem_pair[0].read_bytes()).serial_number
    assert int(pair["serial"], 16) == new_serial
    assert pair["cert"].rsplit("/", 1)[-1] != CERT_NAME and pair["key"].rsplit("/", 1)[-1] != KEY_NAME
    files = sim.state.files[SSL]
    assert pair["cert"].rsplit("/", 1)[-1] in files and pair["key"].rsplit("/", 1)[-1] in files
    assert CERT_NAME not in files and KEY_NAME not in files  # the replaced ones, removed after the update
    assert [b["certkeyname"] for b in bound if not b.get("ca")] == [PAIR]

    m = len(sim.log)
    again = dicomtls("apply", plan, "--yes", home=home)  # the renewal is done: a no-op
    assert again.returncode == 0 and not [e for e in sim.log[m:] if e.write]


def test_an_update_that_never_happened_keeps_the_old_files(sim, workdir, home, other_pem_pair):
    """The ADC dies after the new files are uploaded and before the update: apply fails part-way
    (exit 4), nothing is deleted, the pair still holds the old certificate from the old files; the
    re-run completes the renewal and only then removes them."""
    plan = write_plan(workdir, sim)
    assert dicomtls("apply", plan, "--yes", home=home).returncode == 0
    shutil.copy(other_pem_pair[0], workdir / CERT_NAME)
    shutil.copy(other_pem_pair[1], workdir / KEY_NAME)
    n = len(sim.log)
    sim.state.faults.die_after_writes = sim.state.writes + 1  # the upload is the next write
    r = dicomtls("apply", plan, "--yes", "--replace-cert", home=home)
    assert r.returncode == 4, r.stdout + r.stderr
    assert sim.wait_dead()
    assert [(e.method, e.resource) for e in sim.log[n:] if e.write] == [("POST", "systemfile")]
    assert CERT_NAME in sim.state.files[SSL] and KEY_NAME in sim.state.files[SSL]
    assert sim.state.certkeys[PAIR]["cert"].rsplit("/", 1)[-1] == CERT_NAME
    sim.restart()
    r = dicomtls("apply", plan, "--yes", "--replace-cert", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert CERT_NAME not in sim.state.files[SSL] and KEY_NAME not in sim.state.files[SSL]
    assert [b["certkeyname"] for b in sim.state.cert_bindings if b["vservername"] == STORE] == [PAIR]
