"""After a renewal (`update ssl certKey … -noDomainCheck` with new file names): remove the pair's
previous certificate and key files from /nsconfig/ssl.

This runs as the step after the update, and apply stops at the first failed step, so the old files
go only once the ADC has accepted the new ones: the vserver keeps a bound, loadable certificate all
along. A file still named by another cert-key pair, or kept outside /nsconfig/ssl, stays.
NITRO: DELETE /nitro/v1/config/systemfile/<name>?args=filelocation:%2Fnsconfig%2Fssl
(NITRO reference, systemfile: https://github.com/subbendumajumder/netscaler-nitro-api/blob/66cca7719e/
docs/configuration/system/systemfile/systemfile.md).
"""

from __future__ import annotations

from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.models import CertKey, NitroRequest

SSL_DIR = "/nsconfig/ssl"


def _in_ssl_dir(path: str) -> str | None:
    """The bare file name if `path` is in /nsconfig/ssl (NITRO shows either form), else None."""
    if path.startswith(SSL_DIR + "/"):
        path = path[len(SSL_DIR) + 1:]
    return path if path and "/" not in path else None


def old_file_removals(old: CertKey, others: list[CertKey], new_files: set[str],
                      files_there: set[str]) -> list[tuple[Change, NitroRequest]]:
    """The removal of `old`'s certificate and key files, for the step after its in-place update."""
    in_use = {n for ck in others for n in (_in_ssl_dir(ck.cert), _in_ssl_dir(ck.key)) if n}
    out: list[tuple[Change, NitroRequest]] = []
    for what, path in (("certificate", old.cert), ("key", old.key)):
        name = _in_ssl_dir(path)
        if not name or name in new_files or name in in_use or name not in files_there:
            continue
        c = Change(kind="systemfile", name=f"{SSL_DIR}/{name}", action=Action.UPDATE,
                   summary=f"remove the replaced {what}, once the pair holds the new one",
                   fields={"present": (True, False)},
                   cli=[f"# remove {SSL_DIR}/{name} (from a shell: rm {SSL_DIR}/{name})"])
        out.append((c, NitroRequest(method="DELETE", resource="systemfile", name=name,
                                    args={"filelocation": SSL_DIR})))
    return out
