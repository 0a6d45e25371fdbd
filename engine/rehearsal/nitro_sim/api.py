"""The simulated NITRO API: the read and write handlers over one NitroState."""

from __future__ import annotations

from engine.rehearsal.nitro_sim.reads import Reads
from engine.rehearsal.nitro_sim.ssl_writes import SslWrites
from engine.rehearsal.nitro_sim.state import NitroState
from engine.rehearsal.nitro_sim.writes import Writes


class Api(Reads, Writes, SslWrites):
    """Request dispatch over a NitroState: method + resource -> handler; raises Fault."""

    def __init__(self, state: NitroState) -> None:
        self.s = state
