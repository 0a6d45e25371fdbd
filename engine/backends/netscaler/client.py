"""A small NITRO client over httpx: one session, typed errors, request counting (docs/research/nitro.md §1, §2, §12).

    with NitroClient("https://192.0.2.10", "nsroot", password, fingerprint="AB:CD:...") as ns:
        ns.get("lbvserver", attrs="name,curstate")
        ns.post("nsfeature", {"nsfeature": {"feature": ["LB", "SSL"]}}, action="enable")

- Logs in lazily on the first request, again transparently when the session has expired (444),
  and out on close().
- TLS to the management address: verified against a CA file, or pinned to a SHA-256 fingerprint.
  The pin is checked on every TLS connection right after the handshake, inside wrap_socket, so no
  byte of any request (and so never the password) reaches a peer with another certificate.
  `insecure=True` skips verification and says so loudly; http:// works, with a warning.
- Every NITRO error becomes an engine.errors.UserError carrying the errorcode, the ADC's message and
  a fix. The password is never logged and never put in any message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.backends.netscaler.explain import SESSION_CODES, explain
from dicomtls.engine.backends.netscaler.models import NitroRequest, encode_args, quote_name
from dicomtls.engine.errors import UserError

log = logging.getLogger("dicomtls.netscaler")

# "Not found" per resource: 258 "No such resource" in general; the citrix/terraform-provider-citrixadc
# acceptance test data (acctests/testdata/workflows.yaml) gives 344 for service and 461 for sslvserver;
# the 12.0 error list has 1540 "Certificate does not exist" and 3711 "Cipher Group does not exist".
MISSING_CODES: dict[str, set[int]] = {
    "service": {258, 344}, "sslvserver": {258, 461}, "sslcertkey": {258, 1540},
    "sslcipher": {258, 3711}, "sslcipher_sslciphersuite_binding": {258, 3711},
}


def missing_codes(resource: str) -> set[int]:
    return MISSING_CODES.get(resource, {258})


class NitroError(UserError):
    """The ADC answered with a NITRO error. `.errorcode`, `.status` and `.nitro_message` keep the raw facts."""

    def __init__(self, problem: str, fix: str, *, status: int, errorcode: int, nitro_message: str,
                 request: str, advice: Advice | None = None) -> None:
        super().__init__(problem, fix, advice=advice)
        self.status = status
        self.errorcode = errorcode
        self.nitro_message = nitro_message
        self.request = request


class NitroConnectionError(UserError):
    """The ADC could not be reached, or the connection broke. `.sent` is True when a request may have
    been carried out without us seeing the answer."""

    def __init__(self, problem: str, fix: str = "", *, sent: bool = False, advice: Advice | None = None) -> None:
        super().__init__(problem, fix, advice=advice)
        self.sent = sent


class FingerprintMismatch(UserError):
    pass


def normalize_fingerprint(fp: str) -> str:
    """'sha256:AB:CD:..' or 'abcd..' -> 'abcd..' (64 lower-case hex digits)."""
    return fp.lower().removeprefix("sha256:").replace(":", "").strip()


def format_fingerprint(hexdigest: str) -> str:
    h = hexdigest.upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _host_port(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{url!r} is not a NITRO address", "give it as https://HOST[:PORT], e.g. https://192.0.2.10")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), parts.scheme


def fetch_fingerprint(url: str, timeout: float = 10.0) -> str:
    """The SHA-256 fingerprint (AB:CD:...) of the certificate the management address presents.

    For first-connect pinning: nothing is sent but a TLS ClientHello, so it is safe against any peer;
    a person must still compare it with the ADC's own (show ssl certKey ns-server-certificate)."""
    host, port, scheme = _host_port(url)
    if scheme != "https":
        raise UserError(f"{url} is http://, which has no certificate to pin",
                        "use https:// for the management address, or accept the clear-text warning")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"cannot fetch the certificate of {url}: {exc}",
                        "check the address and port, and that NITRO over HTTPS is enabled on it") from None
    if der is None:  # a handshake without a server certificate (an anonymous cipher): nothing to pin
        raise UserError(f"{url} sent no certificate, so there is none to pin",
                        "check the address and port, and that NITRO over HTTPS is enabled on it")
    return format_fingerprint(hashlib.sha256(der).hexdigest())


