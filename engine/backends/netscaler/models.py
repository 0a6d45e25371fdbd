"""Typed NITRO payloads: the rows we read back, and the requests we send (docs/research/nitro.md §1-§11).

Reads are lenient on purpose: NITRO returns many numbers as strings ("port": 80 next to
"weight": "1", §1) and adds attributes with each firmware, so numbers are coerced and unknown
keys ignored. Requests are plain data so the same list can be sent, printed (`--format nitro`)
or counted.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NsFeature(_Row):
    feature: list[str] = Field(default_factory=list)  # the enabled ones, upper-case


class SystemFile(_Row):
    filename: str
    filelocation: str = ""
    filecontent: str | None = None  # base64; only when read by name
    filesize: int | None = None


class CertKey(_Row):
    certkey: str
    cert: str = ""
    key: str = ""
    serial: str = ""  # hex (CERTBOT does int(serial, 16))
    subject: str = ""
    issuer: str = ""
    clientcertnotafter: str = ""
    daystoexpiration: int | None = None
    status: str = ""

    def serial_int(self) -> int | None:
        try:
            return int(self.serial.replace(":", ""), 16)
        except ValueError:
            return None


class ServiceRow(_Row):
    name: str
    ipaddress: str = ""  # GET says ipaddress where add says ip (§6)
    port: int = 0
    servicetype: str = ""
    monconnectionclose: str = "NONE"
    svrstate: str = ""
    state: str = ""


class ServiceGroupRow(_Row):
    servicegroupname: str
    servicetype: str = ""
    monconnectionclose: str = "NONE"
    state: str = ""
    servicegroupeffectivestate: str = ""  # UP, DOWN, PARTIAL-UP, PARTIAL-DOWN, OUT OF SERVICE (DOC12)


class MemberRow(_Row):
    """A servicegroup_servicegroupmember_binding row (§7): one server of a group."""

    servicegroupname: str
    ip: str = ""
    port: int = 0
    servername: str = ""
    svrstate: str = ""
    state: str = ""


class LbVserverRow(_Row):
    name: str
    ipv46: str = ""
    port: int = 0
    servicetype: str = ""
    curstate: str = ""
    effectivestate: str = ""
    state: str = ""
    totalservices: int = 0
    activeservices: int = 0
    value: str = ""


class LbServiceBinding(_Row):
    name: str
    servicename: str
    curstate: str = ""


class LbGroupBinding(_Row):
    name: str
    servicegroupname: str


class LbMemberBinding(_Row):
    """lbvserver_servicegroupmember_binding: a member of a group bound to the vserver, as the vserver
    sees it (DOC12 lists ipv46/port/curstate; that they are the member's, not the vserver's, is
    [UNVERIFIED], so reconcile only trusts these rows when they agree with the plan)."""

    name: str
    servicegroupname: str
    ipv46: str = ""
    port: int = 0
    curstate: str = ""


class LbVserverBindings(_Row):
    """One entry of the umbrella `lbvserver_binding?bulkbindings=yes` read (DOC12 usecases example)."""

    name: str
    lbvserver_service_binding: list[LbServiceBinding] = Field(default_factory=list)
    lbvserver_servicegroup_binding: list[LbGroupBinding] = Field(default_factory=list)
    lbvserver_servicegroupmember_binding: list[LbMemberBinding] = Field(default_factory=list)


class SslVserverRow(_Row):
    vservername: str
    ssl3: str | None = None
    tls1: str | None = None
    tls11: str | None = None
    tls12: str | None = None
    tls13: str | None = None
    sslprofile: str = ""  # the profile bound to it (enhanced mode; netscaler/adc-nitro-go sslvserver.go)

    def flags(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude={"vservername", "sslprofile"}).items() if v is not None}


class SslProfileRow(_Row):
    """An `sslprofile` (NetScaler "SSL profiles"; fields as ryancbutler/Citrix set-nsssl.ps1 sends them)."""

    name: str
    sslprofiletype: str = ""
    ssl3: str | None = None
    tls1: str | None = None
    tls11: str | None = None
    tls12: str | None = None
    tls13: str | None = None

    def flags(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude={"name", "sslprofiletype"}).items() if v is not None}


class SslProfileCipherBinding(_Row):
    """sslprofile_sslcipher_binding: the group is named in cipheraliasname (set-nsssl.ps1 reads it there)."""

    name: str
    ciphername: str = ""
    cipheraliasname: str = ""

    @property
    def group(self) -> str:
        return self.cipheraliasname or self.ciphername


class NsVersion(_Row):
    """`GET config/nsversion`: e.g. "NetScaler NS13.1: Build 49.13.nc, Date: ..." (the Ansible collection's
    common.py reads it the same way)."""

    version: str = ""
    mode: str = ""


class HaNode(_Row):
    """`GET config/hanode`: id 0 is the node answering; `state` Primary/Secondary (NITRO hanode reference)."""

    id: int = 0
    ipaddress: str = ""
    state: str = ""
    hastatus: str = ""
    hasync: str = ""
    hasyncfailurereason: str = ""


class SslCertBinding(_Row):
    vservername: str
    certkeyname: str
    ca: bool = False
    snicert: bool = False


class SslCipherBinding(_Row):
    vservername: str
    ciphername: str = ""
    cipheraliasname: str = ""

    @property
    def group(self) -> str:
        # TF reads cipheraliasname and deletes by it (§10.2); fall back to ciphername.
        return self.cipheraliasname or self.ciphername


class SslVserverBindings(_Row):
    """One entry of the umbrella `sslvserver_binding` read (§10.2: the robust way to see cipher bindings)."""

    vservername: str
    sslvserver_sslcertkey_binding: list[SslCertBinding] = Field(default_factory=list)
    sslvserver_sslcipher_binding: list[SslCipherBinding] = Field(default_factory=list)
    # Some releases list the vserver's cipher groups only here, keyed by ciphername, next to the single
    # suites the groups expand to (citrix/terraform-provider-citrixadc sslvserver_utils.go syncCiphers).
    sslvserver_sslciphersuite_binding: list[SslCipherBinding] = Field(default_factory=list)


class SslParameter(_Row):
    defaultprofile: str = "DISABLED"


class LbVserverStat(_Row):
    """`stat/lbvserver/NAME` (NITRO statistics reference, lb/lbvserver): counters as strings on the wire."""

    name: str
    state: str = ""
    curclntconnections: int = 0
    cursrvrconnections: int = 0
    tothits: int = 0
    totalrequests: int = 0
    establishedconn: int = 0
    actsvcs: int = 0
    inactsvcs: int = 0


def quote_name(name: str) -> str:
    """Object names in the path are double URL-encoded, as every official client does (§1)."""
    return quote(quote(name, safe=""), safe="")


def encode_args(args: dict[str, Any]) -> str:
    """`k:v,k2:v2` with single-encoded values (§1: "the filelocation path must be URL encoded")."""
    return ",".join(f"{k}:{quote(str(v), safe='')}" for k, v in args.items())


class NitroRequest(BaseModel):
    """One NITRO call: what apply sends and what `dicomtls export --format nitro` prints."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    resource: str
    name: str | None = None
    action: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    body: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        p = f"/nitro/v1/config/{self.resource}"
        if self.name is not None:
            p += "/" + quote_name(self.name)
        query = []
        if self.action:
            query.append(f"action={self.action}")
        if self.args:
            query.append("args=" + encode_args(self.args))
        return p + ("?" + "&".join(query) if query else "")

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    def describe(self) -> str:
        return f"{self.method} {self.path}"
