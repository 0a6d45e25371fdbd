"""A stateful NITRO simulator, served over real HTTP(S) on loopback with the standard library.

NetScaler cannot run here, so the client, the reconciler, the CLI and the wizard's `--demo
--backend netscaler` all talk to this instead. It follows the public NITRO references (the
NetScaler 12.0 NITRO API docs, netscaler/adc-nitro-go, citrix/terraform-provider-citrixadc,
netscaler/ansible-collection-netscaleradc; "§n" are sections of docs/research/nitro.md) down to
status lines and error codes: login with a NITRO_AUTH_TOKEN cookie (§2), features off at
start (§3), systemfile without overwrite (§4), sslcertkey refusing a missing file or a key that does
not match (§5), an SSL_TCP lbvserver auto-creating its sslvserver with DEFAULT bound and curstate
DOWN until a service (or a service group with a member) that is UP and a certificate are bound (§9),
service groups with members by IP creating `server` objects and the 273/258/351/1092/1093 refusals
(§7, §15), numbers as strings in GETs and empty collections omitting the key (§1), the Default SSL
Profile refusals 3740/3679 (§10.2), bulk array payloads with 207 Multi Status (§13). Points the notes
mark [UNVERIFIED] are marked so here too.

Tests get a handle with the URL, the management certificate's fingerprint, the state (for
checking object by object), a request log (never holding bodies, so never a password), and fault
switches: expire sessions at request N, die after N writes, the Default SSL Profile, an older
firmware that does not know `tls13`.

It is a rehearsal part, not the production backend: it imports nothing of engine.backends, so it
stays an independent check of the NITRO client.

Modules: catalog (names the ADC knows), faults (error responses, request parsing), state (the running
configuration), reads / writes / ssl_writes (the handlers), api (them together), certs (management
certificate), http (the server and the handle tests hold).
"""

from dicomtls.engine.rehearsal.nitro_sim.certs import make_management_cert, pem_fingerprint
from dicomtls.engine.rehearsal.nitro_sim.faults import Fault
from dicomtls.engine.rehearsal.nitro_sim.http import SimHandle, start_in_thread
from dicomtls.engine.rehearsal.nitro_sim.state import Faults, LogEntry, NitroState

__all__ = ["Fault", "Faults", "LogEntry", "NitroState", "SimHandle", "make_management_cert", "pem_fingerprint",
           "start_in_thread"]
