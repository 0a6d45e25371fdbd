"""Plan validation: each rule of the issue, with the message checked."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import dump_plan, load_plan, parse_plan, save_plan
from dicomtls.engine.plan_errors import PlanError

SEED = textwrap.dedent('''
    backend = "builtin"

    [certificate]
    name = "Butterfly-Cert-Key-Pair"
    cert = "Butterfly_SCP_Cert.pem"
    key  = "Butterfly_SCP_key.pem"

    [cipher_policy]
    name = "TLS-1.2-Only"
    profile = "bcp195-nd"

    [[service]]
    name = "Qlink-DICOM"
    host = "10.0.0.5"
    port = 104
    ae_title = "QLINK"

    [[virtual_server]]
    name = "Butterfly-DICOM-TLS"
    ip = "0.0.0.0"
    port = 2761
    role = "store"
    service = "Qlink-DICOM"
    calling_ae = "BUTTERFLY"
''')

NETSCALER = '''
[netscaler]
url = "https://192.0.2.10"
username = "nsroot"
password_env = "DICOMTLS_NITRO_PASSWORD"
'''


def parse(text: str):
    return parse_plan(tomllib.loads(text), Path("/plans"), "plan.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse(text)
    return info.value.problems


def test_seed_plan_is_valid_and_defaults_apply():
    plan = parse(SEED)
    assert plan.backend == "builtin"
    assert plan.virtual_server[0].calling_ae == "BUTTERFLY"
    assert plan.policy.name == "bcp195-nd"
    assert plan.warnings == []
    assert plan.cert_path == Path("/plans/Butterfly_SCP_Cert.pem")


def test_minimal_plan_takes_defaults_for_certificate_and_policy():
    plan = parse('[[service]]\nname="P"\nhost="pacs.example.org"\nae_title="PACS"\n'
                 '[[virtual_server]]\nname="V"\nport=2761\nservice="P"\n')
    assert plan.certificate.cert == "Butterfly_SCP_Cert.pem"
    assert plan.cipher_policy.name == "TLS-1.2-Only"
    assert plan.service[0].port == 104
    assert plan.virtual_server[0].role == "store"


@pytest.mark.parametrize("ae, expect", [
    ('"QLINKQLINKQLINKQL"', "17 characters; DICOM AE titles have at most 16"),
    ('""', "empty or all spaces"),
    ('"    "', "empty or all spaces"),
    ('"QL\\\\INK"', "backslash"),
    ('"QLÏNK"', "default repertoire"),
])
def test_ae_title_rules(ae, expect):
    (msg,) = problems(SEED.replace('"QLINK"', ae))
    assert msg.startswith("service[0].ae_title = ")
    assert expect in msg


def test_ae_title_of_sixteen_is_fine_and_spaces_are_trimmed():
    plan = parse(SEED.replace('"QLINK"', '"  ABCDEFGHIJKLMNOP "'))
    assert plan.service[0].ae_title == "ABCDEFGHIJKLMNOP"


def test_calling_ae_is_checked_too():
    (msg,) = problems(SEED.replace('"BUTTERFLY"', '"BUTTERFLY_CLOUD_SCU"'))
    assert msg.startswith("virtual_server[0].calling_ae") and "at most 16" in msg


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_port_range(port):
    (msg,) = problems(SEED.replace("port = 2761", f"port = {port}"))
    assert msg == f"virtual_server[0].port = {port}: must be from 1 to 65535"


def test_port_must_be_a_number():
    (msg,) = problems(SEED.replace("port = 104", 'port = "104"'))
    assert msg.startswith("service[0].port = '104': must be a whole number")


@pytest.mark.parametrize("host, expect", [
    ("10.0.0.500", "not a valid one"),
    ("pacs_01.example", "neither an IP address nor a valid host name"),
    ("-pacs", "neither an IP address nor a valid host name"),
])
def test_service_host(host, expect):
    (msg,) = problems(SEED.replace('"10.0.0.5"', f'"{host}"'))
    assert msg.startswith("service[0].host") and expect in msg


@pytest.mark.parametrize("host", ["pacs.hospital.local", "PACS01", "fd00::5", "10.0.0.5"])
def test_service_host_accepts_names_and_addresses(host):
    assert parse(SEED.replace('"10.0.0.5"', f'"{host}"')).service[0].host == host


def test_virtual_server_ip_must_be_an_address():
    (msg,) = problems(SEED.replace('ip = "0.0.0.0"', 'ip = "pacs.local"'))
    assert msg.startswith("virtual_server[0].ip = 'pacs.local': is not an IP address")


def test_names_are_unique():
    two = SEED + '\n[[service]]\nname = "Qlink-DICOM"\nhost = "10.0.0.6"\nae_title = "Q2"\n'
    (msg,) = problems(two)
    assert msg == "service[1].name = 'Qlink-DICOM': is used twice; names must be unique, rename one"


def test_virtual_server_service_must_exist():
    (msg,) = problems(SEED.replace('service = "Qlink-DICOM"', 'service = "Qlink"'))
    assert "virtual_server[0].service = 'Qlink': is not the name of one of the plan's PACS services" in msg
    assert "Qlink-DICOM" in msg


def test_two_virtual_servers_never_share_ip_and_port():
    clash = SEED + ('\n[[virtual_server]]\nname = "MWL"\nip = "10.0.0.20"\nport = 2761\nrole = "worklist"\n'
                    'service = "Qlink-DICOM"\n')
    (msg,) = problems(clash)
    assert "both listen on port 2761" in msg and "'MWL'" in msg


def test_same_port_on_two_specific_ips_is_allowed():
    text = SEED.replace('ip = "0.0.0.0"', 'ip = "10.0.0.20"') + (
        '\n[[virtual_server]]\nname = "B"\nip = "10.0.0.21"\nport = 2761\nservice = "Qlink-DICOM"\n')
    assert len(parse(text).virtual_server) == 2


def test_role_port_is_suggested_not_forced():
    plan = parse(SEED.replace("port = 2761", "port = 2762"))
    assert plan.virtual_server[0].port == 2762
    assert any("role store usually listens on 2761" in w for w in plan.warnings)


def test_role_must_be_store_or_worklist():
    (msg,) = problems(SEED.replace('role = "store"', 'role = "query"'))
    assert msg == "virtual_server[0].role = 'query': must be one of 'store' or 'worklist'"


def test_unknown_policy_lists_the_known_ones():
    (msg,) = problems(SEED.replace('"bcp195-nd"', '"tls12"'))
    assert msg.startswith("cipher_policy.profile = 'tls12': is not a known policy")
    assert "bcp195-nd" in msg and "bcp195-rfc8996" in msg


def test_legacy_policy_is_loudly_warned():
    plan = parse(SEED.replace('"bcp195-nd"', '"legacy"'))
    assert any("TLS 1.0 and 1.1" in w for w in plan.warnings)


def test_unknown_key_is_named():
    (msg,) = problems(SEED.replace('calling_ae = "BUTTERFLY"', 'calling_aet = "BUTTERFLY"'))
    assert msg.startswith("virtual_server[0].calling_aet: unknown key")


def test_missing_key_is_named():
    (msg,) = problems(SEED.replace('ae_title = "QLINK"', ""))
    assert msg == "service[0].ae_title: missing; add `ae_title = ...` to the plan"


def test_several_problems_are_all_reported():
    bad = SEED.replace("port = 104", "port = 0").replace('"QLINK"', '"' + "Q" * 17 + '"')
    assert len(problems(bad)) == 2


def test_netscaler_backend_needs_its_table_and_a_vip():
    (msg,) = problems(SEED.replace('backend = "builtin"', 'backend = "netscaler"'))
    assert msg == "netscaler: missing; add a [netscaler] table with url, username and password_env"
    (msg,) = problems(SEED.replace('backend = "builtin"', 'backend = "netscaler"') + NETSCALER)
    assert "virtual_server[0].ip = '0.0.0.0': a NetScaler virtual server needs its own VIP" in msg


def test_netscaler_url_and_fingerprint_are_checked():
    ns = SEED.replace('backend = "builtin"', 'backend = "netscaler"').replace('"0.0.0.0"', '"10.0.0.20"')
    (msg,) = problems(ns + NETSCALER.replace("https://192.0.2.10", "192.0.2.10"))
    assert msg.startswith("netscaler.url = '192.0.2.10': must be the management address")
    (msg,) = problems(ns + NETSCALER + 'fingerprint = "sha256:ZZ"\n')
    assert "netscaler.fingerprint" in msg and "SHA-256" in msg
    plan = parse(ns + NETSCALER + 'fingerprint = "' + "ab" * 32 + '"\n')
    assert plan.netscaler.fingerprint == "sha256:" + ":".join(["AB"] * 32)


def test_http_url_is_warned():
    ns = SEED.replace('backend = "builtin"', 'backend = "netscaler"').replace('"0.0.0.0"', '"10.0.0.20"')
    plan = parse(ns + NETSCALER.replace("https://", "http://"))
    assert any("clear text" in w for w in plan.warnings)


def test_allowlists_are_validated():
    text = SEED.replace('calling_ae = "BUTTERFLY"',
                        'calling_ae = "BUTTERFLY"\nallowed_clients = ["203.0.113.0/24", "nope"]')
    (msg,) = problems(text)
    assert "'nope' is not an address or CIDR block" in msg
    ok = parse(SEED.replace('calling_ae = "BUTTERFLY"',
                            'calling_ae = "BUTTERFLY"\nallowed_clients = ["203.0.113.7"]\nallowed_calling_aes = ["BUTTERFLY"]'))
    assert ok.virtual_server[0].allowed_clients == ["203.0.113.7/32"]


def test_paths_are_relative_to_the_plan_file(tmp_path):
    (tmp_path / "site").mkdir()
    f = tmp_path / "site" / "plan.toml"
    f.write_text(SEED)
    plan = load_plan(f)
    assert plan.cert_path == tmp_path / "site" / "Butterfly_SCP_Cert.pem"


def test_save_and_load_round_trip_and_no_secrets(tmp_path):
    plan = parse(SEED.replace('backend = "builtin"', 'backend = "netscaler"').replace('"0.0.0.0"', '"10.0.0.20"') + NETSCALER)
    plan.with_base_dir(tmp_path)
    out = save_plan(plan, tmp_path / "plan.toml")
    again = load_plan(out)
    assert again.model_dump() == plan.model_dump()
    text = out.read_text()
    assert "password =" not in text and "password_env" in text


def test_saving_elsewhere_pins_relative_paths(tmp_path):
    plan = parse(SEED).with_base_dir(tmp_path / "a")
    out = save_plan(plan, tmp_path / "b" / "plan.toml")
    again = load_plan(out)
    assert again.cert_path == tmp_path / "a" / "Butterfly_SCP_Cert.pem"


def test_toml_syntax_errors_and_missing_files_are_user_errors(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("backend = builtin\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_plan(f)
    with pytest.raises(UserError, match="no plan file"):
        load_plan(tmp_path / "missing.toml")


def test_bom_is_tolerated(tmp_path):
    f = tmp_path / "p.toml"
    f.write_bytes("\ufeff".encode() + SEED.encode())
    assert load_plan(f).service[0].name == "Qlink-DICOM"


def test_dump_is_stable_toml():
    plan = parse(SEED)
    assert parse(dump_plan(plan)).model_dump() == plan.model_dump()


MEMBERS = SEED.replace('host = "10.0.0.5"\nport = 104\n',
                       'members = [{ host = "10.0.0.5" }, { host = "10.0.0.6", port = 4104 }]\n')


def test_members_make_a_group_and_host_defaults_to_the_first():
    assert MEMBERS != SEED
    svc = parse(MEMBERS).service[0]
    assert svc.is_group
    assert [m.address for m in svc.targets] == ["10.0.0.5:104", "10.0.0.6:4104"]
    assert (svc.host, svc.port) == ("10.0.0.5", 104)
    single = parse(SEED).service[0]
    assert not single.is_group and [m.address for m in single.targets] == ["10.0.0.5:104"]


def test_members_round_trip_through_save(tmp_path):
    plan = parse(MEMBERS)
    again = parse(dump_plan(plan))
    assert [m.address for m in again.service[0].targets] == ["10.0.0.5:104", "10.0.0.6:4104"]


@pytest.mark.parametrize("members, expect", [
    ('[{ host = "10.0.0.5" }, { host = "10.0.0.5" }]', "service[0].members[1] = '10.0.0.5:104': is listed twice"),
    ('[{ host = "10.0.0.999" }]', "service[0].members[0].host = '10.0.0.999': looks like an IPv4 address"),
    ('[{ host = "10.0.0.5", port = 0 }]', "service[0].members[0].port = 0: must be from 1 to 65535"),
    ('[{ ip = "10.0.0.5" }]', "service[0].members[0].ip: unknown key"),
])
def test_member_rules(members, expect):
    text = SEED.replace('host = "10.0.0.5"\nport = 104\n', f"members = {members}\n")
    assert any(p.startswith(expect) for p in problems(text)), problems(text)


def test_host_must_be_a_member_when_both_are_given():
    text = SEED.replace('port = 104\n', 'port = 104\nmembers = [{ host = "10.0.0.6" }, { host = "10.0.0.7" }]\n')
    assert problems(text) == ["service[0].host = '10.0.0.5': with port 104, is not one of the members; with "
                              "members, leave host and port out (or make them the first member)"]


def test_service_needs_a_host_or_members():
    text = SEED.replace('host = "10.0.0.5"\n', "")
    assert problems(text)[0].startswith("service[0].host: missing; add `host = ")


def test_where_is_one_short_line():
    assert parse(SEED).service[0].where == "10.0.0.5:104"
    assert parse(MEMBERS).service[0].where == "10.0.0.5:104 +1 more"
    v6 = parse(SEED.replace('"10.0.0.5"', '"fd00::5"')).service[0]
    assert v6.where == "[fd00::5]:104"

