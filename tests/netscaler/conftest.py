"""Shared pieces for the NetScaler tests: a NITRO simulator on loopback, a test PEM pair, plans."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import httpx
import pytest

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.netscaler import NetScalerBackend
from dicomtls.engine.backends.netscaler.client import NitroClient
from dicomtls.engine.ciphers import POLICIES
from dicomtls.engine.plan import Plan, load_plan
from dicomtls.engine.rehearsal.nitro_sim import SimHandle, start_in_thread
from dicomtls.engine.rehearsal.pairs import make_self_signed

# Distinctive, so a grep for it anywhere (logs, plan, messages) cannot match by accident.
PASSWORD = "Pw-7f3a9c-NITRO-secret"
CERT_NAME = "Butterfly_SCP_Cert.pem"
KEY_NAME = "Butterfly_SCP_key.pem"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own config/state/log dirs."""
    h = tmp_path / "home"
    monkeypatch.setenv("DICOMTLS_HOME", str(h))
    return h


@pytest.fixture(scope="session")
def pem_pair(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("pem")
    make_self_signed(d / CERT_NAME, d / KEY_NAME, common_name="butterfly-test")
    return d / CERT_NAME, d / KEY_NAME


@pytest.fixture(scope="session")
def other_pem_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A second certificate (a renewal, or someone else's) with the same file names."""
    d = tmp_path_factory.mktemp("pem2")
    make_self_signed(d / CERT_NAME, d / KEY_NAME, common_name="butterfly-renewed")
    return d / CERT_NAME, d / KEY_NAME


@pytest.fixture
def sim():
    handle = start_in_thread(password=PASSWORD)
    yield handle
    handle.stop()


@pytest.fixture
def workdir(tmp_path, pem_pair) -> Path:
    """A folder with the plan's PEM files beside it, as the wizard leaves them."""
    d = tmp_path / "site"
    d.mkdir()
    shutil.copy(pem_pair[0], d / CERT_NAME)
    shutil.copy(pem_pair[1], d / KEY_NAME)
    return d


def plan_text(url: str, fingerprint: str | None, *, worklist: bool = False, worklist_service: str = "Qlink-DICOM",
              pacs_host: str = "10.0.0.20", pacs_port: int = 104, extra_service: bool = False,
              profile: str = "bcp195-nd", members: list[tuple[str, int]] | None = None,
              partition: str | None = None, cert: str = CERT_NAME, key: str = KEY_NAME) -> str:
    """The seed's plan; with `members`, the PACS service lists those servers (a NetScaler service group)."""
    text = f"""backend = "netscaler"

[certificate]
name = "Butterfly-Cert-Key-Pair"
cert = "{cert}"
key = "{key}"

[cipher_policy]
name = "TLS-1.2-Only"
profile = "{profile}"

[[service]]
name = "Qlink-DICOM"
ae_title = "QLINK"
"""
    if members:
        text += "members = [" + ", ".join(f'{{ host = "{h}", port = {p} }}' for h, p in members) + "]\n"
    else:
        text += f'host = "{pacs_host}"\nport = {pacs_port}\n'
    if extra_service:
        text += f"""
[[service]]
name = "Qlink-MWL"
host = "{pacs_host}"
port = {pacs_port + 1}
ae_title = "QLINK"
"""
    text += """
[[virtual_server]]
name = "Butterfly-DICOM-TLS"
ip = "10.0.0.10"
port = 2761
role = "store"
service = "Qlink-DICOM"
"""
    if worklist:
        text += f"""
[[virtual_server]]
name = "Butterfly-DICOM-TLS-MWL"
ip = "10.0.0.10"
port = 2762
role = "worklist"
service = "{worklist_service}"
"""
    text += f"""
[netscaler]
url = "{url}"
username = "nsroot"
password_env = "DICOMTLS_NITRO_PASSWORD"
"""
    if fingerprint:
        text += f'fingerprint = "sha256:{fingerprint}"\n'
    if partition:
        text += f'partition = "{partition}"\n'
    return text


def write_plan(workdir: Path, sim: SimHandle, name: str = "plan.toml", **kw) -> Path:
    path = workdir / name
    path.write_text(plan_text(sim.url, sim.fingerprint, **kw))
    return path


def backend(plan: Plan | Path, **opts) -> NetScalerBackend:
    p = plan if isinstance(plan, Plan) else load_plan(plan)
    return NetScalerBackend(p, BackendOptions(password=opts.pop("password", PASSWORD), **opts))


def run_apply(plan_path: Path, **opts):
    """diff + apply as the CLI does; returns (diff, result)."""
    plan = load_plan(plan_path)
    b = backend(plan, **opts)
    try:
        diff = b.diff(plan)
        result = b.apply(plan, diff)
    finally:
        b.close()
    return diff, result


class TcpListener:
    """A loopback TCP port that accepts and holds connections: a PACS for the simulator's monitor."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)

    def close(self) -> None:
        try:  # wakes the thread blocked in accept(); a bare close() would leave the port listening until it returns
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)
        for c in self._conns:
            c.close()


def unused_port() -> int:
    """A loopback port that nothing listens on (bound without listen(), then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def raw(sim):
    """A logged-in raw session: (httpx.Client, token)."""
    c = httpx.Client(base_url=sim.url, verify=False, headers={"Content-Type": "application/json"})
    r = c.post("/nitro/v1/config/login", content=json.dumps({"login": {"username": "nsroot", "password": PASSWORD}}))
    assert r.status_code == 201
    token = r.json()["sessionid"]
    c.cookies.clear()
    c.headers["Cookie"] = f"NITRO_AUTH_TOKEN={token}"
    yield c
    c.close()


def post(c, resource, body, action=None, **kw):
    return c.post(f"/nitro/v1/config/{resource}" + (f"?action={action}" if action else ""),
                  content=json.dumps({resource: body}), **kw)


# --- reading the ADC back ---------------------------------------------------------------------------------

STORE, MWL = "Butterfly-DICOM-TLS", "Butterfly-DICOM-TLS-MWL"
PAIR = "Butterfly-Cert-Key-Pair"


def reader(sim) -> NitroClient:
    return NitroClient(sim.url, "nsroot", PASSWORD, fingerprint=sim.fingerprint)


def writes_since(sim, n: int) -> list[tuple[str, str]]:
    return [(e.method, e.resource) for e in sim.log[n:] if e.write]


def check_tls_side(ns, *, vservers, policy: str, cipher_group: str, bound_to) -> None:
    """The cipher group in order, then each vserver: SSL_TCP on its port, bound to the PACS (checked by
    bound_to(ns, vserver)), the pair and only our cipher group (DEFAULT unbound), the policy's protocols
    only; and the configuration saved. A vserver not in `vservers` must not exist."""
    rows = ns.get("sslcipher_sslciphersuite_binding", cipher_group)
    assert [r["ciphername"] for r in sorted(rows, key=lambda r: int(r["cipherpriority"]))] == \
        POLICIES[policy].netscaler_ciphers
    for vs_name, port in ((STORE, 2761), (MWL, 2762)):
        if vs_name not in vservers:
            assert ns.get("lbvserver", vs_name, missing_ok=True) == []
            continue
        vs = ns.get("lbvserver", vs_name)[0]
        assert (vs["servicetype"], vs["ipv46"], int(vs["port"])) == ("SSL_TCP", "10.0.0.10", port)
        bound_to(ns, vs_name)
        sb = ns.get("sslvserver_binding", vs_name)[0]
        assert [b["certkeyname"] for b in sb["sslvserver_sslcertkey_binding"]] == [PAIR]
        assert [b["ciphername"] for b in sb["sslvserver_sslcipher_binding"]] == [cipher_group]  # DEFAULT unbound
        flags = ns.get("sslvserver", vs_name)[0]
        assert {k: flags[k] for k in ("ssl3", "tls1", "tls11", "tls12", "tls13")} == \
            POLICIES[policy].netscaler_protocol_flags()
    assert ns.get("nsconfig")[0]["configchanged"] is False  # saved
