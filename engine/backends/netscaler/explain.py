"""Every NITRO error code a run can meet, as (problem, fix) in plain words: no ADC message reaches the
user without an explanation and a fix. Codes and messages from the NITRO 12.0 reference's error list,
field reports cited per group, and [UNVERIFIED] where only the field notes name them. A fix that
names what to change in the plan (or, in the wizard, on a step) is an Advice code for each face to
phrase (engine.advice); the others read the same everywhere."""

from __future__ import annotations

from typing import Protocol

from dicomtls.engine.advice import Advice, advice

Fix = str | Advice  # plain words, or advice a face phrases
SESSION_CODES = {444, 1027}  # "Session expired or killed", "Not logged in or connection timed out"


class Who(Protocol):
    url: str
    username: str
    password_source: str


def explain(code: int, status: int, message: str, req: str, client: Who) -> tuple[str, Fix]:
    """(problem, fix) for a NITRO error: the errorcode and the ADC's own message, and what to do."""
    said = f"NITRO {code} \"{message}\"" if code else f"HTTP {status}"
    found = (_session(code, status, said, client) or _profile_and_ha(code, said, req)
             or _files_and_names(code, said, req) or _request_form(code, said, req) or _objects(code, said, req, client))
    return found or (f"the NetScaler refused {req}: {said} (HTTP {status})",
                     "fix the cause named in the ADC's message, then run again; nothing after this step was changed")


def _session(code: int, status: int, said: str, client: Who) -> tuple[str, Fix] | None:
    """The login and the session: refused (354, 355, 1025, or HTTP 401), ended (444, 1027), too many (445, 446)."""
    if code in (354, 355, 1025) or (status == 401 and code not in SESSION_CODES):
        return (f"the NetScaler at {client.url} refused the login for {client.username!r}: {said}",
                advice("ns.login_refused", source=client.password_source))
    if code in SESSION_CODES:
        return (f"the NetScaler ended the session again right after a new login ({said})",
                "check the system user's session timeout and the ADC's session limits, then run again")
    if code in (445, 446):
        return (f"the NetScaler has too many sessions or connections open ({said})",
                "close idle GUI/NITRO sessions (show system session; kill system session <sid>), then run again")
    return None


def _objects(code: int, said: str, req: str, client: Who) -> tuple[str, Fix] | None:
    """Refusals of what a request carries: attributes, existing objects, the pair, ciphers, features, rights."""
    if code in (278, 1090, 1097, 1233, 1234):
        return (f"the NetScaler rejected {req}: {said}",
                "the ADC does not accept an attribute or value this tool sent (named in the brackets); its "
                "firmware may be older than this tool expects (`show ns version`; tls13 needs 12.1 or later). "
                "Nothing after this step was changed")
    if code == 273:
        return (f"{req}: the object already exists on the ADC ({said})",
                "run again: each run reads the current state first and reuses what is there")
    if code == 1538:
        return (f"{req}: the certificate and the private key do not match ({said})",
                advice("ns.pair_mismatch"))
    if code in (1537, 1614):
        return (f"{req}: the ADC cannot read the private key ({said})",
                advice("key.passphrase_needed"))
    if code in (1536, 1589):
        return (f"{req}: the ADC refused the certificate ({said})",
                advice("ns.cert_refused"))
    if code == 3585:
        return (f"{req}: the new certificate is for a different name than the one installed ({said})",
                advice("ns.name_changed"))
    if code == 1541:
        return (f"{req}: the certificate is still in use ({said})", "unbind it first, then run again")
    if code == 3621:
        return (f"{req}: the ADC does not know a cipher name ({said})",
                advice("ns.cipher_unknown"))
    if code == 1067:
        return (f"{req}: a feature it needs is not enabled ({said})",
                "run again: features LB and SSL are enabled first; or `enable ns feature LB SSL` on the ADC")
    if code == 356:
        return (f"{req}: the ADC's license does not include a feature this needs ({said})",
                "SSL offload and load balancing need a license with them; check `show ns license`")
    if code == 2138:
        return (f"{req}: user {client.username!r} is not allowed to do this ({said})",
                "use an ADC user with a superuser command policy for this tool")
    return None


