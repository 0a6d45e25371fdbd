"""GET handlers for the ADC's own facts (release, HA nodes, partitions) and SSL profiles."""

from __future__ import annotations

from typing import Any

from dicomtls.engine.rehearsal.nitro_sim.faults import Args, Row, arg_missing, not_found
from dicomtls.engine.rehearsal.nitro_sim.state import NitroState

# `show ns version` text per release imitated (the build numbers are examples of public builds).
BUILDS = {"11.1": "65.23", "12.0": "63.13", "12.1": "65.25", "13.0": "92.31", "13.1": "49.13", "14.1": "29.63"}


class AdcReads:
    state: NitroState

    def get_nsversion(self, name: str | None, args: Args, q: Args) -> Row:
        build = BUILDS.get(self.state.firmware, "1.1")
        return {"version": f"NetScaler NS{self.state.firmware}: Build {build}.nc, Date: Jan  1 2026, 00:00:00   "
                           "(64-bit)", "mode": "1"}

    def get_hanode(self, name: str | None, args: Args, q: Args) -> list[Row]:
        """Node 0 is the node answering (NITRO hanode reference); a standalone ADC lists only itself."""
        me = {"id": "0", "name": "", "ipaddress": "127.0.0.1", "state": "Primary", "hastatus": "ENABLED",
              "hasync": "ENABLED", "haprop": "ENABLED", "ssl2": "NOT PRESENT", "routemonitorstate": "NOT PRESENT"}
        if not self.state.ha:
            return [me]
        primary = self.state.ha == "primary"
        me["state"] = "Primary" if primary else "Secondary"
        peer = {"id": "1", "name": "", "ipaddress": self.state.ha_peer, "state": "Secondary" if primary else "Primary",
                "hastatus": "ENABLED", "hasync": "ENABLED", "haprop": "ENABLED",
                "hasyncfailurereason": self.state.ha_sync_failure or "None"}
        return [me, peer]

    def get_nspartition(self, name: str | None, args: Args, q: Args) -> list[Row]:
        return [{"partitionname": p, "partitionid": str(i), "maxbandwidth": "10240", "maxconn": "1024"}
                for i, p in enumerate(sorted(self.state.partitions), 1)]

    def get_sslprofile(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is not None and name not in self.state.sslprofiles:
            raise not_found("name", name)
        return [{"name": n, **{k: v for k, v in p.items() if k != "tls13" or "tls13" in self.state.flags_known()}}
                for n, p in self.state.sslprofiles.items() if name is None or n == name]

    def get_sslprofile_sslcipher_binding(self, name: str | None, args: Args, q: Args) -> list[Row]:
        if name is None:
            raise arg_missing("name")
        if name not in self.state.sslprofiles:
            raise not_found("name", name)
        rows: list[dict[str, Any]] = [
            {"name": name, "cipheraliasname": c, "ciphername": c, "cipherpriority": str(i), "description": c}
            for i, c in enumerate(self.state.profile_ciphers.get(name, []), 1)]
        return rows
