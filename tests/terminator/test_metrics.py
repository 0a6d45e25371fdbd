"""GET /metrics on the terminator's control endpoint (unix socket, and the loopback status_port),
parsed by prometheus-client's own parser: counters move as real associations happen (DCMTK
echoscu), handshake failures are counted by reason, reloads by result, PACS member health and
certificate expiry are there; a flood of 1,000 distinct calling AE titles makes a bounded number
of series."""

from __future__ import annotations

import signal
import socket
import ssl
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dicomtls.engine.terminator.control import query
from dicomtls.engine.terminator.metrics import MAX_CALLING_AE_LABELS, metric_names
from tests.terminator.helpers import (
    LOOPBACK,
    assoc_rq,
    echo_scp,
    echoscu,
    free_port,
    recv_all,
    serve_process,
    tls_connect,
    wait_for,
    write_plan,
)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from the Prometheus text format."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def http_metrics(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode(), r.headers["Content-Type"]


def test_metrics_move_with_real_traffic(tmp_path, tls_files):
    status_port = free_port()
    with echo_scp() as pacs_port:
        port = free_port()
        plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                          [{"name": "PACS", "host": LOOPBACK, "port": pacs_port}],
                          [{"name": "store", "port": port, "service": "PACS"}],
                          builtin={"status_port": status_port, "health_interval": 0.2})
        with serve_process(plan, tmp_path / "home") as sp:
            before, ctype = http_metrics(status_port)
            assert ctype.startswith("text/plain; version="), ctype  # the Prometheus text format
            assert value(before, "dicomtls_associations_total", listener="store", outcome="released",
                         calling_ae="BUTTERFLY") == 0
            assert value(before, "dicomtls_config_generation") == 1
            expiry = value(before, "dicomtls_certificate_expiry_seconds", fingerprint=tls_files.server_fingerprint)
            assert 28 * 86400 < expiry < 31 * 86400  # the test certificate lives 30 days

            for _ in range(2):
                r = echoscu(port)
                assert r.returncode == 0, r.stderr
            wait_for(lambda: len(sp.find("association", outcome="released")) == 2, 10, "two released")
            _plaintext_dicom(port)
            _no_shared_cipher(port)
            wait_for(lambda: len(sp.find("association")) == 4, 10, "four association records")
            sp.proc.send_signal(signal.SIGHUP)
            sp.event("reloaded")
            after, _ = http_metrics(status_port)

    assert value(after, "dicomtls_associations_total", listener="store", outcome="released",
                 calling_ae="BUTTERFLY") == 2
    sent = sum(r["bytes_from_client"] for r in sp.find("association", outcome="released"))
    got = sum(r["bytes_to_client"] for r in sp.find("association", outcome="released"))
    assert value(after, "dicomtls_bytes_total", listener="store", direction="from_client") == sent > 0
    assert value(after, "dicomtls_bytes_total", listener="store", direction="to_client") == got > 0
    assert value(after, "dicomtls_tls_handshake_failures_total", listener="store", reason="plain_dicom") == 1
    assert value(after, "dicomtls_tls_handshake_failures_total", listener="store", reason="cipher") == 1
    assert value(after, "dicomtls_connections_total", listener="store", end="plaintext_dicom") == 1
    assert value(after, "dicomtls_reloads_total", result="ok") == 1
    assert value(after, "dicomtls_config_generation") == 2
    assert value(after, "dicomtls_live_associations", listener="store") == 0
    assert value(after, "dicomtls_pacs_member_up", service="PACS", member=f"{LOOPBACK}:{pacs_port}") == 1
    assert metric_names() <= {name for name, _ in samples(after)}  # every documented series is there


def _plaintext_dicom(port: int) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        s.sendall(assoc_rq())
        recv_all(s)


def _no_shared_cipher(port: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA")  # not in bcp195-nd
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        try:
            ctx.wrap_socket(raw).close()
        except ssl.SSLError:
            pass
        else:
            raise AssertionError("the terminator accepted a cipher outside its policy")


def test_a_flood_of_calling_aes_makes_bounded_series(tmp_path, tls_files):
    port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": free_port()}],
                      [{"name": "store", "port": port, "service": "PACS", "allowed_calling_aes": ["BUTTERFLY"]}],
                      builtin={"health_interval": 3600.0})
    with serve_process(plan, tmp_path / "home") as sp:
        def refused(i: int) -> None:
            with tls_connect(port) as s:
                s.sendall(assoc_rq(calling=f"SCAN{i:05d}"))
                recv_all(s)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(refused, range(1000)))
        wait_for(lambda: len(sp.find("association", end="calling_ae_refused")) == 1000, 60, "1000 refusals")
        text = query(Path(tmp_path / "state" / "control.sock"), 0, "/metrics").decode()

    series = {labels for name, labels in samples(text) if name == "dicomtls_associations_total"}
    aes = {dict(labels)["calling_ae"] for labels in series}
    assert len(series) == len(aes) == MAX_CALLING_AE_LABELS + 1, sorted(aes)
    assert value(text, "dicomtls_associations_total", listener="store", outcome="calling_ae_refused",
                 calling_ae="other") == 1000 - MAX_CALLING_AE_LABELS
    total = sum(v for (name, _), v in samples(text).items() if name == "dicomtls_associations_total")
    assert total == 1000


def test_unknown_paths_get_404(tmp_path, tls_files):
    status_port = free_port()
    plan = write_plan(tmp_path, tls_files.server_cert, tls_files.server_key,
                      [{"name": "PACS", "host": LOOPBACK, "port": free_port()}],
                      [{"name": "store", "port": free_port(), "service": "PACS"}],
                      builtin={"status_port": status_port, "health_interval": 3600.0})
    with serve_process(plan, tmp_path / "home"):
        t = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{status_port}/nope", timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        else:
            raise AssertionError("GET /nope answered 200")
        assert time.monotonic() - t < 5
