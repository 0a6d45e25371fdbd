"""The sample alert rules (deploy/prometheus/dicomtls-alerts.yml): valid for Prometheus
(`promtool check rules`), firing when they should on synthetic series (`promtool test rules`),
and naming only metrics the terminator really exposes (engine/terminator/metrics.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

from dicomtls.engine.terminator.metrics import metric_names
from tests.terminator.helpers import REPO

RULES = REPO / "deploy" / "prometheus" / "dicomtls-alerts.yml"
PROMTOOL = shutil.which("promtool")
LABELS = 'instance="jump:9464",job="dicomtls"'


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: scripts/bootstrap --test installs the Debian prometheus package"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_the_rules_are_valid_prometheus_rules():
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 6 rules found" in r.stdout


def test_every_expression_names_a_real_metric():
    exprs = re.findall(r"^\s*expr:\s*(.+)$", RULES.read_text(), re.M)
    assert len(exprs) == 6
    known = metric_names() | {"up"}  # `up` is Prometheus's own, per scrape target
    for expr in exprs:
        names = set(re.findall(r"\b((?:dicomtls_)\w+|up)\b(?=\s*[{<>=!\[]|\s*$|\))", expr))
        assert names and names <= known, (expr, names - known)


def test_the_alerts_fire_on_expiry_and_pacs_down(tmp_path):
    test = tmp_path / "alerts-test.yml"
    member = f'{{{LABELS},service="PACS",member="10.0.0.5:104"}}'
    expiry = f'{{{LABELS},fingerprint="AB:CD"}}'
    test.write_text(f"""rule_files:
  - {RULES}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dicomtls_pacs_member_up{member}'
        values: '1 1 0 0 0 0 0'
      - series: 'dicomtls_certificate_expiry_seconds{expiry}'
        values: '864000x120'
    alert_rule_test:
      - eval_time: 1m
        alertname: DicomTlsPacsMemberDown
        exp_alerts: []
      - eval_time: 5m
        alertname: DicomTlsPacsMemberDown
        exp_alerts:
          - exp_labels: {{severity: critical, instance: "jump:9464", job: dicomtls, service: PACS, member: "10.0.0.5:104"}}
            exp_annotations:
              summary: "PACS PACS server 10.0.0.5:104 is down (seen from jump:9464)"
              description: "Butterfly's studies are refused with A-ASSOCIATE-RJ (transient) while no server of the PACS answers."
      - eval_time: 30m
        alertname: DicomTlsCertificateExpiresSoon
        exp_alerts: []
      - eval_time: 90m
        alertname: DicomTlsCertificateExpiresSoon
        exp_alerts:
          - exp_labels: {{severity: warning, instance: "jump:9464", job: dicomtls, fingerprint: "AB:CD"}}
            exp_annotations:
              summary: "DICOM-TLS certificate on jump:9464 expires in 10d 0h 0m 0s"
              description: "Renew it (dicomtls, then Replace the certificate; or dicomtls apply with the new pair)."
      - eval_time: 90m
        alertname: DicomTlsCertificateExpiresVerySoon
        exp_alerts: []
""")
    r = promtool("test", "rules", str(test))
    assert r.returncode == 0, r.stdout + r.stderr
