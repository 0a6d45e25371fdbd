"""The status endpoint: `GET /status` answered with one JSON object, `GET /metrics` with the
Prometheus text format (metrics.py), over HTTP/1.0.

Where: a unix socket `control.sock` in the state dir (mode 0600, so only the terminator's own user
can read it) when the plan's [builtin] status_port is 0 (the default), otherwise 127.0.0.1:status_port
(for monitoring tools that want TCP; loopback only, never a public address). `dicomtls status` reads
it; so can `curl --unix-socket STATE/control.sock http://x/status`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator.metrics import EXPOSITION_CONTENT_TYPE

MAX_REQUEST = 4096
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the NUL


async def start_control(get_status: Callable[[], dict[str, Any]], sock_path: Path, status_port: int = 0,
                        get_metrics: Callable[[], bytes] | None = None) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = head.split(b"\r\n", 1)[0].split()
            ctype = b"application/json"
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1] in (b"/status", b"/"):
                body, code = json.dumps(get_status(), default=str).encode(), b"200 OK"
            elif len(parts) >= 2 and parts[0] == b"GET" and parts[1] == b"/metrics" and get_metrics is not None:
                body, code, ctype = get_metrics(), b"200 OK", EXPOSITION_CONTENT_TYPE.encode()
            else:
                body, code = b'{"error": "use GET /status or GET /metrics"}', b"404 Not Found"
            writer.write(b"HTTP/1.0 " + code + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    if status_port:
        return await asyncio.start_server(handle, "127.0.0.1", status_port, limit=MAX_REQUEST)
    check_unix_path(sock_path)
    sock_path.parent.mkdir(parents=True, exist_ok=True)
    if sock_path.exists() or sock_path.is_symlink():
        sock_path.unlink()
    old = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(handle, str(sock_path), limit=MAX_REQUEST)
    finally:
        os.umask(old)


def check_unix_path(sock_path: Path) -> None:
    if len(os.fsencode(str(sock_path))) > UNIX_PATH_MAX:
        raise UserError(f"the state dir path is too long for the control socket ({sock_path})",
                        "set a shorter [builtin] state_dir, or status_port = PORT to use loopback TCP instead")


def query_status(sock_path: Path, status_port: int = 0, timeout: float = 3.0) -> dict[str, Any]:
    """Ask a running terminator for its status; raises OSError if none answers."""
    status: dict[str, Any] = json.loads(query(sock_path, status_port, "/status", timeout))
    return status


def query(sock_path: Path, status_port: int = 0, path: str = "/status", timeout: float = 3.0) -> bytes:
    """GET `path` from a running terminator's control endpoint: the body; raises OSError if none answers."""
    if status_port:
        s = socket.create_connection(("127.0.0.1", status_port), timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(sock_path))
        except OSError:
            s.close()
            raise
    with s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: dicomtls\r\n\r\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        first = head.split(b"\r\n")[0].decode(errors="replace")
        raise OSError(f"status endpoint answered {first!r}")
    return body
