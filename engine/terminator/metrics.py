"""Prometheus metrics of one terminator, in the text exposition format, made by prometheus-client
(https://prometheus.github.io/client_python/), served at GET /metrics on the control endpoint.

Counters move when an association (or a refused connection) ends, never per byte, so the data path
(pump.py) carries no metrics work. Gauges (live associations, PACS member health, seconds to
certificate expiry) are read from the terminator's state at scrape time by a custom collector
(https://prometheus.github.io/client_python/collector/custom/).

Label values are bounded, as the Prometheus naming guide asks ("do not use labels to store
dimensions with high cardinality", https://prometheus.io/docs/practices/naming/#labels): listener
and service names come from the plan; reasons and outcomes from fixed lists; calling AE titles are
the plan's allowed_calling_aes plus the first MAX_CALLING_AE_LABELS others seen, every further
one counted as "other", so a scanner trying thousands of AE titles cannot blow up the series.

The metric names are the one home for them: the sample alert rules (deploy/prometheus) use these.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Iterable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from dicomtls.engine.addresses import host_port

if TYPE_CHECKING:
    from dicomtls.engine.terminator.server import Terminator

MAX_CALLING_AE_LABELS = 20
OTHER_AE = "other"
NO_AE = "none"  # refused before an A-ASSOCIATE-RQ arrived

PREFIX = "dicomtls"
ASSOCIATIONS = f"{PREFIX}_associations"  # a counter: exposed as dicomtls_associations_total
BYTES = f"{PREFIX}_bytes"
HANDSHAKE_FAILURES = f"{PREFIX}_tls_handshake_failures"
CONNECTIONS = f"{PREFIX}_connections"
RELOADS = f"{PREFIX}_reloads"
LIVE = f"{PREFIX}_live_associations"
MEMBER_UP = f"{PREFIX}_pacs_member_up"
CERT_EXPIRY = f"{PREFIX}_certificate_expiry_seconds"
GENERATION = f"{PREFIX}_config_generation"
HANDSHAKE_REASONS = ("protocol", "cipher", "certificate", "timeout", "closed", "plain_dicom", "not_tls", "other")
# Ends before any A-ASSOCIATE-RQ: counted as connections refused, not associations.
_BEFORE_ASSOCIATION = {"client_not_allowed", "handshake_timeout", "tls_handshake_failed", "plaintext_dicom",
                       "not_tls", "closed_before_associate", "too_many_pending"}

EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST


class AeLabels:
    """Calling AE title -> a bounded label value."""

    def __init__(self, limit: int = MAX_CALLING_AE_LABELS) -> None:
        self.limit = limit
        self.allowed: set[str] = set()
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, ae: str | None) -> str:
        if not ae:
            return NO_AE
        if ae in self.allowed or ae in self.seen:
            return ae
        with self._lock:
            if len(self.seen) < self.limit:
                self.seen.add(ae)
                return ae
        return OTHER_AE


class Metrics:
    """The registry of one terminator (not the process-global one: tests run several in one process)."""

    def __init__(self, term: Terminator) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ae = AeLabels()
        self.associations = Counter(ASSOCIATIONS, "Associations that ended, by listener, outcome and calling AE "
                                    "(outcome: the DICOM end, or the refusal)", ["listener", "outcome", "calling_ae"],
                                    registry=self.registry)
        self.bytes = Counter(BYTES, "Bytes forwarded, counted when each association ends",
                             ["listener", "direction"], registry=self.registry)
        self.handshakes = Counter(HANDSHAKE_FAILURES, "Connections that failed before TLS was up, by reason",
                                  ["listener", "reason"], registry=self.registry)
        self.connections = Counter(CONNECTIONS, "Connections refused before an A-ASSOCIATE-RQ, by reason",
                                   ["listener", "end"], registry=self.registry)
        self.reloads = Counter(RELOADS, "Reloads of the configuration, by result", ["result"], registry=self.registry)
        self.registry.register(_StateCollector(term))
        self.allow(term.gen.config)

    def allow(self, config: Any) -> None:
        """The plan's allowed calling AEs always get their own label."""
        self.ae.allowed = {ae for lc in config.listeners for ae in lc.allowed_calling_aes}

    def handshake_failed(self, listener: str, reason: str) -> None:
        self.handshakes.labels(listener, reason if reason in HANDSHAKE_REASONS else "other").inc()

    def association_ended(self, rec: dict[str, Any]) -> None:
        listener, end = rec.get("listener", ""), rec.get("end", "")
        if "calling_ae" not in rec or end in _BEFORE_ASSOCIATION:
            self.connections.labels(listener, end if end in _BEFORE_ASSOCIATION else "other").inc()
            return
        outcome = (rec.get("outcome") or end).split(" ", 1)[0]  # "rejected_by_pacs 1/2/3" -> rejected_by_pacs
        self.associations.labels(listener, outcome, self.ae.label(rec.get("calling_ae"))).inc()
        if "bytes_from_client" in rec:
            self.bytes.labels(listener, "from_client").inc(rec["bytes_from_client"])
            self.bytes.labels(listener, "to_client").inc(rec.get("bytes_to_client", 0))

    def reloaded(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read from the terminator at scrape time (the event loop's thread: no locking needed)."""

    def __init__(self, term: Terminator) -> None:
        self.term = term

    def describe(self) -> Iterable[Metric]:
        return []  # names are dynamic per scrape; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        term = self.term
        live = GaugeMetricFamily(LIVE, "Associations live now, by listener", labels=["listener"])
        for name in list(term.listeners):
            live.add_metric([name], sum(1 for a in list(term.live.values()) if a.listener == name))
        yield live
        up = GaugeMetricFamily(MEMBER_UP, "PACS server health: 1 up, 0 down (absent until first probed)",
                               labels=["service", "member"])
        for h in list(term.health.values()):
            if h.state in ("up", "down"):
                up.add_metric([h.service, host_port(h.host, h.port)], 1.0 if h.state == "up" else 0.0)
        yield up
        not_after = term.gen.config.cert_not_after
        if not_after:
            expiry = GaugeMetricFamily(CERT_EXPIRY, "Seconds until the served certificate expires",
                                       labels=["fingerprint"])
            expiry.add_metric([term.gen.config.cert_fingerprint], not_after - time.time())
            yield expiry
        yield GaugeMetricFamily(GENERATION, "Configuration generation (1 at start, +1 per reload)",
                                value=term.gen.number)


def metric_names() -> set[str]:
    """Every series name this module exposes (counters with _total), for the alert-rule check."""
    counters = {ASSOCIATIONS, BYTES, HANDSHAKE_FAILURES, CONNECTIONS, RELOADS}
    return {f"{c}_total" for c in counters} | {LIVE, MEMBER_UP, CERT_EXPIRY, GENERATION}
