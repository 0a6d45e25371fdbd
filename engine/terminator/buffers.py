"""The pump's buffers: fixed, mmap-backed, kept on one free list for the whole process.

A pump (pump.py) holds a buffer per direction only while it holds bytes: it takes one from the free list
when a step starts and gives it back when the step leaves it empty, so idle associations hold none.
"""

from __future__ import annotations

import mmap

BUF_SIZE = 256 * 1024


class Buffer:
    """A fixed buffer: data lives in [start, end); reads append at end.

    An anonymous mmap, not a bytearray: CPython zero-fills a bytearray, so all of it is resident from
    the start (two 256 KiB buffers x 1,000 idle associations = 600 MB); the kernel commits an mmap's
    pages only when touched, so an echoing association costs a few KiB and a bulk one the full size
    (benchmarks/repro/pump_buffers_resident.py).
    """

    __slots__ = ("buf", "mv", "start", "end")

    def __init__(self, size: int) -> None:
        self.buf = mmap.mmap(-1, size)
        self.mv = memoryview(self.buf)
        self.start = self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def space(self) -> int:
        return len(self.buf) - self.end

    def consumed(self, n: int) -> None:
        self.start += n
        if self.start == self.end:
            self.start = self.end = 0

    @classmethod
    def take(cls, size: int) -> Buffer:
        """A buffer from the free list, or a new one: an mmap and an munmap per association cost more than
        the rest of its set-up (munmap flushes the TLB of every core running this process)."""
        if size == BUF_SIZE and _FREE:
            try:
                return _FREE.pop()
            except IndexError:  # another loop took the last one
                pass
        return cls(size)

    def release(self) -> None:
        """Back to the free list (its touched pages stay resident: FREE_MAX bounds that), or unmapped."""
        if self is NO_BUF:
            return
        self.start = self.end = 0
        if len(self.buf) == BUF_SIZE and len(_FREE) < FREE_MAX:
            _FREE.append(self)
        else:
            self.mv.release()
            self.buf.close()

    def compact(self) -> None:
        if self.start:
            n = self.end - self.start
            self.buf.move(0, self.start, n)
            self.start, self.end = 0, n


NO_BUF = Buffer(1)  # the placeholder for a buffer a pump does not hold (never read or written)
FREE_MAX = 64  # buffers kept for reuse: 32 associations' worth, at most 16 MiB resident after a bulk burst
_FREE: list[Buffer] = []  # shared by the process's pump loops (list.append/pop are atomic under the GIL)