def _profile_and_ha(code: int, said: str, req: str) -> tuple[str, Fix] | None:
    """The codes of ADCs that are not a standalone legacy-mode box: the Default SSL Profile (3679, 3738,
    3739, 3740: field reports in citrix/terraform-provider-citrixadc#164 and the 12.0 error list) and HA
    (368, "Operation permitted only on primary node"). Never suggests disabling the Default SSL Profile:
    the ADC refuses that once it is enabled (3738)."""
    if code in (3740, 3679):
        return (f"{req}: the ADC runs the Default SSL Profile, so ciphers and protocols cannot be set on the "
                f"virtual server itself ({said})",
                "run again: each run reads the ADC's SSL mode first and then sets them in an SSL profile of its "
                "own; if it repeats, someone changed the mode meanwhile")
    if code == 3738:
        return (f"{req}: the ADC refuses to turn its Default SSL Profile off once it is on ({said})",
                "keep it on: this tool works in that mode (an SSL profile of its own), nothing needs to change")
    if code == 3739:
        return (f"{req}: TLS 1.3 on a NetScaler needs its Default SSL Profile, which this ADC runs without "
                f"({said})", advice("ns.need_tls12_policy"))
    if code == 3741:
        return (f"{req}: that cipher is already bound ({said})",
                "run again: each run reads the bindings first and binds only what is missing")
    if code == 368:
        return (f"{req}: this node is the secondary of an HA pair and accepts no configuration ({said})",
                advice("ns.not_primary", primary="`show ha node` on either node names it"))
    return None


def _files_and_names(code: int, said: str, req: str) -> tuple[str, Fix] | None:
    """Files (1642 exists, 1155 absent, 1647 not visible in this partition) and per-resource "not found"
    codes (258 in general; 344 service, 461 vserver, 1540 certificate, 3711 cipher group, as the
    citrix/terraform-provider-citrixadc acceptance test data and the 12.0 error list give them)."""
    if code == 1642:
        return (f"{req}: a file of that name already exists on the ADC and is never overwritten ({said})",
                "run again: the next run compares its content; if it differs, rename the local file (the name on "
                "the ADC follows it) or remove the stale file on the ADC")
    if code == 1647:
        return (f"{req}: the ADC cannot find an input file where this partition sees it (the files are uploaded "
                f"to the partition's own SSL folder first) ({said})", advice("ns.check_partition"))
    if code == 1155:
        return (f"{req}: the ADC has no such file or folder ({said})", advice("ns.check_partition"))
    if code in (258, 344, 461, 1540, 3711):
        return (f"{req}: the ADC has no such object ({said})",
                "run again: each run reads the current state first; if it repeats, someone is changing the ADC "
                "at the same time")
    return None


def _request_form(code: int, said: str, req: str) -> tuple[str, Fix] | None:
    """Refusals of a request's form or of a built-in object (NITRO 12.0 error list; 351 in
    citrix/terraform-provider-citrixadc#35, 1092 in netscaler/ansible-collection-netscaleradc#328)."""
    if code in (1232, 1240):
        return (f"{req}: this ADC's release does not know that request ({said})",
                "check the release (`show ns version`): this tool supports 12.0 and later; nothing after this step "
                "was changed")
    if code in (1091, 1092, 1093, 1095):
        return (f"{req}: the ADC found the request's arguments incomplete or contradictory ({said})",
                "nothing after this step was changed; report the message and the ADC's release (`show ns version`) "
                "to this tool's maintainers, and meanwhile use the exported CLI lines for that step")
    if code == 1544:
        return (f"{req}: an object of that name exists but is not an SSL virtual server ({said})",
                advice("ns.rename_vserver"))
    if code == 1542:
        return (f"{req}: that certificate binding is already gone ({said})", "run again: each run reads the bindings "
                "first")
    if code == 1558:
        return (f"{req}: the ADC's built-in cipher groups cannot be changed ({said})",
                advice("ns.rename_cipher_group"))
    if code == 3593:
        return (f"{req}: the cipher group is still in use by a virtual server or profile ({said})",
                "run again; if it repeats, unbind it from what uses it on the ADC first")
    if code == 351:
        return (f"{req}: the ADC has no server object of that name ({said})",
                advice("ns.pacs_by_ip"))
    return None
