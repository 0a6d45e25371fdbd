"""The simulator's service groups against docs/research/nitro.md §7, over real HTTP with raw httpx: the wire format,
error codes and state rules (members, auto-created servers, vserver bindings, the vserver's state)."""

from __future__ import annotations

import base64
import json

from .conftest import TcpListener, post

SG = "/nitro/v1/config/servicegroup"
MEMBERS = "/nitro/v1/config/servicegroup_servicegroupmember_binding"


def err(r) -> tuple[int, int]:
    return r.status_code, r.json()["errorcode"]


def test_group_add_duplicate_and_name_shared_with_services(raw):
    assert post(raw, "servicegroup", {"servicegroupname": "sg", "servicetype": "TCP",
                                      "monconnectionclose": "RESET"}).status_code == 201
    r = post(raw, "servicegroup", {"servicegroupname": "sg", "servicetype": "TCP"})
    assert err(r) == (409, 273) and r.json()["message"].startswith("Resource already exists")
    r = post(raw, "service", {"name": "sg", "ip": "10.0.0.20", "servicetype": "TCP", "port": 104})
    assert err(r) == (409, 273)
    post(raw, "service", {"name": "svc", "ip": "10.0.0.20", "servicetype": "TCP", "port": 104})
    assert err(post(raw, "servicegroup", {"servicegroupname": "svc", "servicetype": "TCP"})) == (409, 273)
    assert err(post(raw, "servicegroup", {"servicegroupname": "x"})) == (400, 1095)
    assert err(post(raw, "servicegroup", {"servicegroupname": "x", "servicetype": "TCP",
                                          "monconnectionclose": "SOMETIMES"})) == (599, 1097)
    row = raw.get(f"{SG}/sg?attrs=servicegroupname,servicetype,monconnectionclose").json()["servicegroup"]
    assert row == [{"servicegroupname": "sg", "servicetype": "TCP", "monconnectionclose": "RESET"}]
    r = raw.put(f"{SG}/sg", content=json.dumps({"servicegroup": {"servicegroupname": "sg",
                                                                  "monconnectionclose": "FIN"}}))
    assert r.status_code == 200
    assert raw.get(f"{SG}/sg").json()["servicegroup"][0]["monconnectionclose"] == "FIN"
    assert err(raw.get(f"{SG}/nope")) == (404, 258)


def test_members_by_ip_create_servers_and_the_documented_errors(raw):
    post(raw, "servicegroup", {"servicegroupname": "sg", "servicetype": "TCP"})
    r = post(raw, "servicegroup_servicegroupmember_binding",
             [{"servicegroupname": "sg", "ip": "10.0.0.21", "port": 104},
              {"servicegroupname": "sg", "ip": "10.0.0.22", "port": 104}])
    assert r.status_code == 201
    rows = raw.get(f"{MEMBERS}/sg").json()["servicegroup_servicegroupmember_binding"]
    assert [(m["ip"], m["port"], m["servername"], m["state"]) for m in rows] == [
        ("10.0.0.21", 104, "10.0.0.21", "ENABLED"), ("10.0.0.22", 104, "10.0.0.22", "ENABLED")]
    assert rows[0]["svrstate"] == "DOWN" and rows[0]["weight"] == "1"  # never probed: not loopback
    assert raw.get("/nitro/v1/config/server/10.0.0.22").json()["server"][0]["ipaddress"] == "10.0.0.22"
    # the same member again, an unknown group, an unknown server, no port
    assert err(post(raw, "servicegroup_servicegroupmember_binding",
                    {"servicegroupname": "sg", "ip": "10.0.0.21", "port": 104})) == (409, 273)
    r = post(raw, "servicegroup_servicegroupmember_binding", {"servicegroupname": "ghost", "ip": "10.0.0.21",
                                                              "port": 104})
    assert err(r) == (404, 258) and r.json()["message"] == "No such resource [servicegroupname, ghost]"
    r = post(raw, "servicegroup_servicegroupmember_binding", {"servicegroupname": "sg", "servername": "nosuch",
                                                              "port": 104})
    assert err(r) == (599, 351) and r.json()["message"] == "No such server"
    assert err(post(raw, "servicegroup_servicegroupmember_binding",
                    {"servicegroupname": "sg", "ip": "10.0.0.23"})) == (400, 1095)
    # by server name: the server of the first member, another port
    assert post(raw, "servicegroup_servicegroupmember_binding",
                {"servicegroupname": "sg", "servername": "10.0.0.21", "port": 105}).status_code == 201
    # delete: both ip and servername is 1092 (ansible-collection-netscaleradc#328); by ip; a missing one is 258
    r = raw.delete(f"{MEMBERS}/sg?args=ip:10.0.0.21,servername:10.0.0.21,port:104")
    assert err(r) == (599, 1092) and r.json()["message"] == "Arguments cannot both be specified [serverName, IP]"
    assert raw.delete(f"{MEMBERS}/sg?args=ip:10.0.0.21,port:104").status_code == 200
    assert raw.delete(f"{MEMBERS}/sg?args=servername:10.0.0.21,port:105").status_code == 200
    assert err(raw.delete(f"{MEMBERS}/sg?args=ip:10.0.0.21,port:104")) == (404, 258)
    rows = raw.get(f"{MEMBERS}/sg").json()["servicegroup_servicegroupmember_binding"]
    assert [(m["ip"], m["port"]) for m in rows] == [("10.0.0.22", 104)]
    assert err(raw.get(f"{MEMBERS}/ghost")) == (404, 258)
    # a group without members answers without the key (§1)
    post(raw, "servicegroup", {"servicegroupname": "empty", "servicetype": "TCP"})
    assert raw.get(f"{MEMBERS}/empty").json() == {"errorcode": 0, "message": "Done", "severity": "NONE"}


