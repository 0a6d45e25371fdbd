"""The NetScaler backend on the ADCs hospitals run, each against the simulator in that mode: the Default
SSL Profile enabled, releases 12.0 / 13.1 / too old, an HA pair (primary and secondary), an admin
partition. Per mode: the first apply builds the end state in one run, a re-run writes nothing, the
worklist addition writes only what is new; or nothing is written and the change list says why.
Request counts are printed (pytest -s) for the report."""

from __future__ import annotations

import base64
import json

import pytest

from dicomtls.cli.phrasing import change_fix as cli_change
from dicomtls.cli.phrasing import fix_text as cli_fix
from dicomtls.engine.backends.base import Action
from dicomtls.engine.backends.netscaler.export import export
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import load_plan
from dicomtls.engine.rehearsal.nitro_sim import start_in_thread
from dicomtls.wizard.advice import change_fix as wizard_change

from .conftest import (
    CERT_NAME,
    KEY_NAME,
    MWL,
    PAIR,
    PASSWORD,
    STORE,
    backend,
    reader,
    run_apply,
    write_plan,
    writes_since,
)

GROUP, PROFILE = "TLS-1.2-Only", "DICOM-TLS-Profile"


def _three_runs(h, workdir, label: str, **kw):
    """First apply, no-change re-run, worklist addition; each checked for writes; counts printed."""
    plan = write_plan(workdir, h, **kw)
    diff, first = run_apply(plan)
    assert first.ok, first.error
    assert not diff.conflicts
    n = len(h.log)
    again_diff, again = run_apply(plan)
    assert again_diff.is_noop and again.ok and again.writes == 0 and writes_since(h, n) == []
    n = len(h.log)
    mwl_diff, mwl = run_apply(write_plan(workdir, h, "mwl.toml", worklist=True, **kw))
    assert mwl.ok, mwl.error
    new = [f"{c.kind} {c.name}" for c in mwl_diff.changes if c.writes]
    assert all(MWL in c or c == "nsconfig save" for c in new), new  # only what the new vserver needs
    print(f"{label}: first apply {first.requests} requests / {first.writes} writes; re-run {again.requests} / "
          f"{again.writes}; worklist addition {mwl.requests} / {mwl.writes}")
    return diff, first, mwl


# --- the Default SSL Profile (enhanced mode) ------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["bcp195-nd", "bcp195-rfc8996"])
def test_profile_mode_builds_the_end_state_in_one_run(workdir, policy):
    with start_in_thread(password=PASSWORD, default_profile=True) as h:
        defaults_before = {k: dict(v) for k, v in h.state.sslprofiles.items()}
        diff, first, _ = _three_runs(h, workdir, f"profile mode {policy}", profile=policy)
        assert (diff.facts.ssl_mode, diff.facts.ssl_profile) == ("profile", PROFILE)
        kinds = {c.kind for c in diff.changes if c.writes}
        assert {"sslprofile", "sslprofile_sslcipher_binding", "sslvserver"} <= kinds
        assert "sslvserver_sslcipher_binding" not in kinds  # nothing per vserver that the ADC refuses (3740)
        with reader(h) as ns:
            prof = ns.get("sslprofile", PROFILE)[0]
            assert prof["sslprofiletype"] == "FrontEnd"
            assert {k: prof[k] for k in ("ssl3", "tls1", "tls11", "tls12", "tls13")} == \
                POLICIES[policy].netscaler_protocol_flags()
            bound = [r["cipheraliasname"] for r in ns.get("sslprofile_sslcipher_binding", PROFILE)]
            assert bound == [GROUP]  # the group bound, DEFAULT unbound
            rows = ns.get("sslcipher_sslciphersuite_binding", GROUP)
            assert [r["ciphername"] for r in rows] == POLICIES[policy].netscaler_ciphers
            for vs in (STORE, MWL):
                assert ns.get("sslvserver", vs)[0]["sslprofile"] == PROFILE
                certs = ns.get("sslvserver_sslcertkey_binding", vs)
                assert [r["certkeyname"] for r in certs] == [PAIR]
            assert ns.get("nsconfig")[0]["configchanged"] is False
        assert {k: v for k, v in h.state.sslprofiles.items() if k.startswith("ns_default")} == defaults_before


