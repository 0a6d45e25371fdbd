"""The few DICOM Upper Layer PDUs the terminator reads or writes itself (PS3.8 §9.3).

It reads only the first PDU of a connection (must be an A-ASSOCIATE-RQ) to decide whether to dial
the PACS at all, and writes A-ASSOCIATE-RJ / A-ABORT when it refuses. Everything after the first
PDU is pumped as opaque bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)
PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
             5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}
HEADER_LEN = 6
FIXED_LEN = 68  # protocol version, reserved, called AE, calling AE, 32 reserved bytes
# An A-ASSOCIATE-RQ with 128 presentation contexts of several transfer syntaxes each is ~40 KB;
# user-identity items (e.g. a JWT) add at most 64 KiB each. Anything bigger is not an association.
MAX_ASSOCIATE_RQ = 256 * 1024
# TLS records start with 0x16 (handshake); a plain PDU type byte 1..7 on the TLS port means a
# caller configured without TLS.
TLS_HANDSHAKE_RECORD = 0x16

# A-ASSOCIATE-RJ (result, source, reason) triples, PS3.8 §9.3.4.
RJ_CALLING_AE_NOT_RECOGNIZED = (1, 1, 3)  # rejected-permanent, service-user, calling AE not recognized
RJ_TEMPORARY_CONGESTION = (2, 3, 1)  # rejected-transient, service-provider (presentation), temporary congestion
RJ_LOCAL_LIMIT_EXCEEDED = (2, 3, 2)  # rejected-transient, service-provider (presentation), local limit exceeded

# A-ABORT (source, reason), PS3.8 §9.3.8: source 2 = service-provider.
ABORT_UNRECOGNIZED_PDU = (2, 1)
ABORT_UNEXPECTED_PDU = (2, 2)
ABORT_INVALID_PARAMETER = (2, 6)


class PDUError(Exception):
    """The first PDU is not an acceptable A-ASSOCIATE-RQ. `code` goes to the log; `abort` is what to send."""

    def __init__(self, code: str, message: str, abort: tuple[int, int] | None = ABORT_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.code = code
        self.abort = abort


@dataclass(frozen=True)
class AssociateRQ:
    called_ae: str
    calling_ae: str
    protocol_version: int
    length: int  # PDU length field (bytes after the 6-byte header)


def check_header(header: bytes) -> int:
    """Validate the first PDU's header; return the length of the body to read."""
    if len(header) != HEADER_LEN:
        raise PDUError("short_pdu", f"only {len(header)} bytes before the connection ended", abort=None)
    pdu_type, length = header[0], int(struct.unpack(">I", header[2:6])[0])
    if pdu_type != ASSOCIATE_RQ:
        if pdu_type in PDU_NAMES:
            raise PDUError("not_associate_rq", f"first PDU is {PDU_NAMES[pdu_type]} (type 0x{pdu_type:02x}), "
                           "not an A-ASSOCIATE-RQ", abort=ABORT_UNEXPECTED_PDU)
        raise PDUError("not_dicom", f"first bytes are not a DICOM PDU (type byte 0x{pdu_type:02x})",
                       abort=ABORT_UNRECOGNIZED_PDU)
    if length < FIXED_LEN:
        raise PDUError("pdu_too_short", f"A-ASSOCIATE-RQ length {length} is below the {FIXED_LEN}-byte minimum")
    if length > MAX_ASSOCIATE_RQ:
        raise PDUError("pdu_too_large", f"A-ASSOCIATE-RQ length {length} exceeds the {MAX_ASSOCIATE_RQ}-byte cap")
    return length


def _ae(raw: bytes, which: str) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise PDUError("bad_ae_title", f"{which} AE title is not ASCII") from None
    if any(not (0x20 <= ord(c) <= 0x7E) or c == "\\" for c in text):
        raise PDUError("bad_ae_title", f"{which} AE title has characters DICOM does not allow")
    return text.strip()


def parse_associate_rq(pdu: bytes) -> AssociateRQ:
    """Parse a whole A-ASSOCIATE-RQ (header included); check that its items are well formed."""
    length = check_header(pdu[:HEADER_LEN])
    body = pdu[HEADER_LEN:]
    if len(body) != length:
        raise PDUError("short_pdu", f"A-ASSOCIATE-RQ announced {length} bytes but {len(body)} arrived", abort=None)
    version = struct.unpack(">H", body[0:2])[0]
    if not version & 1:
        raise PDUError("bad_protocol_version", f"protocol version 0x{version:04x} lacks version 1")
    called, calling = _ae(body[4:20], "called"), _ae(body[20:36], "calling")
    pos = FIXED_LEN
    while pos < length:  # variable items: type, reserved, 2-byte length, value
        if pos + 4 > length:
            raise PDUError("bad_item", "a variable item header runs past the end of the PDU")
        item_len = struct.unpack(">H", body[pos + 2:pos + 4])[0]
        if body[pos] not in (0x10, 0x20, 0x50):
            raise PDUError("bad_item", f"unknown variable item type 0x{body[pos]:02x} in A-ASSOCIATE-RQ")
        pos += 4 + item_len
    if pos != length:
        raise PDUError("bad_item", "a variable item runs past the end of the PDU")
    return AssociateRQ(called_ae=called, calling_ae=calling, protocol_version=version, length=length)


