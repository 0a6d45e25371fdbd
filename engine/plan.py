"""The plan: one TOML file that describes a deployment, and the one home of ports and AE defaults.

It is the contract between the wizard, the headless CLI, the backends and the user's own
automation (README: "The plan file"). Paths inside are relative to the plan file. Secrets never
go in it: the NetScaler password is named by an environment variable, a key passphrase likewise.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from dicomtls.engine.addresses import host_port
from dicomtls.engine.ciphers import DEFAULT_POLICY, POLICIES, Policy
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan_errors import at, plan_error

# --- defaults: the one place for each ------------------------------------------------------------
ROLE_PORTS: dict[str, int] = {"store": 2761, "worklist": 2762}
DEFAULT_CALLING_AE = "BUTTERFLY"
DEFAULT_CALLED_AE = "ANY-SCP"  # DCMTK's default; a real PACS usually wants its own AE title
DEFAULT_WORKLIST_MODALITY = "US"  # Butterfly iQ is an ultrasound: its worklist query asks for modality US
DEFAULT_CERT_NAME = "Butterfly-Cert-Key-Pair"
DEFAULT_CERT_FILE = "Butterfly_SCP_Cert.pem"
DEFAULT_KEY_FILE = "Butterfly_SCP_key.pem"
DEFAULT_CIPHER_GROUP = "TLS-1.2-Only"
DEFAULT_VSERVER_NAMES: dict[str, str] = {"store": "Butterfly-DICOM-TLS", "worklist": "Butterfly-DICOM-TLS-MWL"}
DEFAULT_PACS_PORT = 104
DEFAULT_SSL_PROFILE = "DICOM-TLS-Profile"  # [netscaler] ssl_profile
DEFAULT_PASSWORD_ENV = "DICOMTLS_NITRO_PASSWORD"

AE_MAX = 16
# DICOM default character repertoire (PS3.5 6.1.2): printable G0 ASCII; AE excludes backslash.
_AE_RE = re.compile(r"^[\x20-\x7e]+$")
# NetScaler object names: start with a letter, digit or underscore; <= 127 characters.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_#.:@= -]{0,126}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_ae_title(value: str) -> str:
    """Validate an AE title; returns it without the (insignificant) surrounding spaces."""
    if not isinstance(value, str):
        raise ValueError("must be text")
    if value.strip() == "":
        raise ValueError("is empty or all spaces; give the AE title, e.g. BUTTERFLY")
    v = value.strip()
    if len(v) > AE_MAX:
        raise ValueError(f"is {len(v)} characters; DICOM AE titles have at most {AE_MAX}, shorten it")
    if "\\" in v:
        raise ValueError("contains a backslash, which DICOM forbids in AE titles; remove it")
    if not _AE_RE.match(v):
        raise ValueError("contains characters outside DICOM's default repertoire (plain ASCII letters, "
                         "digits, spaces and punctuation); remove them")
    return v


def check_port(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number from 1 to 65535")
    if not 1 <= value <= 65535:
        raise ValueError("must be from 1 to 65535")
    return value


def check_host(value: str) -> str:
    """An IPv4/IPv6 address or an RFC 1123 host name."""
    v = value.strip()
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", v):
        raise ValueError("looks like an IPv4 address but is not a valid one; check each of the four numbers is 0-255")
    labels = v.rstrip(".").split(".")
    if not v or len(v) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError("is neither an IP address nor a valid host name (letters, digits, hyphens, dots)")
    return v


def check_ip(value: str) -> str:
    v = value.strip()
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise ValueError("is not an IP address; give an IPv4 address like 10.0.0.20, or 0.0.0.0 for all") from None


def check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError("must start with a letter, digit or underscore and use only letters, digits and "
                         "_ # . : @ = - or spaces (at most 127 characters)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Certificate(_Model):
    name: str = DEFAULT_CERT_NAME
    cert: str = DEFAULT_CERT_FILE
    key: str = DEFAULT_KEY_FILE
    passphrase_env: str | None = None  # the key's passphrase is read from this variable, never stored

    _name = field_validator("name")(check_name)


class CipherPolicy(_Model):
    name: str = DEFAULT_CIPHER_GROUP
    profile: str = DEFAULT_POLICY

    _name = field_validator("name")(check_name)

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        if v not in POLICIES:
            raise ValueError(f"is not a known policy; use one of {', '.join(POLICIES)}")
        return v


class Member(_Model):
    """One server of a PACS that listens on several addresses (a cluster, or a primary and a standby)."""

    host: str
    port: int = DEFAULT_PACS_PORT

    _host = field_validator("host")(check_host)
    _port = field_validator("port", mode="before")(check_port)

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


class Service(_Model):
    """A DICOM server that receives the studies. With `members`, several servers share the AE title:
    the NetScaler backend makes a service group of them, the built-in terminator balances across the
    healthy ones. `host`/`port` are then the first member (and may be left out)."""

    name: str
    host: str = ""
    port: int = DEFAULT_PACS_PORT
    ae_title: str
    members: list[Member] = Field(default_factory=list)

    _name = field_validator("name")(check_name)
    _port = field_validator("port", mode="before")(check_port)
    _ae = field_validator("ae_title")(check_ae_title)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return check_host(v) if v.strip() else ""

    @model_validator(mode="after")
    def _targets(self) -> Service:
        if not self.members:
            if not self.host:
                raise at("host", "add `host = \"10.0.0.5\"` (the PACS's IP address or host name), or a `members` list",
                         kind="missing")
            return self
        seen = set()
        for i, m in enumerate(self.members):
            if (m.host, m.port) in seen:
                raise at(f"members[{i}]", "is listed twice; remove one", m.address)
            seen.add((m.host, m.port))
        first = self.members[0]
        if not self.host:
            # Set without re-validating (validate_assignment would recurse into this validator).
            self.__dict__["host"], self.__dict__["port"] = first.host, first.port
        elif (self.host, self.port) not in seen:
            raise at("host", f"with port {self.port}, is not one of the members; with members, leave host and port "
                     "out (or make them the first member)", self.host)
        return self

    @property
    def targets(self) -> list[Member]:
        """Every server of this PACS, in the plan's order (one, unless `members` lists more)."""
        return list(self.members) if self.members else [Member(host=self.host, port=self.port)]

    @property
    def is_group(self) -> bool:
        return len(self.targets) > 1

    @property
    def where(self) -> str:
        """Short, for one line: "10.0.0.5:104", or "10.0.0.5:104 +1 more" for a group."""
        t = self.targets
        return t[0].address + (f" +{len(t) - 1} more" if len(t) > 1 else "")


