"""The NITRO simulator against nitro.md, over real HTTP(S): status lines, error codes, shapes, state rules.

Raw httpx (not our client) so that the wire format itself is what is checked.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl

import httpx
import pytest

from dicomtls.engine.rehearsal.nitro_sim import start_in_thread

from .conftest import PASSWORD, TcpListener, post


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_login_sets_cookie_and_returns_hash_prefixed_session(sim):
    with httpx.Client(base_url=sim.url, verify=False) as c:
        r = c.post("/nitro/v1/config/login", json={"login": {"username": "nsroot", "password": PASSWORD}})
    assert r.status_code == 201
    body = r.json()
    assert body["errorcode"] == 0 and body["severity"] == "NONE"
    assert body["sessionid"].startswith("##")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("NITRO_AUTH_TOKEN=%23%23") and "path=/nitro/v1" in cookie


def test_wrong_password_is_401_354(sim):
    with httpx.Client(base_url=sim.url, verify=False) as c:
        r = c.post("/nitro/v1/config/login", json={"login": {"username": "nsroot", "password": "nope"}})
    assert r.status_code == 401
    assert r.json() == {"errorcode": 354, "message": "Invalid username or password", "severity": "ERROR"}


def test_session_variants_and_expiry_444(sim, raw):
    token = raw.headers["Cookie"].split("=", 1)[1]
    with httpx.Client(base_url=sim.url, verify=False) as c:
        # URL-encoded token, the `sessionid` cookie name, a request Set-Cookie header, X-NITRO-USER/PASS
        for headers in ({"Cookie": f"NITRO_AUTH_TOKEN={token.replace('#', '%23')}"},
                        {"Cookie": f"sessionid={token}"}, {"Set-Cookie": f"NITRO_AUTH_TOKEN={token}"},
                        {"X-NITRO-USER": "nsroot", "X-NITRO-PASS": PASSWORD}):
            assert c.get("/nitro/v1/config/nsfeature", headers=headers).status_code == 200, headers
        assert c.get("/nitro/v1/config/nsfeature",
                     headers={"X-NITRO-USER": "nsroot", "X-NITRO-PASS": "bad"}).json()["errorcode"] == 354
    sim.state.expire_sessions()
    r = raw.get("/nitro/v1/config/nsfeature")
    assert r.status_code == 401
    assert r.json()["errorcode"] == 444
    assert r.json()["message"] == "Session expired or killed. Please login again"


def test_features_off_at_start_and_returned_as_object(raw):
    body = raw.get("/nitro/v1/config/nsfeature").json()
    assert isinstance(body["nsfeature"], dict)
    assert body["nsfeature"]["feature"] == [] and body["nsfeature"]["lb"] is False
    assert post(raw, "nsfeature", {"feature": ["lb", "SSLOffload"]}, "enable").status_code == 200
    body = raw.get("/nitro/v1/config/nsfeature").json()["nsfeature"]
    assert body["feature"] == ["LB", "SSL"] and body["ssl"] is True


def test_systemfile_never_overwrites(raw, pem_pair):
    item = {"filename": "a.pem", "filelocation": "/nsconfig/ssl/", "filecontent": b64(b"one"), "fileencoding": "BASE64"}
    r = post(raw, "systemfile", item)
    assert r.status_code == 201 and r.content == b""  # "201 Created, no JSON response"
    r = post(raw, "systemfile", dict(item, filecontent=b64(b"two")))
    assert r.status_code == 409
    assert r.json()["errorcode"] == 1642
    assert r.json()["message"] == "Cannot create output file. File already exists"
    got = raw.get("/nitro/v1/config/systemfile/a.pem?args=filelocation:%2Fnsconfig%2Fssl").json()["systemfile"][0]
    assert base64.b64decode(got["filecontent"]) == b"one" and got["filelocation"] == "/nsconfig/ssl"
    listing = raw.get("/nitro/v1/config/systemfile?args=filelocation:%2Fnsconfig%2Fssl").json()["systemfile"]
    assert "a.pem" in {f["filename"] for f in listing} and all("filecontent" not in f for f in listing)
    assert raw.delete("/nitro/v1/config/systemfile/a.pem?args=filelocation:%2Fnsconfig%2Fssl").status_code == 200
    r = raw.get("/nitro/v1/config/systemfile/a.pem?args=filelocation:%2Fnsconfig%2Fssl")
    assert r.json()["errorcode"] == 1155


def test_sslcertkey_refuses_missing_file_and_mismatched_key(raw, pem_pair, other_pem_pair):
    r = post(raw, "sslcertkey", {"certkey": "ck", "cert": "nope.pem", "key": "nope.key"})
    assert (r.status_code, r.json()["errorcode"]) == (599, 1647)
    assert r.reason_phrase == "Netscaler specific error"
    files = [("c.pem", pem_pair[0]), ("k.pem", pem_pair[1]), ("k2.pem", other_pem_pair[1])]
    for name, path in files:
        post(raw, "systemfile", {"filename": name, "filelocation": "/nsconfig/ssl", "filecontent": b64(path.read_bytes()),
                                 "fileencoding": "BASE64"})
    r = post(raw, "sslcertkey", {"certkey": "ck", "cert": "c.pem", "key": "k2.pem"})
    assert (r.status_code, r.json()["errorcode"]) == (599, 1538)
    assert r.json()["message"] == "Certificate and private key do not match"
    assert post(raw, "sslcertkey", {"certkey": "ck", "cert": "c.pem", "key": "/nsconfig/ssl/k.pem"}).status_code == 201
    r = post(raw, "sslcertkey", {"certkey": "ck", "cert": "c.pem", "key": "k.pem"})
    assert (r.status_code, r.json()["errorcode"]) == (409, 273)
    row = raw.get("/nitro/v1/config/sslcertkey/ck").json()["sslcertkey"][0]
    assert row["status"] == "Valid" and int(row["serial"], 16) > 0
    assert "password" not in row and "passplain" not in row
    assert isinstance(row["notificationperiod"], str)  # numbers as strings, as on real firmware


def test_ssl_tcp_vserver_comes_with_sslvserver_default_bound_and_down_until_bound(raw, sim, pem_pair):
    pacs = TcpListener()
    try:
        post(raw, "nsfeature", {"feature": ["LB", "SSL"]}, "enable")
        assert post(raw, "lbvserver", {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10",
                                       "port": 2761}).status_code == 201
        ssl_binding = raw.get("/nitro/v1/config/sslvserver_binding/vs").json()["sslvserver_binding"][0]
        assert [b["ciphername"] for b in ssl_binding["sslvserver_sslcipher_binding"]] == ["DEFAULT"]
        assert "sslvserver_sslcertkey_binding" not in ssl_binding  # empty collections omit the key
        vs = raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]
        assert vs["curstate"] == "DOWN" and vs["totalservices"] == "0" and vs["value"] == "Certkey not bound"
        assert raw.get("/nitro/v1/config/lbvserver_service_binding/vs").json() == {
            "errorcode": 0, "message": "Done", "severity": "NONE"}
        post(raw, "service", {"name": "svc", "ip": "127.0.0.1", "servicetype": "TCP", "port": pacs.port,
                              "monconnectionclose": "RESET"})
        assert raw.get("/nitro/v1/config/server/127.0.0.1").status_code == 200  # auto-created server
        post(raw, "lbvserver_service_binding", {"name": "vs", "servicename": "svc"})
        assert raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]["curstate"] == "DOWN"
        for name, path in (("c.pem", pem_pair[0]), ("k.pem", pem_pair[1])):
            post(raw, "systemfile", {"filename": name, "filelocation": "/nsconfig/ssl",
                                     "filecontent": b64(path.read_bytes())})
        post(raw, "sslcertkey", {"certkey": "ck", "cert": "c.pem", "key": "k.pem"})
        r = raw.put("/nitro/v1/config/sslvserver_sslcertkey_binding",  # PUT adds a binding too
                    content=json.dumps({"sslvserver_sslcertkey_binding": {"vservername": "vs", "certkeyname": "ck"}}))
        assert r.status_code == 201
        vs = raw.get("/nitro/v1/config/lbvserver/vs").json()["lbvserver"][0]
        assert vs["curstate"] == "UP" and vs["activeservices"] == "1"
        svc = raw.get("/nitro/v1/config/service/svc?attrs=svrstate,port").json()["service"][0]
        assert svc == {"svrstate": "UP", "port": pacs.port}
    finally:
        pacs.close()


def test_non_ssl_vserver_refuses_ssl_bindings(raw):
    post(raw, "lbvserver", {"name": "plain", "servicetype": "TCP", "ipv46": "10.0.0.11", "port": 104})
    r = post(raw, "sslvserver_sslcipher_binding", {"vservername": "plain", "ciphername": "DEFAULT"})
    assert (r.status_code, r.json()["errorcode"]) == (599, 1544)


def test_errors_258_1095_1091_and_unknown_attribute_278(raw):
    r = raw.get("/nitro/v1/config/lbvserver/ghost")
    assert (r.status_code, r.json()["errorcode"], r.json()["message"]) == (404, 258, "No such resource [name, ghost]")
    r = post(raw, "lbvserver", {"servicetype": "SSL_TCP"})
    assert (r.status_code, r.json()["errorcode"]) == (400, 1095)
    post(raw, "lbvserver", {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
    r = raw.delete("/nitro/v1/config/sslvserver_sslcipher_binding/vs?args=ciphername:")
    assert (r.status_code, r.json()["errorcode"]) == (400, 1091)
    r = post(raw, "service", {"name": "s", "ip": "10.0.0.20", "servicetype": "TCP", "port": 104, "colour": "red"})
    assert (r.status_code, r.json()["errorcode"]) == (599, 278)
    assert r.json()["message"] == "Invalid argument [colour]"


def test_duplicate_ip_port_refused(raw):
    post(raw, "lbvserver", {"name": "a", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
    r = post(raw, "lbvserver", {"name": "b", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
    assert (r.status_code, r.json()["errorcode"]) == (409, 273)


def test_bulk_array_payload_and_207(raw):
    r = post(raw, "sslcipher", {"ciphergroupname": "g"})
    assert r.status_code == 201
    r = post(raw, "sslcipher_sslciphersuite_binding",
             [{"ciphergroupname": "g", "ciphername": "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256", "cipherpriority": 1},
              {"ciphergroupname": "g", "ciphername": "TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "cipherpriority": 2}])
    assert r.status_code == 201
    rows = raw.get("/nitro/v1/config/sslcipher_sslciphersuite_binding/g").json()["sslcipher_sslciphersuite_binding"]
    assert [(x["ciphername"], x["cipherpriority"]) for x in rows] == [
        ("TLS1.2-ECDHE-RSA-AES128-GCM-SHA256", "1"), ("TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "2")]
    r = post(raw, "sslcipher_sslciphersuite_binding",
             [{"ciphergroupname": "g", "ciphername": "TLS1.2-DHE-RSA-AES128-GCM-SHA256"},
              {"ciphergroupname": "g", "ciphername": "NO-SUCH-CIPHER"}], headers={"X-NITRO-ONERROR": "rollback"})
    assert r.status_code == 207 and r.reason_phrase == "Multi Status"
    assert r.json()["errorcode"] == 1243 and [x["errorcode"] for x in r.json()["response"]] == [0, 3621]
    rows = raw.get("/nitro/v1/config/sslcipher_sslciphersuite_binding/g").json()["sslcipher_sslciphersuite_binding"]
    assert len(rows) == 2  # rolled back
    # a group with nothing bound answers without the key; a missing one with 258
    post(raw, "sslcipher", {"ciphergroupname": "empty"})
    assert "sslcipher_sslciphersuite_binding" not in raw.get(
        "/nitro/v1/config/sslcipher_sslciphersuite_binding/empty").json()
    assert raw.get("/nitro/v1/config/sslcipher_sslciphersuite_binding/nogroup").json()["errorcode"] == 258


def test_default_ssl_profile_refuses_cipher_binding_and_flags():
    with start_in_thread(password=PASSWORD, default_profile=True) as h:
        with httpx.Client(base_url=h.url, verify=False) as c:
            c.headers["X-NITRO-USER"], c.headers["X-NITRO-PASS"] = "nsroot", PASSWORD
            post(c, "lbvserver", {"name": "vs", "servicetype": "SSL_TCP", "ipv46": "10.0.0.10", "port": 2761})
            r = c.delete("/nitro/v1/config/sslvserver_sslcipher_binding/vs?args=ciphername:DEFAULT")
            assert (r.status_code, r.json()["errorcode"]) == (599, 3740)
            assert "set ssl parameter -defaultProfile D" in r.json()["message"]
            r = c.put("/nitro/v1/config/sslvserver/vs", json={"sslvserver": {"vservername": "vs", "tls1": "DISABLED"}})
            assert (r.status_code, r.json()["errorcode"]) == (599, 3679)
            assert c.get("/nitro/v1/config/sslparameter").json()["sslparameter"]["defaultprofile"] == "ENABLED"


def test_double_encoded_names_in_path(raw):
    post(raw, "sslcipher", {"ciphergroupname": "a group/with#odd chars"})
    r = raw.get("/nitro/v1/config/sslcipher/a%2520group%252Fwith%2523odd%2520chars")
    assert r.json()["sslcipher"][0]["ciphergroupname"] == "a group/with#odd chars"


def test_status_line_reason_phrases_on_the_wire(sim):
    """Go's client switches on the literal status line: check the bytes, not httpx's idea of them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=ctx, timeout=5)
    body = json.dumps({"sslcertkey": {"certkey": "x", "cert": "none.pem"}})
    conn.request("POST", "/nitro/v1/config/sslcertkey", body=body,
                 headers={"X-NITRO-USER": "nsroot", "X-NITRO-PASS": PASSWORD, "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert (resp.status, resp.reason) == (599, "Netscaler specific error")
    resp.read()
    conn.close()


def test_request_log_holds_no_bodies(sim, raw):
    post(raw, "systemfile", {"filename": "s.pem", "filelocation": "/nsconfig/ssl", "filecontent": b64(b"SECRETKEY")})
    text = repr(sim.log)
    assert PASSWORD not in text and b64(b"SECRETKEY") not in text
    assert [e.resource for e in sim.log][:2] == ["login", "systemfile"]
    assert sim.log[0].auth == "login" and sim.log[1].auth == "session" and sim.log[1].write


def test_die_after_writes_then_restart_keeps_running_config(sim, raw):
    sim.state.faults.die_after_writes = 2
    post(raw, "sslcipher", {"ciphergroupname": "one"})
    with pytest.raises(httpx.HTTPError):
        post(raw, "sslcipher", {"ciphergroupname": "two"})  # done, but no answer
    assert sim.wait_dead()
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.url + "/nitro/v1/config/nsfeature", verify=False)
    sim.restart()
    with httpx.Client(base_url=sim.url, verify=False,
                      headers={"X-NITRO-USER": "nsroot", "X-NITRO-PASS": PASSWORD}) as c:
        names = {g["ciphergroupname"] for g in c.get("/nitro/v1/config/sslcipher").json()["sslcipher"]}
    assert {"one", "two"} <= names


def test_http_mode_and_loopback_only():
    with start_in_thread(tls=False, password=PASSWORD) as h:
        assert h.url.startswith("http://") and h.fingerprint is None
        r = httpx.post(h.url + "/nitro/v1/config/login", json={"login": {"username": "nsroot", "password": PASSWORD}})
        assert r.status_code == 201
    with pytest.raises(ValueError):
        start_in_thread(host="0.0.0.0")