def associate_rj(result: int, source: int, reason: int) -> bytes:
    return struct.pack(">BBIBBBB", ASSOCIATE_RJ, 0, 4, 0, result, source, reason)


def a_abort(source: int, reason: int) -> bytes:
    return struct.pack(">BBIBBBB", ABORT, 0, 4, 0, 0, source, reason)


class PduTracker:
    """Follows PDU boundaries in one direction of a pumped stream, to tell the log how the
    association ended (released, aborted, rejected) whatever the transport did afterwards.

    Cost: a few operations per PDU; within a PDU's body, one comparison per chunk.
    """

    __slots__ = ("_head", "_remaining", "_body", "_type", "pdus", "associate", "release_rq", "release_rp",
                 "abort")

    def __init__(self) -> None:
        self._head = bytearray()
        self._remaining = 0
        self._body = bytearray()
        self._type = 0
        self.pdus = 0
        self.associate = ""  # "accepted" or "rejected r/s/r" (PACS -> client direction)
        self.release_rq = self.release_rp = False
        self.abort: tuple[int, int] | None = None  # (source, reason)

    def feed(self, data: memoryview | bytes) -> None:
        n, i = len(data), 0
        while i < n:
            if self._remaining:
                take = min(self._remaining, n - i)
                if self._type in (ASSOCIATE_RJ, ABORT) and len(self._body) < 4:
                    self._body += data[i:i + min(take, 4 - len(self._body))]
                self._remaining -= take
                i += take
                if not self._remaining:
                    self._done()
                continue
            take = min(HEADER_LEN - len(self._head), n - i)
            self._head += data[i:i + take]
            i += take
            if len(self._head) == HEADER_LEN:
                self._type = self._head[0]
                self._remaining = struct.unpack(">I", self._head[2:6])[0]
                self._head.clear()
                self._body.clear()
                self.pdus += 1
                if not self._remaining:
                    self._done()

    def _done(self) -> None:
        t, body = self._type, self._body
        if t == ASSOCIATE_AC:
            self.associate = "accepted"
        elif t == ASSOCIATE_RJ and len(body) == 4:
            self.associate = f"rejected {body[1]}/{body[2]}/{body[3]}"
        elif t == RELEASE_RQ:
            self.release_rq = True
        elif t == RELEASE_RP:
            self.release_rp = True
        elif t == ABORT and len(body) == 4:
            self.abort = (body[2], body[3])


class ItemTracker(PduTracker):
    """A PduTracker that also counts the data sets in the P-DATA-TF PDUs it sees: on a worklist
    association, the PACS's pending C-FIND-RSPs carry one identifier each and the final response none
    (PS3.7 §9.1.2.1), so this counts the items returned. It reads each PDV's header (PS3.8 §9.3.5,
    Annex E.2: the message control header's bit 0 clear = data set, bit 1 set = last fragment).

    Only worklist listeners use it, on the PACS -> client direction; store associations keep the
    plain tracker, so the counting costs their path nothing.
    """

    __slots__ = ("items", "_h", "_pdu_left", "_pdata", "_pdv_head", "_pdv_left")

    def __init__(self) -> None:
        super().__init__()
        self.items = 0
        self._h = bytearray()  # the PDU header being read
        self._pdu_left = 0
        self._pdata = False
        self._pdv_head = bytearray()  # the PDV header being read: length (4), context ID, control header
        self._pdv_left = 0

    def feed(self, data: memoryview | bytes) -> None:
        super().feed(data)
        n, i = len(data), 0
        while i < n:
            if not self._pdu_left:
                take = min(HEADER_LEN - len(self._h), n - i)
                self._h += data[i:i + take]
                i += take
                if len(self._h) == HEADER_LEN:
                    self._pdata = self._h[0] == P_DATA
                    self._pdu_left = struct.unpack(">I", self._h[2:6])[0]
                    self._h.clear()
                    self._pdv_head.clear()
                    self._pdv_left = 0
                continue
            take = min(self._pdu_left, n - i)
            if self._pdata:
                self._pdvs(data[i:i + take])
            self._pdu_left -= take
            i += take

    def _pdvs(self, data: memoryview | bytes) -> None:
        n, i = len(data), 0
        while i < n:
            if self._pdv_left:
                skip = min(self._pdv_left, n - i)
                self._pdv_left -= skip
                i += skip
                continue
            take = min(6 - len(self._pdv_head), n - i)
            self._pdv_head += data[i:i + take]
            i += take
            if len(self._pdv_head) == 6:
                if self._pdv_head[5] & 0x03 == 0x02:
                    self.items += 1
                # The item length counts the context ID and control header, read already.
                self._pdv_left = max(struct.unpack(">I", self._pdv_head[:4])[0] - 2, 0)
                self._pdv_head.clear()


def outcome(up: PduTracker, down: PduTracker) -> str:
    """The association's end in DICOM terms, from both directions' trackers."""
    if down.associate.startswith("rejected"):
        return f"rejected_by_pacs {down.associate.split()[1]}"
    if up.abort:
        return "aborted_by_client"
    if down.abort:
        return f"aborted_by_pacs {down.abort[0]}/{down.abort[1]}"
    if up.release_rq and down.release_rp:
        return "released"
    if down.release_rq and up.release_rp:
        return "released_by_pacs"
    return "no_release" if down.associate == "accepted" else "no_answer"
