"""The terminator's runtime config: what `serve` runs, derived from a plan.

`dicomtls apply` (BuiltinBackend) and `serve` both derive it with install.prepare(); it is written
to runtime.json in the state dir so that `diff` can compare a plan with what is installed, and
`status` can find the control endpoint. Timeouts and the status port come from the plan's
[builtin] table (engine/plan.py holds their defaults).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dicomtls.engine import paths
from dicomtls.engine.plan import Plan, host_port

# Limits that are not plan settings: they protect the process, not the site's policy.
# Live associations (~26 KiB each on a pump loop, up to 512 KiB of buffers while bulk data flows); more get
# a transient reject (2/3/2, local limit exceeded). A Butterfly site has a handful.
MAX_ASSOCIATIONS = 1024
MAX_PENDING = 1024  # TCP connections still in handshake / first-PDU stage; more are closed at once
HALF_CLOSE_IDLE = 60.0  # after one side has closed, the other may stay silent this long
BACKEND_DOWN_CONNECT_TIMEOUT = 0.5  # a backend marked down gets one quick dial, so recovery is seen at once
PROBE_TIMEOUT = 2.0  # health probe connect timeout
# TCP keepalive on both sides of a live association, so a peer that vanished without a word (power,
# network) is noticed in about a minute even while the other side keeps the association busy (the
# idle timeout cannot see that). Probes are empty ACKs.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 15, 10, 4


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListenerConfig(_Model):
    name: str
    ip: str
    port: int
    role: str
    service: str
    allowed_calling_aes: list[str] = Field(default_factory=list)
    allowed_clients: list[str] = Field(default_factory=list)


class MemberConfig(_Model):
    host: str
    port: int

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


class ServiceConfig(_Model):
    """A PACS: every server it runs on (`members`, in the plan's order); host/port are the first,
    kept so that runtime.json files written before members existed still read (they fill members)."""

    name: str
    host: str
    port: int
    ae_title: str
    members: list[MemberConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_member_at_least(self) -> ServiceConfig:
        if not self.members:
            self.members = [MemberConfig(host=self.host, port=self.port)]
        return self


class RuntimeConfig(_Model):
    policy: str
    cert_file: str
    key_file: str
    dh_file: str | None = None
    cert_fingerprint: str = ""
    cert_not_after: float = 0.0  # the leaf's notAfter, Unix time (0: unknown, a runtime.json from before)
    listeners: list[ListenerConfig]
    services: list[ServiceConfig]
    handshake_timeout: float
    connect_timeout: float
    idle_timeout: float
    drain_timeout: float
    health_interval: float
    status_port: int = 0
    state_dir: str
    plan_path: str | None = None

    def service(self, name: str) -> ServiceConfig:
        return next(s for s in self.services if s.name == name)

    def listener(self, name: str) -> ListenerConfig:
        return next(v for v in self.listeners if v.name == name)


def state_dir_for(plan: Plan) -> Path:
    """[builtin] state_dir if the plan sets one (relative to the plan file), else the user state dir."""
    if plan.builtin.state_dir:
        return plan.resolve(plan.builtin.state_dir)
    return paths.state_dir()


class StateFiles:
    """The files the built-in backend keeps in its state dir."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir)
        self.cert = self.dir / "cert.pem"
        self.key = self.dir / "key.pem"  # 0600
        self.dh = self.dir / "dhparams.pem"
        self.runtime = self.dir / "runtime.json"
        self.pid = self.dir / "serve.pid"
        self.control = self.dir / "control.sock"
        self.log = self.dir / "serve.log"  # stderr of a terminator started by `apply` (not under systemd)
        self.plan = self.dir / "plan.toml"  # the applied plan, pointing at cert.pem/key.pem: what the service runs
        self.unit = self.dir / "systemd-unit"  # name of the systemd unit that runs it, if install-service made one

    def read_runtime(self) -> RuntimeConfig | None:
        try:
            return RuntimeConfig.model_validate_json(self.runtime.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_runtime(self, cfg: RuntimeConfig) -> None:
        paths.ensure_private_dir(self.dir)
        tmp = self.runtime.with_name(self.runtime.name + ".tmp")
        tmp.write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.runtime)


def runtime_from_plan(plan: Plan, cert_file: Path, key_file: Path, dh_file: Path | None,
                      fingerprint: str, state_dir: Path, plan_path: Path | None = None,
                      not_after: float = 0.0) -> RuntimeConfig:
    b = plan.builtin
    return RuntimeConfig(
        policy=plan.cipher_policy.profile,
        cert_file=str(cert_file), key_file=str(key_file), dh_file=str(dh_file) if dh_file else None,
        cert_fingerprint=fingerprint, cert_not_after=not_after,
        listeners=[ListenerConfig(name=v.name, ip=v.ip, port=v.port, role=v.role, service=v.service,
                                  allowed_calling_aes=list(v.allowed_calling_aes),
                                  allowed_clients=list(v.allowed_clients)) for v in plan.virtual_server],
        services=[ServiceConfig(name=s.name, host=s.host, port=s.port, ae_title=s.ae_title,
                                members=[MemberConfig(host=m.host, port=m.port) for m in s.targets])
                  for s in plan.service],
        handshake_timeout=b.handshake_timeout, connect_timeout=b.connect_timeout, idle_timeout=b.idle_timeout,
        drain_timeout=b.drain_timeout, health_interval=b.health_interval, status_port=b.status_port,
        state_dir=str(state_dir), plan_path=str(plan_path) if plan_path else None,
    )
