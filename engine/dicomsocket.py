"""pynetdicom over a socket the caller connected (and, for TLS, handshook) itself.

The echo ladder does TCP and TLS itself, so it can classify their failures, then runs the association
over the same connection: a terminator sees one client, not a probe plus an association.
"""

from __future__ import annotations

import socket
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import AddressInformation, AssociationSocket

# pynetdicom 3.0 has no public way to run an association over a socket the caller connected. The two
# overridden hooks are small and pinned by the dependency range (pynetdicom>=3.0,<4); if they ever
# change, the TLS echo tests fail loudly.

class ConnectedSocket(AssociationSocket):
    def __init__(self, assoc: Any, connected: socket.socket) -> None:
        self._connected = connected
        super().__init__(assoc, address=AddressInformation.from_tuple(("", 0)))

    def _create_socket(self, address: Any) -> socket.socket:
        return self._connected  # instead of a new, bound, unconnected socket

    def connect(self, primitive: Any) -> None:  # AssociationSocket.connect, minus the connecting
        try:
            assert self.socket is not None
            self.socket.settimeout(None)  # the DUL polls with select(); reads must not time out
            self.assoc.requestor.address_info = AddressInformation.from_tuple(self.socket.getsockname())
            self._is_connected = True
            evt.trigger(self.assoc, evt.EVT_CONN_OPEN, {"address": primitive.address_info.as_tuple})
            primitive.result = "Evt2"
        except OSError:
            primitive.result = "Evt17"
            self.socket = None
        finally:
            self.provider_queue.put(primitive)
            self._ready.set()


class OneConnectionAE(AE):
    def __init__(self, connected: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connected = connected

    def _create_socket(self, assoc: Any, address: Any, tls_args: Any) -> AssociationSocket:
        return ConnectedSocket(assoc, self._connected)
