"""Just enough of the DICOM Upper Layer (PS3.8 §9.3) and of the C-ECHO command (PS3.7 §9.3.5) to
talk DICOM without pynetdicom: the benchmark holds 1,000 associations in one process, which
pynetdicom (a thread per association) cannot, and the reliability tests want exact bytes.

Encoders return whole PDUs (header included). `read_pdu` / `async_read_pdu` read one PDU from a
socket / an asyncio stream, refusing a length above `limit`.
"""

from __future__ import annotations

import asyncio
import socket
import struct

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPL_CLASS_UID = "1.2.826.0.1.3680043.9.7433.1.1"  # a UID root for test software; any valid UID works
IMPL_VERSION = "DICOMTLS_BENCH"

ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
DEFAULT_LIMIT = 1 << 20


class PDUError(Exception):
    pass


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii")[:16].ljust(16)


def _user_info(max_pdu: int) -> bytes:
    return _item(0x50, _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, IMPL_CLASS_UID.encode())
                 + _item(0x55, IMPL_VERSION.encode()))


def associate_rq(calling: str = "BUTTERFLY", called: str = "ANY-SCP",
                 contexts: list[tuple[int, str, list[str]]] | None = None, max_pdu: int = 16384) -> bytes:
    """An A-ASSOCIATE-RQ; default: one Verification context (id 1, implicit VR little endian)."""
    contexts = contexts or [(1, VERIFICATION, [IMPLICIT_LE])]
    items = _item(0x10, APP_CONTEXT.encode())
    for cid, abstract, transfers in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in transfers)
        items += _item(0x20, struct.pack(">BBBB", cid, 0, 0, 0) + sub)
    items += _user_info(max_pdu)
    return _pdu(ASSOCIATE_RQ, struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\0" * 32 + items)


def parse_associate_rq(pdu: bytes) -> tuple[str, str, list[tuple[int, str, list[str]]]]:
    """(calling AE, called AE, [(context id, abstract syntax, [transfer syntaxes])])."""
    body = pdu[6:]
    called, calling = body[4:20].decode("ascii", "replace").strip(), body[20:36].decode("ascii", "replace").strip()
    contexts = []
    pos = 68
    while pos + 4 <= len(body):
        t, n = body[pos], struct.unpack(">H", body[pos + 2:pos + 4])[0]
        value = body[pos + 4:pos + 4 + n]
        if t == 0x20:
            cid, abstract, transfers, sp = value[0], "", [], 4
            while sp + 4 <= len(value):
                st, sn = value[sp], struct.unpack(">H", value[sp + 2:sp + 4])[0]
                text = value[sp + 4:sp + 4 + sn].decode("ascii", "replace").rstrip("\0")
                if st == 0x30:
                    abstract = text
                elif st == 0x40:
                    transfers.append(text)
                sp += 4 + sn
            contexts.append((cid, abstract, transfers))
        pos += 4 + n
    return calling, called, contexts


def associate_ac(rq: bytes, max_pdu: int = 16384) -> bytes:
    """Accept every proposed context with its first transfer syntax (an SCP that takes anything)."""
    calling, called, contexts = parse_associate_rq(rq)
    items = _item(0x10, APP_CONTEXT.encode())
    for cid, _abstract, transfers in contexts:
        items += _item(0x21, struct.pack(">BBBB", cid, 0, 0, 0)
                       + _item(0x40, (transfers[0] if transfers else IMPLICIT_LE).encode()))
    items += _user_info(max_pdu)
    return _pdu(ASSOCIATE_AC, struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\0" * 32 + items)


def associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(ASSOCIATE_RJ, bytes([0, result, source, reason]))


def release_rq() -> bytes:
    return _pdu(RELEASE_RQ, b"\0\0\0\0")


def release_rp() -> bytes:
    return _pdu(RELEASE_RP, b"\0\0\0\0")


def abort(source: int = 0, reason: int = 0) -> bytes:
    return _pdu(ABORT, bytes([0, 0, source, reason]))


def p_data_header(length: int) -> bytes:
    """The 6-byte header of a P-DATA-TF whose body (PDV items) is `length` bytes."""
    return struct.pack(">BBI", P_DATA, 0, length)


# --- commands (implicit VR little endian) -----------------------------------------------------------

def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def _command(elements: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_element(t, v) for t, v in elements)
    return _element(0x0000, struct.pack("<I", len(body))) + body


def _pdv(context_id: int, command: bytes) -> bytes:
    # PDV item: length (4), presentation context id, message control header 0x03 = command, last fragment
    return _pdu(P_DATA, struct.pack(">IBB", len(command) + 2, context_id, 0x03) + command)


def c_echo_rq(message_id: int, context_id: int = 1) -> bytes:
    return _pdv(context_id, _command([(0x0002, _uid(VERIFICATION)), (0x0100, struct.pack("<H", C_ECHO_RQ)),
                                      (0x0110, struct.pack("<H", message_id)),
                                      (0x0800, struct.pack("<H", 0x0101))]))


def c_echo_rsp(message_id: int, status: int = 0, context_id: int = 1) -> bytes:
    return _pdv(context_id, _command([(0x0002, _uid(VERIFICATION)), (0x0100, struct.pack("<H", C_ECHO_RSP)),
                                      (0x0120, struct.pack("<H", message_id)),
                                      (0x0800, struct.pack("<H", 0x0101)), (0x0900, struct.pack("<H", status))]))


def parse_command(pdu: bytes) -> tuple[int, dict[int, bytes]] | None:
    """(context id, {element: value}) of a P-DATA-TF holding one whole command PDV; else None."""
    if len(pdu) < 12 or pdu[0] != P_DATA:
        return None
    n, cid, mch = struct.unpack(">IBB", pdu[6:12])
    if not mch & 0x01 or 12 + n - 2 > len(pdu):
        return None
    data, out, pos = pdu[12:12 + n - 2], {}, 0
    while pos + 8 <= len(data):
        _group, elem, vl = struct.unpack("<HHI", data[pos:pos + 8])
        out[elem] = data[pos + 8:pos + 8 + vl]
        pos += 8 + vl
    return cid, out


def echo_status(pdu: bytes) -> tuple[int, int] | None:
    """(message id responded to, status) if `pdu` is a C-ECHO-RSP."""
    parsed = parse_command(pdu)
    if parsed is None:
        return None
    _cid, el = parsed
    if struct.unpack("<H", el.get(0x0100, b"\0\0"))[0] != C_ECHO_RSP:
        return None
    return struct.unpack("<H", el[0x0120])[0], struct.unpack("<H", el[0x0900])[0]


# --- reading -----------------------------------------------------------------------------------------

def _check_header(header: bytes, limit: int) -> int:
    length = struct.unpack(">I", header[2:6])[0]
    if length > limit:
        raise PDUError(f"PDU type 0x{header[0]:02x} announces {length} bytes (limit {limit})")
    return length


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_pdu(sock: socket.socket, limit: int = DEFAULT_LIMIT) -> bytes:
    header = recv_exact(sock, 6)
    return header + recv_exact(sock, _check_header(header, limit))


async def async_read_pdu(reader: asyncio.StreamReader, limit: int = DEFAULT_LIMIT) -> bytes:
    header = await reader.readexactly(6)
    return header + await reader.readexactly(_check_header(header, limit))


def echo(sock: socket.socket, calling: str = "BUTTERFLY", called: str = "ANY-SCP", message_id: int = 1) -> int:
    """Associate, C-ECHO, release over a connected (TLS) socket; returns the C-ECHO status.
    Raises PDUError if the association is rejected or aborted."""
    sock.sendall(associate_rq(calling, called))
    ac = read_pdu(sock)
    if ac[0] != ASSOCIATE_AC:
        raise PDUError(f"association refused: PDU type 0x{ac[0]:02x} {ac[6:].hex()}")
    sock.sendall(c_echo_rq(message_id))
    rsp = echo_status(read_pdu(sock))
    if rsp is None or rsp[0] != message_id:
        raise PDUError(f"no C-ECHO-RSP for message {message_id}: {rsp}")
    sock.sendall(release_rq())
    rp = read_pdu(sock)
    if rp[0] != RELEASE_RP:
        raise PDUError(f"release answered with PDU type 0x{rp[0]:02x}")
    return rsp[1]
