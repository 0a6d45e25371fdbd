"""Write handlers for SSL profiles and their cipher bindings, and binding a profile to a vserver.

Shapes as ryancbutler/Citrix set-nsssl.ps1 sends them: POST sslprofile {name, sslprofiletype, flags};
sslprofile_sslcipher_binding {name, ciphername}; DELETE sslprofile_sslcipher_binding/P?args=cipherName:X.
"""

from __future__ import annotations

from dicomtls.engine.rehearsal.nitro_sim.catalog import BUILTIN_GROUPS, FLAG_VALUES, KNOWN_CIPHERS, PROTOCOL_FLAGS
from dicomtls.engine.rehearsal.nitro_sim.faults import Args, Fault, Row, already_exists, arg_missing, not_found
from dicomtls.engine.rehearsal.nitro_sim.state import NitroState

PROFILE_TYPES = {"FRONTEND": "FrontEnd", "BACKEND": "BackEnd"}


class ProfileWrites:
    state: NitroState

    def _profile_flags(self, item: Row) -> dict[str, str]:
        flags = {k: str(v).upper() for k, v in item.items() if k in PROTOCOL_FLAGS}
        for k, v in flags.items():
            if v not in FLAG_VALUES:
                raise Fault(599, 1097, "Invalid argument value", f"{k}, {v}")
        return flags

    def add_sslprofile(self, name: str | None, item: Row) -> None:
        n = item.get("name")
        if not n:
            raise arg_missing("name")
        if n in self.state.sslprofiles:
            raise already_exists("name", n)
        typ = PROFILE_TYPES.get(str(item.get("sslprofiletype", "FrontEnd")).upper())
        if typ is None:
            raise Fault(599, 1097, "Invalid argument value", f"sslprofiletype, {item.get('sslprofiletype')}")
        base = {f: "ENABLED" for f in self.state.flags_known() if f not in ("ssl3", "tls13")} | {"ssl3": "DISABLED"}
        if "tls13" in self.state.flags_known():
            base["tls13"] = "DISABLED"
        self.state.sslprofiles[n] = {"sslprofiletype": typ, **base, **self._profile_flags(item)}
        self.state.profile_ciphers[n] = ["DEFAULT"]  # a new profile starts with DEFAULT bound

    def update_sslprofile(self, name: str | None, item: Row) -> None:
        n = item.get("name") or name
        if n not in self.state.sslprofiles:
            raise not_found("name", str(n))
        self.state.sslprofiles[n].update(self._profile_flags(item))

    def add_sslprofile_sslcipher_binding(self, name: str | None, item: Row) -> None:
        n, c = item.get("name") or name, item.get("ciphername")
        if not n:
            raise arg_missing("name")
        if not c:
            raise arg_missing("ciphername")
        if n not in self.state.sslprofiles:
            raise not_found("name", n)
        if c not in self.state.ciphergroups and c not in BUILTIN_GROUPS and c not in KNOWN_CIPHERS:
            raise Fault(599, 3621, "No such cipher/cipherAlias/cipherGroup", c)
        bound = self.state.profile_ciphers.setdefault(n, [])
        if c in bound:
            # ansible-collection-netscaleradc#292: a second bind of the same cipher
            raise Fault(599, 3741, "Specified cipher is already bound with higher priority")
        bound.append(c)

    def delete_sslprofile_sslcipher_binding(self, name: str | None, args: Args) -> None:
        if name not in self.state.sslprofiles:
            raise not_found("name", str(name))
        c = args.get("ciphername")
        if not c:
            raise arg_missing("ciphername")
        bound = self.state.profile_ciphers.get(name, [])
        if c not in bound:
            raise not_found("ciphername", c)
        bound.remove(c)

    def _bind_profile(self, vs: str, profile: str) -> None:
        if profile not in self.state.sslprofiles:
            raise not_found("sslProfile", profile)
        if self.state.sslprofiles[profile]["sslprofiletype"] != "FrontEnd":
            raise Fault(599, 1097, "Invalid argument value", f"sslprofile, {profile} is not a FrontEnd profile")
        self.state.sslvservers[vs]["sslprofile"] = profile