class VirtualServer(_Model):
    name: str
    ip: str = "0.0.0.0"
    port: int
    role: Literal["store", "worklist"] = "store"
    service: str
    calling_ae: str = DEFAULT_CALLING_AE
    # Built-in terminator only: who may call in. Empty means anyone the TLS layer lets through.
    allowed_calling_aes: list[str] = Field(default_factory=list)
    allowed_clients: list[str] = Field(default_factory=list)

    _name = field_validator("name")(check_name)
    _ip = field_validator("ip")(check_ip)
    _port = field_validator("port", mode="before")(check_port)
    _ae = field_validator("calling_ae")(check_ae_title)

    @field_validator("allowed_calling_aes")
    @classmethod
    def _aes(cls, v: list[str]) -> list[str]:
        return [check_ae_title(a) for a in v]

    @field_validator("allowed_clients")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        out = []
        for c in v:
            try:
                out.append(str(ipaddress.ip_network(c.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{c!r} is not an address or CIDR block like 203.0.113.0/24") from None
        return out


class NetScaler(_Model):
    url: str
    username: str = "nsroot"
    password_env: str = DEFAULT_PASSWORD_ENV
    ca_file: str | None = None
    fingerprint: str | None = None  # "sha256:AB:CD:..." of the management certificate
    timeout: float = 30.0
    # An admin partition to work in (NetScaler "Admin partitions"); None = the default partition.
    partition: str | None = None
    # The SSL profile this tool creates and binds where the ADC runs the Default (enhanced) SSL Profile.
    ssl_profile: str = DEFAULT_SSL_PROFILE

    @field_validator("partition")
    @classmethod
    def _partition(cls, v: str | None) -> str | None:
        # Partition names: letters, digits, _ and -, starting with a letter or _, at most 17 characters
        # ([UNVERIFIED] limit, from the `add ns partition` CLI reference's name rule).
        if v is None or v == "default":
            return None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,16}", v):
            raise ValueError("must be an admin partition's name: letters, digits, _ and -, starting with a letter "
                             "or _, at most 17 characters (leave it out for the default partition)")
        return v

    @field_validator("ssl_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_#.:@=-]{0,126}", v) or v.startswith("ns_default_"):
            raise ValueError("must be a name of your own for the SSL profile (letters, digits, _ # . : @ = -; not "
                             "one of the ADC's ns_default_ profiles)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        m = re.fullmatch(r"(https?)://([^/:\s]+|\[[0-9A-Fa-f:]+\])(:\d{1,5})?/?", v.strip())
        if not m:
            raise ValueError("must be the management address as https://HOST[:PORT], e.g. https://192.0.2.10")
        return v.strip().rstrip("/")

    @field_validator("fingerprint")
    @classmethod
    def _fp(cls, v: str | None) -> str | None:
        if v is None:
            return v
        hexpart = v.lower().removeprefix("sha256:").replace(":", "")
        if not re.fullmatch(r"[0-9a-f]{64}", hexpart):
            raise ValueError("must be a SHA-256 fingerprint: sha256: followed by 32 hex bytes (AB:CD:...)")
        return "sha256:" + ":".join(hexpart[i:i + 2] for i in range(0, 64, 2)).upper()


class Builtin(_Model):
    """Settings of the built-in terminator (backend = "builtin"); all optional."""

    state_dir: str | None = None  # default: the platformdirs state dir
    handshake_timeout: float = 10.0
    connect_timeout: float = 5.0
    idle_timeout: float = 900.0
    drain_timeout: float = 30.0
    health_interval: float = 5.0
    status_port: int = 0  # loopback port of the status endpoint; 0 = a unix socket in the state dir


class Plan(_Model):
    backend: Literal["builtin", "netscaler"] = "builtin"
    certificate: Certificate = Field(default_factory=Certificate)
    cipher_policy: CipherPolicy = Field(default_factory=CipherPolicy)
    service: list[Service] = Field(default_factory=list)
    virtual_server: list[VirtualServer] = Field(default_factory=list)
    netscaler: NetScaler | None = None
    builtin: Builtin = Field(default_factory=Builtin)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Plan:
        _unique("service", [s.name for s in self.service])
        _unique("virtual_server", [v.name for v in self.virtual_server])
        names = {s.name for s in self.service}
        seen: dict[tuple[str, int], str] = {}
        for i, vs in enumerate(self.virtual_server):
            if vs.service not in names:
                raise at(f"virtual_server[{i}].service", f"is not the name of one of the plan's PACS services; use "
                         f"one of {sorted(names) or 'them (none is defined yet)'}", vs.service)
            wildcard = ipaddress.ip_address(vs.ip).is_unspecified
            for (ip, port), other in seen.items():
                if port == vs.port and (ip == vs.ip or wildcard or ipaddress.ip_address(ip).is_unspecified):
                    raise at(f"virtual_server[{i}].port", f"{vs.name!r} and {other!r} both listen on port {vs.port} "
                             f"({ip} / {vs.ip}); give one of them another port or IP", vs.port)
            seen[(vs.ip, vs.port)] = vs.name
        if self.backend == "netscaler":
            if self.netscaler is None:
                raise at("netscaler", "add a [netscaler] table with url, username and password_env", kind="missing")
            for i, vs in enumerate(self.virtual_server):
                if ipaddress.ip_address(vs.ip).is_unspecified:
                    raise at(f"virtual_server[{i}].ip", "a NetScaler virtual server needs its own VIP; give the "
                             "address Butterfly will connect to", vs.ip)
        return self

    # --- derived facts -----------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def warnings(self) -> list[str]:
        """Non-fatal advice: unusual ports for a role, the legacy policy, a missing test target."""
        out = list(self._warnings)
        for i, vs in enumerate(self.virtual_server):
            usual = ROLE_PORTS[vs.role]
            if vs.port != usual:
                out.append(f"virtual_server[{i}] {vs.name!r}: role {vs.role} usually listens on {usual}, "
                           f"this one on {vs.port}; make sure Butterfly Cloud is given {vs.port}")
        policy = POLICIES[self.cipher_policy.profile]
        if policy.warning:
            out.append(f"cipher_policy.profile = {policy.name!r}: {policy.warning}")
        if self.netscaler and self.netscaler.url.startswith("http://"):
            out.append("netscaler.url uses http://: the NetScaler password crosses the network in clear text")
        return out

    def resolve(self, path: str) -> Path:
        """A path from the plan, made absolute against the plan file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    @property
    def cert_path(self) -> Path:
        return self.resolve(self.certificate.cert)

    @property
    def key_path(self) -> Path:
        return self.resolve(self.certificate.key)

    @property
    def policy(self) -> Policy:
        return POLICIES[self.cipher_policy.profile]

    def service_named(self, name: str) -> Service:
        return next(s for s in self.service if s.name == name)

    def with_base_dir(self, base: Path) -> Plan:
        self._base_dir = base
        return self


def _unique(table: str, names: list[str]) -> None:
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise at(f"{table}[{i}].name", "is used twice; names must be unique, rename one", n)
        seen.add(n)


# --- errors ------------------------------------------------------------------------------------------

# --- load and save ------------------------------------------------------------------------------------

def parse_plan(data: dict[str, Any], base_dir: Path, source: str = "plan") -> Plan:
    try:
        return Plan.model_validate(data).with_base_dir(base_dir)
    except ValidationError as err:
        raise plan_error(source, err) from None


def load_plan(path: str | os.PathLike[str]) -> Plan:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"no plan file at {p}", "give the path of a plan TOML file, or run `dicomtls` to "
                        "create one with the wizard") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the plan {p}: {exc}", "check the file's permissions and that it is UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p}: not valid TOML: {exc}", "fix the syntax at that line (strings need quotes, "
                        "tables are [name], lists of tables [[name]])") from None
    return parse_plan(data, p.resolve().parent, str(p))


def dump_plan(plan: Plan) -> str:
    """The plan as TOML, in the README's order; defaults of optional tables left out."""
    data = plan.model_dump(exclude_none=True)
    out: list[str] = [f"backend = {_toml(data['backend'])}", ""]
    for table in ("certificate", "cipher_policy"):
        out += [f"[{table}]", *(f"{k} = {_toml(v)}" for k, v in data[table].items()), ""]
    for table in ("service", "virtual_server"):
        for item in data[table]:
            out += [f"[[{table}]]", *(f"{k} = {_toml(v)}" for k, v in item.items()
                                      if not (isinstance(v, list) and not v)), ""]
    if "netscaler" in data:
        out += ["[netscaler]", *(f"{k} = {_toml(v)}" for k, v in data["netscaler"].items()
                                 if not (k == "ssl_profile" and v == DEFAULT_SSL_PROFILE)), ""]
    changed = {k: v for k, v in data["builtin"].items() if v != Builtin.model_fields[k].default}
    if changed:
        out += ["[builtin]", *(f"{k} = {_toml(v)}" for k, v in changed.items()), ""]
    return "\n".join(out)


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write atomically, so an interrupted save never leaves half a plan."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.resolve().parent != plan.base_dir.resolve():
        # Relative paths would point elsewhere from the new folder: pin them.
        plan.certificate.cert = str(plan.cert_path.resolve())
        plan.certificate.key = str(plan.key_path.resolve())
        if plan.netscaler and plan.netscaler.ca_file:
            plan.netscaler.ca_file = str(plan.resolve(plan.netscaler.ca_file).resolve())
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_plan(plan), encoding="utf-8")
    os.replace(tmp, p)
    plan.with_base_dir(p.resolve().parent)
    return p


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
