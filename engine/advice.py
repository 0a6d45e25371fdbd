"""Advice as facts: what to do next, as a code with its data, for each face to phrase.

The engine knows *what* fixes a problem (give the PACS's own AE title, swap the two files), not how a
face spells it: the CLI says `--called-ae`, the wizard names the field on its PACS step. So advice
that depends on the face travels as an Advice, attached to a ladder Step (`advice`, next to its
face-neutral `cause`), a UserError or CertError (`advice`, next to its face-neutral `fix`) or a diff
Change (`advice`, next to its `hint`). cli/phrasing.py and wizard/advice.py each render every code;
a test checks both tables against CODES. Advice that reads the same in every face stays plain text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# code -> the data keys it carries (all of them, always). One home for the list of codes.
CODES: dict[str, tuple[str, ...]] = {
    # the echo ladder (engine.verify)
    "ae.calling_invalid": (),
    "ae.called_invalid": (),
    "echo.bad_timeout": (),
    "echo.tls_options_without_tls": (),
    "echo.expected_cert_unreadable": (),
    "echo.expected_cert_not_a_cert": (),
    "echo.no_response": (),
    "reject.called_ae": (),
    "reject.calling_ae": ("calling",),
    "tls.untrusted_by_ca": (),
    "tls.untrusted": (),
    "tls.silent_port": ("host", "port"),
    "tls.protocol_version": (),
    "tls.no_shared_cipher": (),
    "tls.not_tls": (),
    "tls.hung_up": (),
    "tls.unusable_settings": (),
    "assoc.no_answer": (),
    "assoc.tls_port": (),
    "assoc.maybe_tls_port": (),
    # certificate and key checks (engine.certs)
    "pair.swapped": ("cert", "key"),
    "pair.give_cert": (),
    "pair.give_key": (),
    "cert.expired": (),
    "key.passphrase_needed": (),
    "files.exist": (),
    "cert.days": (),
    # the built-in backend (engine.backends.builtin)
    "plan.cert_unreadable": ("path",),
    "port.in_use": (),  # the conflict's hint names the address: the faces say what to do
    "port.no_address": (),
    "port.privileged": (),
    # the NetScaler backend (engine.backends.netscaler): a pair on the ADC that is not the plan's
    "ns.renew_or_rename": (),  # the pair's name holds another certificate
    "ns.renew_binding": (),  # the vserver presents another pair
    "ns.resolve_conflicts": (),  # apply refused: conflicts in the change list
    # the NetScaler backend's hints and NITRO refusals that name what to change (the plan or the wizard's fields)
    "ns.connection_missing": (),
    "ns.check_url": (),
    "ns.slow": (),
    "ns.fingerprint_changed": (),
    "ns.untrusted": ("seen",),
    "ns.ca_file_bad": (),
    "ns.login_refused": ("source",),
    "ns.not_primary": ("primary",),
    "ns.firmware_too_old": ("release",),
    "ns.check_partition": (),
    "ns.pair_mismatch": (),
    "ns.cert_refused": (),
    "ns.name_changed": (),
    "ns.reuse_pair": ("name",),
    "ns.cipher_unknown": (),
    "ns.need_tls12_policy": (),
    "ns.rename_cipher_group": (),
    "ns.rename_profile": (),
    "ns.adopt_profile": ("have",),
    "ns.rename_service": (),
    "ns.rename_or_group": (),
    "ns.add_member": ("ip", "port"),
    "ns.pacs_by_ip": (),
    "ns.rename_vserver": (),
    "ns.vserver_address_taken": ("name", "taken"),
    "plan.invalid": (),  # engine.plan_errors.PlanError: its items say where
    "demo.saved_plan_invalid": ("path",),
    "demo.not_a_demo_folder": ("path",),
}


class Advice(BaseModel):
    """One piece of advice: `code` (a key of CODES) and the data a face needs to phrase it."""

    model_config = ConfigDict(frozen=True)

    code: str
    data: dict[str, str | int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> Advice:
        if self.code not in CODES:
            raise ValueError(f"unknown advice code {self.code!r}; add it to engine.advice.CODES and both faces")
        if set(self.data) != set(CODES[self.code]):
            raise ValueError(f"advice {self.code!r} carries {sorted(self.data)}, expected {sorted(CODES[self.code])}")
        return self


def advice(code: str, **data: Any) -> Advice:
    """Advice(code, data), with paths and other values turned into text or whole numbers."""
    return Advice(code=code, data={k: v if isinstance(v, int) else str(v) for k, v in data.items()})