def test_vserver_state_follows_a_bound_group_with_a_member_up(raw, sim, pem_pair):
    pacs = TcpListener()
    try:
        post(raw, "nsfeature", {"feature": ["LB", "SSL"]}, "enable")
        post(raw, "lbvserver", {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
        for name, path in (("c.pem", pem_pair[0]), ("k.pem", pem_pair[1])):
            post(raw, "systemfile", {"filename": name, "filelocation": "/nsconfig/ssl",
                                     "filecontent": base64.b64encode(path.read_bytes()).decode()})
        post(raw, "sslcertkey", {"certkey": "ck", "cert": "c.pem", "key": "k.pem"})
        post(raw, "sslvserver_sslcertkey_binding", {"vservername": "vs", "certkeyname": "ck"})
        post(raw, "servicegroup", {"servicegroupname": "sg", "servicetype": "TCP"})
        # the group binding takes no weight (1093, ansible-collection-netscaleradc#191); unknown group is 258
        r = post(raw, "lbvserver_servicegroup_binding", {"name": "vs", "servicegroupname": "sg", "weight": 1})
        assert err(r) == (400, 1093)
        assert err(post(raw, "lbvserver_servicegroup_binding", {"name": "vs", "servicegroupname": "x"})) == (404, 258)
        assert err(post(raw, "lbvserver_servicegroup_binding", {"name": "nov", "servicegroupname": "sg"})) == (404, 258)
        assert post(raw, "lbvserver_servicegroup_binding", {"name": "vs", "servicegroupname": "sg"}).status_code == 201
        assert err(post(raw, "lbvserver_servicegroup_binding", {"name": "vs", "servicegroupname": "sg"})) == (409, 273)
        vs = raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]
        assert (vs["curstate"], vs["totalservices"]) == ("DOWN", "0")  # a group with no member
        post(raw, "servicegroup_servicegroupmember_binding", {"servicegroupname": "sg", "ip": "127.0.0.1",
                                                              "port": pacs.port})
        post(raw, "servicegroup_servicegroupmember_binding", {"servicegroupname": "sg", "ip": "10.0.0.22",
                                                              "port": 104})
        vs = raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]
        assert (vs["curstate"], vs["totalservices"], vs["activeservices"]) == ("UP", "2", "1")
        sg = raw.get(f"{SG}/sg").json()["servicegroup"][0]
        assert sg["servicegroupeffectivestate"] == "PARTIAL-UP"
        # the umbrella read: the group binding (with `servicename` too, as DOC12 shows) and the members
        both = raw.get("/nitro/v1/config/lbvserver_binding?bulkbindings=yes").json()["lbvserver_binding"]
        (entry,) = [e for e in both if e["name"] == "vs"]
        assert entry["lbvserver_servicegroup_binding"] == [
            {"name": "vs", "servicegroupname": "sg", "servicename": "sg", "stateflag": "536936464"}]
        assert sorted((m["ipv46"], m["port"], m["curstate"]) for m in entry["lbvserver_servicegroupmember_binding"]) \
            == sorted([("127.0.0.1", pacs.port, "UP"), ("10.0.0.22", 104, "DOWN")])
        assert "lbvserver_service_binding" not in entry
        # removing a bound group takes its bindings with it; the vserver goes DOWN, the servers stay
        assert raw.delete(f"{SG}/sg").status_code == 200
        assert raw.get("/nitro/v1/config/lbvserver_servicegroup_binding/vs").json().get(
            "lbvserver_servicegroup_binding") is None
        assert raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]["curstate"] == "DOWN"
        assert raw.get("/nitro/v1/config/server/10.0.0.22").status_code == 200
        assert sim.state.lb_group_bindings == [] and "sg" not in sim.state.sg_members
    finally:
        pacs.close()


def test_unbind_group_from_vserver(raw):
    post(raw, "lbvserver", {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
    post(raw, "servicegroup", {"servicegroupname": "sg", "servicetype": "TCP"})
    post(raw, "lbvserver_servicegroup_binding", {"name": "vs", "servicegroupname": "sg"})
    assert raw.delete("/nitro/v1/config/lbvserver_servicegroup_binding/vs?args=servicegroupname:sg").status_code == 200
    r = raw.delete("/nitro/v1/config/lbvserver_servicegroup_binding/vs?args=servicegroupname:sg")
    assert err(r) == (404, 258)
    assert "lbvserver_servicegroup_binding" not in raw.get(
        "/nitro/v1/config/lbvserver_servicegroup_binding?bulkbindings=yes").json()