class _PinnedContext(ssl.SSLContext):
    """Accepts exactly one certificate, by SHA-256 of its DER form, checked before any data is sent."""

    expected: str
    seen: str | None

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        tls = super().wrap_socket(sock, *args, **kwargs)
        if not kwargs.get("do_handshake_on_connect", True):
            tls.do_handshake()
        der = tls.getpeercert(binary_form=True) or b""
        self.seen = hashlib.sha256(der).hexdigest()
        if self.seen != self.expected:
            tls.close()
            raise ssl.SSLCertVerificationError("management certificate does not match the pinned fingerprint")
        return tls


def pinned_context(fingerprint: str) -> _PinnedContext:
    ctx = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin replaces chain and name checks; it is checked per connection
    ctx.expected = normalize_fingerprint(fingerprint)
    ctx.seen = None
    return ctx


class NitroClient:
    """A NITRO session. Counts requests (`.requests`) and configuration writes (`.writes`: every
    POST/PUT/DELETE except login and logout)."""

    def __init__(self, url: str, username: str, password: str, *, ca_file: str | None = None,
                 fingerprint: str | None = None, insecure: bool = False, timeout: float = 30.0,
                 password_source: str = "the password given", partition: str | None = None) -> None:
        host, port, scheme = _host_port(url)
        self.url = url.rstrip("/")
        self.username = username
        self.__password = password
        self.password_source = password_source
        self.partition = partition  # an admin partition to switch to after each login
        self.timeout = timeout
        self.requests = 0
        self.writes = 0
        self.history: list[tuple[str, int, int]] = []  # (METHOD path, HTTP status, errorcode); never bodies
        self.warnings: list[str] = []
        self._token: str | None = None
        self._pinned: _PinnedContext | None = None
        if scheme == "http":
            self._warn("the NITRO address is http://: the password and the private key cross the network in "
                       "clear text; use https:// unless this is an isolated management VLAN")
            verify: ssl.SSLContext | bool = False
        elif fingerprint:
            self._pinned = pinned_context(fingerprint)
            verify = self._pinned
        elif insecure:
            self._warn("insecure mode: the NetScaler's management certificate is NOT verified; anyone on the path "
                       "could read the password. Pin its fingerprint or give a CA file instead.")
            verify = False
        elif ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise UserError(f"cannot load the CA file {ca_file}: {exc}",
                                advice=advice("ns.ca_file_bad")) from None
        else:
            verify = ssl.create_default_context()
        self._verify_mode = ("pinned" if self._pinned else "insecure" if verify is False and scheme == "https"
                             else "ca_file" if ca_file and scheme == "https" else "system" if scheme == "https"
                             else "none")
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=httpx.Timeout(timeout),
                                  headers={"Content-Type": "application/json", "Accept": "application/json"},
                                  follow_redirects=False, trust_env=False)

    def __repr__(self) -> str:  # never the password
        return f"NitroClient({self.url!r}, user={self.username!r}, verify={self._verify_mode})"

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning(msg)

    # --- session ------------------------------------------------------------------------------------
    def login(self) -> None:
        body = {"login": {"username": self.username, "password": self.__password}}
        status, data = self._send("POST", "/nitro/v1/config/login", body, auth=False, what="login")
        token = data.get("sessionid") if isinstance(data, dict) else None
        if not token:
            raise NitroError("the NetScaler accepted the login but returned no session id", "check that the URL "
                             "points at the ADC's management address (NSIP), not at a virtual server",
                             status=status, errorcode=0, nitro_message="", request="POST login")
        self._token = str(token)
        if self.partition:
            # NITRO 12.0 usecases "Switching Partitions": the session works in that partition from now on.
            self._send("POST", "/nitro/v1/config/nspartition?action=Switch",
                       {"nspartition": {"partitionname": self.partition}}, auth=True, what=f"switch to partition "
                       f"{self.partition}")

    def logout(self) -> None:
        if self._token is None:
            return
        try:
            self._send("POST", "/nitro/v1/config/logout", {"logout": {}}, auth=True, what="logout")
        except UserError as exc:  # the session may be gone already; logging out is best effort
            log.info("logout: %s", exc.problem)
        finally:
            self._token = None

    def close(self) -> None:
        try:
            self.logout()
        finally:
            self._http.close()

    def __enter__(self) -> NitroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- verbs ----------------------------------------------------------------------------------------
    def get(self, resource: str, name: str | None = None, *, args: dict[str, Any] | None = None,
            filter: dict[str, Any] | None = None, attrs: str | list[str] | None = None, bulk: bool = False,
            stat: bool = False, missing_ok: bool = False) -> list[dict[str, Any]]:
        """Rows of `resource` (keys lower-cased). A singleton object comes back as a one-row list.
        missing_ok: "No such resource" (258) gives [] instead of an error."""
        path = f"/nitro/v1/{'stat' if stat else 'config'}/{resource}"
        if name is not None:
            path += "/" + quote_name(name)
        query = []
        if args:
            query.append("args=" + encode_args(args))
        if filter:
            query.append("filter=" + encode_args(filter))
        if attrs:
            query.append("attrs=" + (attrs if isinstance(attrs, str) else ",".join(attrs)))
        if bulk:
            query.append("bulkbindings=yes")
        if query:
            path += "?" + "&".join(query)
        try:
            _, data = self.request("GET", path, what=f"read {resource}{' ' + name if name else ''}")
        except NitroError as exc:
            if missing_ok and exc.errorcode in missing_codes(resource):
                return []
            raise
        rows = data.get(resource, [])
        if isinstance(rows, dict):  # singletons: object (GO) or list (DOC12), accept both (§1)
            rows = [rows]
        return [{str(k).lower(): v for k, v in r.items()} for r in rows if isinstance(r, dict)]

    def post(self, resource: str, body: dict[str, Any], *, action: str | None = None,
             onerror: str | None = None) -> dict[str, Any]:
        path = f"/nitro/v1/config/{resource}" + (f"?action={action}" if action else "")
        headers = {"X-NITRO-ONERROR": onerror} if onerror else None
        return self.request("POST", path, body, headers=headers)[1]

    def put(self, resource: str, body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        path = f"/nitro/v1/config/{resource}" + (f"/{quote_name(name)}" if name is not None else "")
        return self.request("PUT", path, body)[1]

    def delete(self, resource: str, name: str, *, args: dict[str, Any] | None = None) -> dict[str, Any]:
        path = f"/nitro/v1/config/{resource}/{quote_name(name)}"
        if args:
            path += "?args=" + encode_args(args)
        return self.request("DELETE", path)[1]

    def send(self, req: NitroRequest) -> dict[str, Any]:
        """Send a prepared request (reconcile builds them; array bodies stop at the first error)."""
        body = req.body
        headers = None
        if body and any(isinstance(v, list) for v in body.values()) and req.method == "POST":
            headers = {"X-NITRO-ONERROR": "exit"}
        return self.request(req.method, req.path, body, headers=headers)[1]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                headers: dict[str, str] | None = None, what: str = "") -> tuple[int, dict[str, Any]]:
        """Send with the session, logging in first if needed and once more on 444."""
        if self._token is None:
            self.login()
        try:
            return self._send(method, path, body, auth=True, headers=headers, what=what)
        except NitroError as exc:
            if exc.errorcode not in SESSION_CODES:
                raise
            log.info("NITRO session expired (%s); logging in again", exc.errorcode)
            self._token = None
            self.login()
            return self._send(method, path, body, auth=True, headers=headers, what=what)

    # --- the wire -------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: dict[str, Any] | None, *, auth: bool,
              headers: dict[str, str] | None = None, what: str = "") -> tuple[int, dict[str, Any]]:
        hdrs = dict(headers or {})
        if auth and self._token:
            hdrs["Cookie"] = f"NITRO_AUTH_TOKEN={self._token}"
        content = json.dumps(body).encode() if body is not None else None
        label = f"{method} {path.split('?')[0]}"
        self.requests += 1
        if method != "GET" and not path.endswith(("/config/login", "/config/logout", "nspartition?action=Switch")):
            self.writes += 1  # a partition switch changes the session, not the configuration
        try:
            resp = self._http.request(method, path, content=content, headers=hdrs)
        except httpx.TimeoutException:
            self.history.append((label, 0, 0))
            raise NitroConnectionError(
                f"the NetScaler at {self.url} did not answer {label} within {self.timeout:g} s",
                advice=advice("ns.slow"),
                sent=method != "GET") from None
        except httpx.ConnectError as exc:
            self.history.append((label, 0, 0))
            raise self._connect_error(exc) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            self.history.append((label, 0, 0))
            raise NitroConnectionError(
                f"the connection to the NetScaler at {self.url} broke during {label} ({type(exc).__name__}); "
                "that request may or may not have been carried out",
                "check the ADC is up, then run again: the next run reads the current state and completes "
                "what is missing", sent=True) from None
        finally:
            self._http.cookies.clear()  # the token travels in our own Cookie header only
        data: dict[str, Any] = {}
        if resp.content:
            try:
                parsed = resp.json()
                data = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                data = {}
        code = int(data.get("errorcode") or 0)
        self.history.append((label, resp.status_code, code))
        log.debug("%s -> %s %s", label, resp.status_code, code or "")
        if resp.status_code >= 400 or resp.status_code == 207 or code != 0:
            raise self._nitro_error(method, path, resp.status_code, data, what)
        return resp.status_code, data

    def _connect_error(self, exc: httpx.ConnectError) -> UserError:
        if self._pinned is not None and self._pinned.seen and self._pinned.seen != self._pinned.expected:
            return FingerprintMismatch(
                f"the NetScaler at {self.url} presented a certificate with SHA-256 fingerprint "
                f"{format_fingerprint(self._pinned.seen)}, not the pinned {format_fingerprint(self._pinned.expected)}; "
                "nothing was sent (no login, no password)", advice=advice("ns.fingerprint_changed"))
        cause = exc.__cause__ or exc.__context__
        text = str(exc) or str(cause)
        if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            try:
                seen = fetch_fingerprint(self.url, timeout=min(self.timeout, 10.0))
            except UserError:
                seen = "unknown"
            return UserError(
                f"the NetScaler's management certificate at {self.url} is not trusted ({text}); nothing was sent",
                advice=advice("ns.untrusted", seen=seen))
        return NitroConnectionError(
            f"cannot reach the NetScaler at {self.url}: {text or type(exc).__name__}",
            advice=advice("ns.check_url"))

    def _scrub(self, text: str) -> str:
        return text.replace(self.__password, "***") if self.__password else text

    def _nitro_error(self, method: str, path: str, status: int, data: dict[str, Any], what: str) -> NitroError:
        code = int(data.get("errorcode") or 0)
        message = self._scrub(str(data.get("message") or ""))
        if status == 207 and isinstance(data.get("response"), list):
            failed = [r for r in data["response"] if isinstance(r, dict) and int(r.get("errorcode") or 0)]
            if failed:  # a bulk request: report the item that failed (§12.1)
                code = int(failed[0].get("errorcode") or code)
                message = self._scrub(str(failed[0].get("message") or message))
        label = f"{method} {path.split('?')[0].removeprefix('/nitro/v1/config/')}"
        req = what or label
        problem, fix = explain(code, status, message, req, self)
        return NitroError(problem, fix if isinstance(fix, str) else "", status=status, errorcode=code,
                          nitro_message=message, request=label, advice=None if isinstance(fix, str) else fix)
