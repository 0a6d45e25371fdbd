"""The verification ladder: a real DICOM C-ECHO, one rung at a time, each rung timed and explained.

resolve -> tcp -> (tls) -> associate -> echo -> release. The first rung that fails says what it saw,
the likely cause and what to do next. Success means a C-ECHO-RSP with status 0x0000 and nothing
less: an established association, a TLS handshake or a tool's exit code prove nothing alone
(the C-ECHO service, DICOM PS3.7 §9.1.5).

Everything runs over ONE connection: we connect and do the TLS handshake ourselves (so TLS errors
can be classified; pynetdicom only reports them as "aborted"), then hand the connected socket to
pynetdicom for the association. A terminator therefore sees exactly one client, not a probe plus
an association.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from pydantic import BaseModel
from pynetdicom import evt
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.status import code_to_category

from dicomtls.engine.addresses import host_port
from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.certs import CertError, fingerprint
from dicomtls.engine.dicomsocket import OneConnectionAE
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import DEFAULT_CALLED_AE, DEFAULT_CALLING_AE, check_ae_title, check_port
from dicomtls.engine.tls_advice import tls_advice
from dicomtls.engine.tlsctx import client_context
from dicomtls.engine.worklist import MWL_FIND_UID, WorklistQuery, WorklistResult

StepName = Literal["resolve", "tcp", "tls", "associate", "echo", "worklist", "release"]
VERIFICATION_UID = "1.2.840.10008.1.1"


class Step(BaseModel):
    name: StepName
    ok: bool
    seconds: float
    detail: str = ""
    cause: str = ""  # what most likely went wrong (face-neutral)
    next_action: str = ""  # what to do, when it reads the same in every face
    advice: Advice | None = None  # what to do, when each face phrases it (an option, a field)
    # tcp rung: this side's address as host:port, so a terminator's log line of the same connection
    # can be told apart from anyone else's (the wizard's own tests are not Butterfly's arrival).
    local: str = ""


class EchoReport(BaseModel):
    ok: bool
    status: int | None = None  # the C-ECHO-RSP status, when one arrived
    steps: list[Step]
    host: str = ""
    port: int = 0
    tls: bool = False
    calling_ae: str = ""
    called_ae: str = ""
    # Filled after a TLS handshake, e.g. for the wizard to offer pinning the certificate.
    tls_version: str | None = None
    cipher: str | None = None
    server_fingerprint: str | None = None
    server_subject: str | None = None
    worklist: WorklistResult | None = None  # the Modality Worklist C-FIND, when one was asked for
    server_not_after: datetime | None = None  # the served leaf's notAfter (UTC), for expiry monitoring

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if not s.ok), None)


class _Failed(Exception):
    """Ends the ladder; the failing step has been recorded."""


def _server_fingerprint(der: bytes) -> str | None:
    try:
        return fingerprint(der)
    except CertError:  # OpenSSL took it, cryptography did not: no fingerprint, so no pin can match
        return None


def _load_expected(path: str | Path) -> str:
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the expected certificate {p}: {exc.strerror or exc}",
                        "give the server's certificate as a PEM file",
                        advice=advice("echo.expected_cert_unreadable")) from None
    try:
        return fingerprint(data)
    except CertError as exc:
        raise UserError(f"{p} holds no usable certificate: {exc.problem}",
                        "give the server's certificate (the file with -----BEGIN CERTIFICATE-----), not its key",
                        advice=advice("echo.expected_cert_not_a_cert")) from None


def _not_after(der: bytes) -> datetime | None:
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None


def _subject(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except Exception:  # an odd certificate must not stop the ladder; the fingerprint still identifies it
        return "(unreadable subject)"


def checked_ae(which: str, value: str) -> str:
    try:
        return check_ae_title(value)
    except ValueError as exc:
        raise UserError(f"{which} AE title {value!r} {exc}", "give a valid AE title",
                        advice=advice("ae.calling_invalid" if which == "calling" else "ae.called_invalid")) from None


# --- decoding what the peer said -----------------------------------------------------------------

_RJ_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_RJ_SOURCE = {1: "service-user (the called application)", 2: "service-provider (ACSE)",
              3: "service-provider (presentation layer)"}
_RJ_REASON = {
    1: {1: "no reason given", 2: "application context name not supported",
        3: "calling AE title not recognised", 7: "called AE title not recognised"},
    2: {1: "no reason given", 2: "protocol version not supported"},
    3: {1: "temporary congestion", 2: "local limit exceeded"},
}


def _reject_advice(source: int, reason: int, calling: str, called: str) -> tuple[str, str | Advice]:
    if (source, reason) == (1, 7):
        return (f"the peer does not answer to the called AE title {called!r}", advice("reject.called_ae"))
    if (source, reason) == (1, 3):
        return (f"the peer does not accept calls from the calling AE title {calling!r}",
                advice("reject.calling_ae", calling=calling))
    if source == 3:
        return ("the peer is temporarily unable to accept (congested, at its association limit, or its "
                "back end is down)", "retry in a minute; if it persists, check the PACS (or the terminator's "
                "back end) is up and not at its connection limit")
    if (source, reason) == (1, 2):
        return ("the peer does not support the DICOM application context", "check that this port is a DICOM "
                "service and not another protocol")
    if source == 2:
        return ("the peer's DICOM stack refused the request (protocol level)", "check the peer's log for the "
                "reason; it may expect another DICOM protocol version")
    return ("the called application refused the association without giving a reason",
            f"check the PACS's log and its configuration for calling AE {calling!r} / called AE {called!r}")


_ABORT_SOURCE = {0: "service-user", 1: "reserved", 2: "service-provider"}
_ABORT_REASON = {0: "not specified", 1: "unrecognised PDU", 2: "unexpected PDU", 4: "unrecognised PDU parameter",
                 5: "unexpected PDU parameter", 6: "invalid PDU parameter value"}

_ECHO_STATUS = {
    0x0000: "Success",
    0x0110: "Processing failure",
    0x0122: "Refused: SOP class not supported (the peer does not offer C-ECHO)",
    0x0124: "Refused: not authorised",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognised operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xFE00: "Cancel",
}


def describe_status(code: int) -> str:
    if code in _ECHO_STATUS:
        return _ECHO_STATUS[code]
    return f"{code_to_category(code)} (not a standard C-ECHO status)"


# --- the ladder --------------------------------------------------------------------------------

class _Ladder:
    def __init__(self, on_step: Callable[[Step], None] | None) -> None:
        self.steps: list[Step] = []
        self.on_step = on_step
        self._t0 = time.perf_counter()

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def done(self, name: StepName, ok: bool, detail: str, cause: str = "", next_action: str | Advice = "",
             local: str = "") -> None:
        step = Step(name=name, ok=ok, seconds=round(time.perf_counter() - self._t0, 4), detail=detail, cause=cause,
                    local=local,
                    **({"advice": next_action} if isinstance(next_action, Advice) else {"next_action": next_action}))
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        if not ok:
            raise _Failed

    def fail(self, name: StepName, detail: str, cause: str, next_action: str | Advice) -> None:
        self.done(name, False, detail, cause, next_action)


def echo(host: str, port: int, *, tls: bool = False, cafile: str | Path | None = None, insecure: bool = False,
         expect_cert: str | Path | None = None, calling_ae: str = DEFAULT_CALLING_AE,
         called_ae: str = DEFAULT_CALLED_AE, timeout: float = 10.0, policy: str | None = None,
         on_step: Callable[[Step], None] | None = None, worklist: WorklistQuery | None = None,
         show_names: bool = False) -> EchoReport:
    """Run the ladder against host:port. Bad arguments raise UserError before anything is sent.

    With `worklist`, the association also proposes the Modality Worklist FIND SOP class and, after
    the C-ECHO, a "worklist" rung runs that query (engine.worklist); `show_names` unmasks patient names."""
    calling_ae = checked_ae("calling", calling_ae)
    called_ae = checked_ae("called", called_ae)
    try:
        check_port(port)
    except ValueError as exc:
        raise UserError(f"port {port!r} {exc}", "give the DICOM port, e.g. 104, 4242 or 2762") from None
    if not timeout or timeout <= 0:
        raise UserError(f"timeout {timeout!r} is not a positive number of seconds", "give e.g. 10 seconds",
                        advice=advice("echo.bad_timeout"))
    if not tls and (cafile or insecure or expect_cert):
        raise UserError("a CA file, a pinned certificate or skipping the certificate check only apply to a TLS echo",
                        "test with TLS, or without those for a plain DICOM port",
                        advice=advice("echo.tls_options_without_tls"))
    expected = _load_expected(expect_cert) if expect_cert else None
    context = None
    if tls:
        # A pinned leaf identifies the server by itself, whoever signed it.
        context = client_context(policy, cafile, insecure=insecure or (expected is not None and not cafile))

    report = EchoReport(ok=False, steps=[], host=host, port=port, tls=tls, calling_ae=calling_ae,
                        called_ae=called_ae)
    ladder = _Ladder(on_step)
    sock: socket.socket | None = None
    try:
        sock = _resolve_and_connect(ladder, host, port, timeout)
        if context is not None:
            sock = _handshake(ladder, report, sock, context, host, port, timeout, policy, cafile, expected)
        _associate_and_echo(ladder, report, sock, calling_ae, called_ae, timeout, worklist, show_names)
        sock = None  # pynetdicom owns and closes it now
    except _Failed:
        pass
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
    report.steps = ladder.steps
    report.ok = report.status == 0x0000 and all(s.ok for s in ladder.steps) and \
        [s.name for s in ladder.steps][-1:] == ["release"]
    return report


def _resolve_and_connect(ladder: _Ladder, host: str, port: int, timeout: float) -> socket.socket:
    ladder.start()
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        ladder.fail("resolve", f"cannot resolve {host!r}: {exc}", f"the name {host!r} is not known to DNS "
                    "or /etc/hosts here", "check the spelling, or use the IP address of the DICOM endpoint")
    family, _, _, _, sockaddr = infos[0]
    ip = sockaddr[0]
    ladder.done("resolve", True, ip if ip == host else f"{host} -> {ip}")

    ladder.start()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except ConnectionRefusedError:
        sock.close()
        ladder.fail("tcp", f"connection to {ip}:{port} refused", f"nothing listens on {host}:{port}",
                    "check the port number, and that the DICOM service or terminator is running and "
                    "listening on that address")
    except (TimeoutError, socket.timeout):
        sock.close()
        ladder.fail("tcp", f"no answer from {ip}:{port} within {timeout:g} s",
                    "a firewall drops the packets (filtered port), or the host is down",
                    f"check firewall rules between this machine and {host}:{port}, and that the host is up")
    except OSError as exc:
        sock.close()
        ladder.fail("tcp", f"cannot connect to {ip}:{port}: {exc.strerror or exc}",
                    "there is no network route to the host (wrong address, or a network/VPN is down)",
                    "check the address and this machine's routes (ip route / traceroute)")
    local = sock.getsockname()
    ladder.done("tcp", True, f"connected to {ip}:{port} from {host_port(local[0], local[1])}",
                local=host_port(local[0], local[1]))
    return sock


def _handshake(ladder: _Ladder, report: EchoReport, sock: socket.socket, context: ssl.SSLContext, host: str,
               port: int, timeout: float, policy: str | None, cafile: str | Path | None,
               expected: str | None) -> ssl.SSLSocket:
    ladder.start()
    try:
        ipaddress.ip_address(host)
        sni = None  # an IP address is never sent as SNI
    except ValueError:
        sni = host
    try:
        tsock = context.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
    except (ssl.SSLError, OSError, ValueError) as exc:
        ladder.fail("tls", f"cannot start TLS: {exc}", "the TLS settings are unusable here",
                    advice("tls.unusable_settings"))
    try:
        tsock.settimeout(timeout)
        tsock.do_handshake()
    except (ssl.SSLError, OSError) as exc:
        tsock.close()  # the SSL socket owns the file descriptor now
        detail, cause, action = tls_advice(exc, policy, cafile, host, port, timeout)
        ladder.fail("tls", detail, cause, action)
    der = tsock.getpeercert(binary_form=True) or b""
    report.tls_version = tsock.version()
    report.cipher = (tsock.cipher() or ("?",))[0]
    report.server_fingerprint = _server_fingerprint(der) if der else None
    report.server_subject = _subject(der) if der else None
    report.server_not_after = _not_after(der) if der else None
    detail = (f"{report.tls_version} {report.cipher}; server certificate {report.server_subject}, "
              f"SHA-256 {report.server_fingerprint}")
    if expected is not None and report.server_fingerprint != expected:
        tsock.close()
        ladder.fail("tls", detail + f"; expected SHA-256 {expected}",
                    "the server presented a different certificate from the one expected (pinned)",
                    "if the server's certificate was replaced on purpose, pin the new one; otherwise check "
                    "you reach the right host and port (another service or an interceptor answers)")
    ladder.done("tls", True, detail + ("; matches the expected certificate" if expected else ""))
    return tsock


def _associate_and_echo(ladder: _Ladder, report: EchoReport, sock: socket.socket, calling_ae: str,
                        called_ae: str, timeout: float, worklist: WorklistQuery | None = None,
                        show_names: bool = False) -> None:
    seen: dict[str, Any] = {}

    def on_pdu(event: Any) -> None:
        seen["any_pdu"] = True
        if isinstance(event.pdu, A_ABORT_RQ):
            seen["abort"] = (event.pdu.source, event.pdu.reason_diagnostic)

    def on_sent(event: Any) -> None:
        if isinstance(event.pdu, A_ABORT_RQ):
            seen["we_aborted"] = True  # pynetdicom gave up (a timeout), the peer did not drop us

    ae = OneConnectionAE(sock, ae_title=calling_ae)
    for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, attr, timeout)
    ae.add_requested_context(VERIFICATION_UID)
    if worklist is not None:
        ae.add_requested_context(MWL_FIND_UID)
    peer = sock.getpeername()

    ladder.start()
    assoc = ae.associate(peer[0], peer[1], ae_title=called_ae,
                         evt_handlers=[(evt.EVT_PDU_RECV, on_pdu), (evt.EVT_PDU_SENT, on_sent)])
    try:
        _check_association(ladder, report, assoc, seen, calling_ae, called_ae, peer, timeout)
        ladder.start()
        rsp = assoc.send_c_echo()
        if "Status" not in rsp:
            why = _abort_words(seen) if "abort" in seen else f"no C-ECHO response within {timeout:g} s"
            ladder.fail("echo", f"no C-ECHO response: {why}",
                        "the peer accepted the association but aborted or went silent on the C-ECHO "
                        "(a terminator whose PACS side failed, or a PACS that refused the request)",
                        advice("echo.no_response"))
        status = int(rsp.Status)
        report.status = status
        words = describe_status(status)
        if status != 0x0000:
            _record_echo_failure(ladder, status, words, calling_ae)
        else:
            ladder.done("echo", True, f"status 0x0000: {words}")
            if worklist is not None:
                _worklist_rung(ladder, report, assoc, worklist, show_names)
    except _Failed:
        # Leave politely if the association is still up, then end the ladder.
        if assoc.is_established:
            assoc.release()
        if assoc.is_established or not (assoc.is_released or assoc.is_aborted):
            assoc.abort()
        raise
    ladder.start()
    assoc.release()
    if assoc.is_released:
        ladder.done("release", True, "A-RELEASE confirmed")
    else:
        ladder.fail("release", "the peer did not confirm the release" + (f" ({_abort_words(seen)})"
                    if "abort" in seen else ""),
                    "the peer aborted instead of releasing; the echo itself worked",
                    "harmless for a test; if it repeats, check the peer's log")


def _worklist_rung(ladder: _Ladder, report: EchoReport, assoc: Any, query: WorklistQuery,
                   show_names: bool) -> None:
    from dicomtls.engine import worklist

    ladder.start()
    report.worklist = worklist.find(assoc, query, show_names=show_names)
    try:
        ladder.done("worklist", *worklist.rung(report.worklist))
    except _Failed:
        pass  # as for a failed echo status: release cleanly, the report stays not ok


def _record_echo_failure(ladder: _Ladder, status: int, words: str, calling_ae: str) -> None:
    try:
        ladder.fail("echo", f"status 0x{status:04X}: {words}",
                    f"the peer answered the C-ECHO with a failure status ({words})",
                    f"enable the Verification service (C-ECHO) for calling AE {calling_ae!r} on the peer, and "
                    "check its log for why it refused")
    except _Failed:
        pass  # a failed status still deserves a clean release; the report stays not ok


def _speaks_tls(peer: tuple[Any, ...], timeout: float) -> bool:
    """After a plain association died silently: does the port answer a TLS ClientHello? (A second,
    short connection, made only on that failure, to turn "maybe TLS" into a clear answer.)"""
    cx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cx.check_hostname = False
    cx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(peer[:2], timeout=min(timeout, 5.0)) as raw, cx.wrap_socket(raw):
            return True
    except ssl.SSLError as exc:
        # A TLS alert is still a TLS server talking; garbage or a hang-up is not.
        return exc.reason not in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "RECORD_LAYER_FAILURE",
                                  "HTTP_REQUEST") and not isinstance(exc, ssl.SSLEOFError)
    except OSError:
        return False


def _abort_words(seen: dict[str, Any]) -> str:
    source, reason = seen["abort"]
    return (f"A-ABORT from the {_ABORT_SOURCE.get(source, f'source {source}')}, reason "
            f"{_ABORT_REASON.get(reason, reason)}")


def _check_association(ladder: _Ladder, report: EchoReport, assoc: Any, seen: dict[str, Any], calling_ae: str,
                       called_ae: str, peer: tuple[Any, ...], timeout: float) -> None:
    target = f"{report.host}:{report.port}"
    if assoc.is_established:
        cx = next((c for c in assoc.accepted_contexts if c.abstract_syntax == VERIFICATION_UID), None)
        ts = cx.transfer_syntax[0].name if cx is not None and cx.transfer_syntax else "?"
        impl = (assoc.acceptor.implementation_version_name or "").strip() or "unnamed"
        if cx is None:  # another proposed context (the worklist's) was accepted, Verification was not
            ladder.fail("associate", f"accepted, but the Verification SOP class was refused; peer implementation "
                        f"{impl}", "the peer does not offer C-ECHO to this calling AE",
                        f"enable Verification (C-ECHO) for {calling_ae!r} on the peer")
        ladder.done("associate", True, f"accepted: {calling_ae} -> {called_ae}, Verification with transfer syntax "
                    f"{ts}; peer implementation {impl}")
        return
    if assoc.is_rejected:
        rj = assoc.acceptor.primitive
        result, source, reason = int(rj.result), int(rj.result_source), int(rj.diagnostic)
        words = (f"{_RJ_RESULT.get(result, result)}, source {_RJ_SOURCE.get(source, source)}, reason "
                 f"{_RJ_REASON.get(source, {}).get(reason, f'{reason} (reserved)')}")
        cause, action = _reject_advice(source, reason, calling_ae, called_ae)
        ladder.fail("associate", f"rejected {result}/{source}/{reason}: {words}", cause, action)
    if assoc.is_aborted and assoc.acceptor.primitive is not None and assoc.acceptor.primitive.result == 0 \
            and not assoc.accepted_contexts:
        ladder.fail("associate", "accepted, but the Verification SOP class was refused (no accepted "
                    "presentation context); aborted", "the peer does not offer C-ECHO to this calling AE",
                    f"enable Verification (C-ECHO) for {calling_ae!r} on the peer")
    if "abort" in seen:
        detail = f"aborted: {_abort_words(seen)}"
    elif seen.get("we_aborted") and seen.get("any_pdu"):
        ladder.fail("associate", "the peer's answer was not a valid A-ASSOCIATE response; aborted",
                    f"{target} is not a DICOM service, or its DICOM stack is broken",
                    "check the port number and the peer's log")
    elif seen.get("we_aborted") or not assoc.is_aborted:
        ladder.fail("associate", f"no answer to the A-ASSOCIATE request within {timeout:g} s",
                    "the peer accepted the connection but never answered the association request: a busy or "
                    "hung DICOM service, a DICOM-TLS port waiting for a handshake, or not a DICOM port at all",
                    advice("assoc.no_answer"))
    else:
        detail = "aborted: the peer closed the connection without an A-ASSOCIATE answer"
    if report.tls:
        cause = ("the TLS handshake worked, then the association was dropped: a terminator whose PACS side "
                 "is down or refused it, or a PACS that refused this client")
        action = (f"check the terminator's log and that its PACS answers a plain echo; check the PACS "
                  f"accepts calling AE {calling_ae!r}")
    elif "abort" not in seen and assoc.is_aborted and _speaks_tls(peer, timeout):
        detail += " (a TLS handshake on a second connection succeeded there)"
        cause = f"{target} is a DICOM-TLS port: it expects a TLS handshake, and this was a plain echo"
        action = advice("assoc.tls_port")
    else:
        cause = (f"{target} took the connection but gave no DICOM answer: it may be a DICOM-TLS port "
                 "(this was a plain echo), or a DICOM service that refused this client")
        action = advice("assoc.maybe_tls_port")
    ladder.fail("associate", detail, cause, action)