def test_profile_mode_status_reports_the_protocols_the_profile_offers(workdir):
    with start_in_thread(password=PASSWORD, default_profile=True) as h:
        plan = write_plan(workdir, h, profile="bcp195-rfc8996")
        run_apply(plan)
        b = backend(plan)
        st = b.status()
        b.close()
        item = next(i for i in st.items if i.name == STORE)
        assert item.detail["protocols"] == "tls12, tls13"
        assert st.facts.ssl_mode == "profile"


def test_an_adc_profile_on_our_vserver_is_a_conflict_not_overwritten(workdir):
    with start_in_thread(password=PASSWORD, default_profile=True) as h:
        plan = write_plan(workdir, h)
        run_apply(plan)
        with h.state.lock:
            h.state.sslprofiles["hospital-strict"] = {"sslprofiletype": "FrontEnd", "tls12": "ENABLED"}
            h.state.sslvservers[STORE]["sslprofile"] = "hospital-strict"
        b = backend(plan)
        diff = b.diff()
        b.close()
        (c,) = diff.conflicts
        assert c.kind == "sslvserver" and "hospital-strict" in c.summary
        assert "ssl_profile" in cli_change(c) and "SSL profile" in wizard_change(c)


# --- TLS 1.3 only where the ADC can do it -------------------------------------------------------------------

def test_tls13_on_a_legacy_adc_is_refused_before_any_write(workdir):
    with start_in_thread(password=PASSWORD) as h:
        plan = write_plan(workdir, h, profile="bcp195-rfc8996")
        b = backend(plan)
        diff = b.diff()
        (c,) = diff.conflicts
        assert "TLS 1.3" in c.summary and "legacy" in c.summary and "bcp195-nd" in c.hint
        assert "DISABLED" not in c.hint  # never `set ssl parameter -defaultProfile DISABLED`
        with pytest.raises(UserError) as info:
            b.apply(diff=diff)
        b.close()
        assert info.value.exit_code == 3
        assert [e for e in h.log if e.write] == []


# --- firmware -----------------------------------------------------------------------------------------------

def test_release_12_0_gets_no_tls13_anywhere_and_completes_in_one_run(workdir):
    with start_in_thread(password=PASSWORD, firmware="12.0") as h:
        # the simulator refuses a tls13 attribute on 12.0 (278), so one clean run proves none was sent
        diff, first, _ = _three_runs(h, workdir, "release 12.0")
        assert diff.facts.release == "12.0"
        assert "tls13" not in json.dumps([c.model_dump(mode="json") for c in diff.changes])
        flags = h.state.sslvservers[STORE]
        assert (flags["ssl3"], flags["tls1"], flags["tls11"], flags["tls12"]) == (
            "DISABLED", "DISABLED", "DISABLED", "ENABLED")
        plan = load_plan(write_plan(workdir, h))
        for fmt in ("nitro", "netscaler-cli"):
            assert "tls13" not in export(plan, fmt, release=(12, 0)).lower()
            assert "tls13" in export(plan, fmt).lower()  # the latest release gets it (DISABLED)


def test_release_12_0_with_tls13_policy_is_refused_naming_the_release(workdir):
    with start_in_thread(password=PASSWORD, firmware="12.0", default_profile=True) as h:
        b = backend(write_plan(workdir, h, profile="bcp195-rfc8996"))
        diff = b.diff()
        b.close()
        (c,) = diff.conflicts
        assert "12.0" in c.summary and "12.1" in cli_change(c)
        assert [e for e in h.log if e.write] == []
        with pytest.raises(UserError):
            export(load_plan(write_plan(workdir, h, profile="bcp195-rfc8996")), "nitro", release=(12, 0),
                   ssl_mode="profile")


