"""The terminator's runtime config: what `serve` runs, derived from a plan.

`dicomtls apply` (BuiltinBackend) and `serve` both derive it with install.prepare(); it is written
to runtime.json in the state dir so that `diff` can compare a plan with what is installed, and
`status` can find the control endpoint. Timeouts and the status port come from the plan's
[builtin] table (engine/plan.py holds their defaults).

Plain dataclasses, not pydantic: the serving process loads this module and no pydantic at all (the
plan is checked by a helper process, bundle.py), which keeps the idle terminator ~20 MB smaller.
from_json() is as strict as the pydantic model was (extra="forbid"): every key known, every value
of its type.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dicomtls.engine import paths
from dicomtls.engine.addresses import host_port

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from dicomtls.engine.plan import Plan

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


_M = TypeVar("_M", bound="DataclassInstance")


def _value(tp: Any, v: Any, where: str) -> Any:
    """v checked against the annotation tp (str, int, float, X | None, list[X], a config dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in typing.get_args(tp):
            return None
        return _value(next(a for a in typing.get_args(tp) if a is not type(None)), v, where)
    if origin is list:
        if not isinstance(v, list):
            raise ValueError(f"{where}: a list expected, got {v!r}")
        return [_value(typing.get_args(tp)[0], x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
        return _build(tp, v, where)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) if tp is float else \
        isinstance(v, tp) and not (tp is int and isinstance(v, bool))
    if not ok:
        raise ValueError(f"{where}: {tp.__name__} expected, got {v!r}")
    return float(v) if tp is float else v


def _build(cls: type[_M], data: Any, where: str) -> _M:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: an object expected")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    extra = set(data) - set(known)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {sorted(extra)}")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _value(hints[name], data[name], f"{where}.{name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"{where}: {name} is missing")
    return cls(**kwargs)


@dataclass
class ListenerConfig:
    name: str
    ip: str
    port: int
    role: str
    service: str
    allowed_calling_aes: list[str] = field(default_factory=list)
    allowed_clients: list[str] = field(default_factory=list)


@dataclass
class MemberConfig:
    host: str
    port: int

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


@dataclass
class ServiceConfig:
    """A PACS: every server it runs on (`members`, in the plan's order); host/port are the first,
    kept so that runtime.json files written before members existed still read (they fill members)."""

    name: str
    host: str
    port: int
    ae_title: str
    members: list[MemberConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [MemberConfig(host=self.host, port=self.port)]


@dataclass
class RuntimeConfig:
    policy: str
    cert_file: str
    key_file: str
    listeners: list[ListenerConfig]
    services: list[ServiceConfig]
    handshake_timeout: float
    connect_timeout: float
    idle_timeout: float
    drain_timeout: float
    health_interval: float
    state_dir: str
    dh_file: str | None = None
    cert_fingerprint: str = ""
    cert_not_after: float = 0.0  # the leaf's notAfter, Unix time (0: unknown, a runtime.json from before)
    status_port: int = 0
    plan_path: str | None = None

    def service(self, name: str) -> ServiceConfig:
        return next(s for s in self.services if s.name == name)

    def listener(self, name: str) -> ListenerConfig:
        return next(v for v in self.listeners if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RuntimeConfig:
        """Strict: a ValueError names the first key that is unknown, missing or of the wrong type."""
        return _build(cls, data, "runtime")

    @classmethod
    def from_json(cls, text: str) -> RuntimeConfig:
        return cls.from_dict(json.loads(text))


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
            return RuntimeConfig.from_json(self.runtime.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_runtime(self, cfg: RuntimeConfig) -> None:
        paths.ensure_private_dir(self.dir)
        tmp = self.runtime.with_name(self.runtime.name + ".tmp")
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
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
