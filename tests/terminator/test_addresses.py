"""The PACS's address is resolved once, not on every association: an IP address never goes to the
resolver, a host name is resolved on its first dial and again only after a dial fails or a reload."""

from __future__ import annotations

import asyncio
import socket

from dicomtls.engine.terminator import health


def _counting(loop: asyncio.AbstractEventLoop) -> list[str]:
    calls: list[str] = []
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, **kw):
        calls.append(host)
        return await real(host, port, **kw)

    loop.getaddrinfo = getaddrinfo
    return calls


def test_a_name_is_resolved_once_and_again_after_a_failed_dial_or_a_reload():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def run() -> list[str]:
        calls = _counting(asyncio.get_running_loop())
        health.forget_addresses()
        for _ in range(3):
            (await health.open_tcp("localhost", port, 5)).close()
        (await health.open_tcp("127.0.0.1", port, 5)).close()  # an address: no lookup at all
        assert calls == ["localhost"]
        listener.close()  # the PACS goes away: the dial fails and the name is looked up again next time
        try:
            await health.open_tcp("localhost", port, 2)
        except OSError:
            pass
        else:
            raise AssertionError("the dial to a closed port succeeded")
        again = socket.create_server(("127.0.0.1", port))
        try:
            (await health.open_tcp("localhost", port, 5)).close()
            health.forget_addresses()  # what Terminator.reload does
            (await health.open_tcp("localhost", port, 5)).close()
        finally:
            again.close()
        return calls

    assert asyncio.run(run()) == ["localhost", "localhost", "localhost"]