def test_a_release_too_old_is_refused_naming_the_minimum(workdir):
    with start_in_thread(password=PASSWORD, firmware="11.1") as h:
        b = backend(write_plan(workdir, h))
        diff = b.diff()
        b.close()
        assert [(c.kind, c.action) for c in diff.changes] == [("nsversion", Action.CONFLICT)]
        assert "11.1" in diff.changes[0].summary and "12.0" in diff.changes[0].summary
        assert diff.requests == 2 and [e for e in h.log if e.write] == []  # login and nsversion only


def test_release_13_1_lists_groups_as_suite_bindings_and_a_rerun_binds_nothing_twice(workdir):
    with start_in_thread(password=PASSWORD, firmware="13.1") as h:
        _three_runs(h, workdir, "release 13.1")
        assert h.state.cipher_bindings[STORE] == [GROUP]  # bound once, DEFAULT unbound
        with reader(h) as ns:
            sb = ns.get("sslvserver_binding", STORE)[0]
            assert "sslvserver_sslcipher_binding" not in sb  # the group shows only as a suite binding
        with h.state.lock:
            h.state.cipher_bindings[STORE].append("DEFAULT")  # someone binds DEFAULT again
        b = backend(write_plan(workdir, h))
        diff = b.diff()
        b.close()
        (c,) = [c for c in diff.changes if c.writes and c.kind == "sslvserver_sslcipher_binding"]
        assert c.fields["ciphers"] == ([GROUP, "DEFAULT"], [GROUP])  # seen, and only DEFAULT is unbound


# --- HA pairs -----------------------------------------------------------------------------------------------

def test_secondary_writes_nothing_and_names_the_primary(workdir):
    with start_in_thread(password=PASSWORD, ha="secondary") as h:
        b = backend(write_plan(workdir, h))
        diff = b.diff()
        (c,) = diff.changes
        assert c.action is Action.CONFLICT and "192.0.2.11" in c.summary and "192.0.2.11" in cli_change(c)
        assert "NITRO URL on the Start step" in wizard_change(c)
        assert (diff.facts.ha_role, diff.facts.ha_primary) == ("secondary", "192.0.2.11")
        with pytest.raises(UserError) as info:
            b.apply(diff=diff)
        b.close()
        assert info.value.exit_code == 3
        assert [e for e in h.log if e.write] == []


def test_secondary_refuses_writes_with_368_explained(workdir):
    with start_in_thread(password=PASSWORD, ha="secondary") as h, reader(h) as ns:
        from dicomtls.engine.backends.netscaler.client import NitroError

        with pytest.raises(NitroError) as info:
            ns.post("nsfeature", {"nsfeature": {"feature": ["LB"]}}, action="enable")
        assert info.value.errorcode == 368 and "primary" in cli_fix(info.value)


@pytest.mark.parametrize("failure", ["", "Sync failed: version mismatch"])
def test_primary_reports_sync_after_saving(workdir, failure):
    with start_in_thread(password=PASSWORD, ha="primary") as h:
        h.state.ha_sync_failure = failure
        diff, first, mwl = _three_runs(h, workdir, f"HA primary{' (sync failing)' if failure else ''}")
        assert diff.facts.ha_role == "primary" and diff.facts.ha_peer == "192.0.2.11"
        want = "not-in-sync" if failure else "in-sync"
        assert (first.ha_sync, mwl.ha_sync) == (want, want)
        assert first.ha_sync_detail == failure


# --- admin partitions ---------------------------------------------------------------------------------------

def test_partition_switch_after_login_and_files_where_the_partition_sees_them(workdir):
    with start_in_thread(password=PASSWORD, partition="dmz") as h:
        diff, first, _ = _three_runs(h, workdir, "partition dmz", partition="dmz")
        assert diff.facts.partition == "dmz"
        logins = [i for i, e in enumerate(h.log) if e.resource == "login"]
        for i in logins:  # every session switches before anything else
            assert (h.log[i + 1].resource, h.log[i + 1].query) == ("nspartition", "action=Switch")
        folder = h.state.files["/nsconfig/partitions/dmz/ssl"]
        assert folder[CERT_NAME] == (workdir / CERT_NAME).read_bytes()
        assert CERT_NAME not in h.state.files["/nsconfig/ssl"]
        assert any(c.name.startswith("/nsconfig/partitions/dmz/ssl/") for c in diff.changes)
        nitro = export(load_plan(write_plan(workdir, h, partition="dmz")), "nitro")
        assert json.loads(nitro)[1]["url"] == "/nitro/v1/config/nspartition?action=Switch"


