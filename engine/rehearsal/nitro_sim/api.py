"""The simulated NITRO API: the read and write handlers over one NitroState."""

from __future__ import annotations

from dicomtls.engine.rehearsal.nitro_sim.adc_reads import AdcReads
from dicomtls.engine.rehearsal.nitro_sim.profile_writes import ProfileWrites
from dicomtls.engine.rehearsal.nitro_sim.reads import Reads
from dicomtls.engine.rehearsal.nitro_sim.ssl_writes import SslWrites
from dicomtls.engine.rehearsal.nitro_sim.state import NitroState
from dicomtls.engine.rehearsal.nitro_sim.writes import Writes


class Api(Reads, AdcReads, Writes, SslWrites, ProfileWrites):
    """Request dispatch over a NitroState: method + resource -> handler; raises Fault."""

    def __init__(self, state: NitroState, partition: str | None = None) -> None:
        self.state = state
        self.partition = partition
