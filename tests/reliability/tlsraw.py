"""Hand-built TLS bytes for hostile-input tests: a ClientHello with any version and cipher list
(OpenSSL 3 will not even send export or NULL offers), and a TLS client over memory BIOs so a test can
send part of an encrypted record."""

from __future__ import annotations

import os
import socket
import ssl
import struct

# Cipher suite code points (IANA TLS registry).
EXPORT_SUITES = [0x0003, 0x0006, 0x0008, 0x000B, 0x000E, 0x0011, 0x0014, 0x0017, 0x0019, 0x0062, 0x0064]
NULL_SUITES = [0x0000, 0x0001, 0x0002, 0x003B, 0xC006, 0xC010]
CBC_SHA1_SUITES = [0x002F, 0x0035, 0xC013, 0xC014]  # AES-CBC-SHA: not in bcp195-nd
BCP195_ND_SUITES = [0x009E, 0x009F, 0xC02F, 0xC030]  # DHE/ECDHE-RSA-AES-GCM
ALERT, HANDSHAKE = 0x15, 0x16
ALERT_NAMES = {40: "handshake_failure", 70: "protocol_version", 47: "illegal_parameter", 50: "decode_error",
               10: "unexpected_message", 71: "insufficient_security", 80: "internal_error"}


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack(">HH", ext_type, len(data)) + data


def client_hello(version: int = 0x0303, suites: list[int] | None = None, record_version: int = 0x0301,
                 compression: bytes = b"\x00") -> bytes:
    """One TLS record holding a ClientHello offering `suites` at `version` (0x0301 = TLS 1.0 ...)."""
    suites = suites if suites is not None else BCP195_ND_SUITES
    groups = struct.pack(">HHH", 4, 0x001D, 0x0017)
    sigalgs = struct.pack(">H", 6) + struct.pack(">HHH", 0x0401, 0x0804, 0x0201)
    exts = (_ext(0x000A, groups) + _ext(0x000B, b"\x01\x00") + _ext(0x000D, sigalgs)
            + _ext(0xFF01, b"\x00"))  # empty renegotiation_info
    body = (struct.pack(">H", version) + os.urandom(32) + b"\x00"
            + struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
            + bytes([len(compression)]) + compression + struct.pack(">H", len(exts)) + exts)
    hs = bytes([1]) + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", HANDSHAKE, record_version, len(hs)) + hs


def server_answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes (or `timeout`)."""
    sock.settimeout(timeout)
    out = bytearray()
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    return bytes(out)


def describe(answer: bytes) -> str:
    """'alert:protocol_version', 'server_hello', 'nothing' or 'other:..'."""
    if not answer:
        return "nothing"
    if answer[0] == ALERT and len(answer) >= 7:
        return "alert:" + ALERT_NAMES.get(answer[6], str(answer[6]))
    if answer[0] == HANDSHAKE and len(answer) >= 6 and answer[5] == 2:
        return "server_hello"
    return "other:" + answer[:8].hex()


class BioClient:
    """A TLS 1.2 client over MemoryBIOs on a real socket: the test decides which record bytes leave."""

    def __init__(self, port: int, ctx: ssl.SSLContext, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("server closed during the handshake")
                self.incoming.write(data)
        self.sock.sendall(self.outgoing.read())

    def record(self, plaintext: bytes) -> bytes:
        """The encrypted record(s) for `plaintext`, not sent."""
        self.obj.write(plaintext)
        return self.outgoing.read()