def test_an_unknown_partition_is_explained(workdir):
    with start_in_thread(password=PASSWORD) as h:
        b = backend(write_plan(workdir, h, partition="nosuch"))
        with pytest.raises(UserError) as info:
            b.diff()
        b.close()
        assert "partition" in info.value.problem and "NITRO 258" in info.value.problem
        assert [e for e in h.log if e.write] == []


# --- files and names ----------------------------------------------------------------------------------------

def test_a_file_name_over_63_characters_is_a_conflict_before_any_write(workdir):
    long_name = "B" * 60 + ".pem"
    (workdir / long_name).write_bytes((workdir / CERT_NAME).read_bytes())
    with start_in_thread(password=PASSWORD) as h:
        b = backend(write_plan(workdir, h, cert=long_name))
        diff = b.diff()
        b.close()
        (c,) = diff.conflicts
        assert c.kind == "systemfile" and "64 characters" in c.summary and "63" in c.summary
        assert [e for e in h.log if e.write] == []


def test_an_existing_file_of_other_content_is_never_overwritten(workdir):
    with start_in_thread(password=PASSWORD) as h:
        with h.state.lock:
            h.state.files["/nsconfig/ssl"][KEY_NAME] = b"someone else's key"
        b = backend(write_plan(workdir, h))
        diff = b.diff()
        b.close()
        (c,) = diff.conflicts
        assert c.kind == "systemfile" and c.name.endswith(KEY_NAME) and "never overwrites" in c.hint
        assert h.state.files["/nsconfig/ssl"][KEY_NAME] == b"someone else's key"


# --- the vserver's counters (the wizard's last screen) ------------------------------------------------------

def test_counters_move_when_a_connection_arrives(workdir):
    with start_in_thread(password=PASSWORD) as h:
        plan = write_plan(workdir, h)
        b = backend(plan)
        assert b.vserver_counters(STORE) is None  # not there yet
        assert b.apply().ok
        before = b.vserver_counters(STORE)
        h.client_connected(STORE)
        after = b.vserver_counters(STORE)
        b.close()
        assert before is not None and after is not None
        assert after.tothits == before.tothits + 1 and after.totalrequests == before.totalrequests + 1


def test_the_connect_hook_is_outside_nitro_and_needs_a_known_vserver(workdir):
    import httpx

    with start_in_thread(password=PASSWORD, tls=False) as h:
        run_apply(write_plan(workdir, h))
        with httpx.Client(base_url=h.url) as c:
            assert c.post(f"/nitro-sim/connect/{STORE}").status_code == 204
            assert c.post("/nitro-sim/connect/nosuch").status_code == 404
        assert h.state.counters[STORE]["tothits"] == 1


def test_key_content_never_in_the_partition_export(workdir):
    with start_in_thread(password=PASSWORD, partition="dmz") as h:
        text = export(load_plan(write_plan(workdir, h, partition="dmz")), "nitro")
        key_b64 = base64.b64encode((workdir / KEY_NAME).read_bytes()).decode()
        assert key_b64 not in text and "<base64 of" in text


def test_counter_watch_reports_the_first_arrival_only_after_its_baseline(workdir):
    import threading

    from dicomtls.engine.backends.netscaler.watch import CounterWatch, watch_in_thread

    with start_in_thread(password=PASSWORD) as h:
        b = backend(write_plan(workdir, h))
        assert b.apply().ok
        h.client_connected(STORE)  # before the watch: part of the baseline, not an arrival
        w = CounterWatch(STORE, b.vserver_counters)
        assert w.poll() is None and w.poll() is None
        seen: list = []
        done = threading.Event()
        stop = watch_in_thread(w, lambda a: (seen.append(a), done.set()), lambda e: done.set(), interval=0.05)
        h.client_connected(STORE)
        assert done.wait(10)
        stop()
        b.close()
        assert seen and seen[0].vserver == STORE and seen[0].hits == 1
