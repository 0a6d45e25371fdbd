"""The certificate files and the cert-key pair: upload, create, renew in place, or conflict."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from dicomtls.engine.advice import advice
from dicomtls.engine.backends.base import Action, Change
from dicomtls.engine.backends.netscaler.current import Current
from dicomtls.engine.backends.netscaler.local import LocalCert, normalise_pem
from dicomtls.engine.backends.netscaler.models import CertKey, NitroRequest
from dicomtls.engine.backends.netscaler.renewal import old_file_removals
from dicomtls.engine.backends.netscaler.steps import MAX_FILENAME, ApplyStep, batch, cli_quote
from dicomtls.engine.plan import Plan


def plan_certificate(plan: Plan, cur: Current, local: LocalCert, replace_cert: bool, passphrase: str | None,
                     ck_name: str, changes: list[Change], steps: list[ApplyStep]) -> None:
    have = cur.certkeys.get(ck_name)

    def pair_body(cert_file: str, key_file: str, update: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"certkey": ck_name, "cert": cert_file, "key": key_file, "inform": "PEM"}
        if passphrase:
            body["passplain"] = passphrase
        if update:
            body["nodomaincheck"] = True  # a renewal may change the subject (certbot-hook#10)
        return body

    if _settled(cur, local, have, replace_cert, ck_name, changes):
        return

    renewal = have is not None  # replace_cert: new file names, then update the pair in place
    cert_file, key_file = local.cert_file, local.key_file
    if renewal:
        def stem(n: str) -> tuple[str, str]:
            return Path(n).stem, Path(n).suffix
        cert_file = "{0}-{2}{1}".format(*stem(local.cert_file), local.tag)
        key_file = "{0}-{2}{1}".format(*stem(local.key_file), local.tag)
    blocked = _uploads(cur, local, cert_file, key_file, renewal, changes, steps)
    if blocked:
        changes.append(Change(kind="sslcertkey", name=ck_name, action=Action.UNCHANGED if have else Action.CREATE,
                              summary="waits for the file conflict above"))
        return
    if have is not None:  # renewal
        c = Change(kind="sslcertkey", name=ck_name, action=Action.UPDATE,
                   summary=f"replace the certificate (renewal) with serial {format(local.serial or 0, 'X')}, "
                           f"expires {local.not_after}; bindings stay, no moment without a certificate",
                   fields={"serial": (have.serial, format(local.serial or 0, "X")),
                           "cert": (have.cert, cert_file), "key": (have.key, key_file)},
                   cli=[f"update ssl certKey {cli_quote(ck_name)} -cert {cert_file} -key {key_file}"
                        + (" -password" if passphrase else "") + " -noDomainCheck"])
        changes.append(c)
        steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="sslcertkey", action="update",
                                             body={"sslcertkey": pair_body(cert_file, key_file, True)})]))
        # The replaced files go in the next step, so only once the update has succeeded.
        removals = old_file_removals(have, [ck for ck in cur.certkeys.values() if ck.certkey != ck_name],
                                     {cert_file, key_file}, cur.ssl_files())
        changes += [rc for rc, _ in removals]
        if removals:
            steps.append(ApplyStep([rc for rc, _ in removals], [r for _, r in removals]))
        return
    c = Change(kind="sslcertkey", name=ck_name, action=Action.CREATE,
               summary="cert-key pair" + (f" (serial {format(local.serial, 'X')}, expires {local.not_after})"
                                          if local.serial is not None else ""),
               cli=[f"add ssl certKey {cli_quote(ck_name)} -cert {cert_file} -key {key_file}"
                    + (" -password" if passphrase else "")])
    changes.append(c)
    steps.append(ApplyStep([c], [NitroRequest(method="POST", resource="sslcertkey",
                                         body={"sslcertkey": pair_body(cert_file, key_file, False)})]))


def _settled(cur: Current, local: LocalCert, have: CertKey | None, replace_cert: bool, ck_name: str,
             changes: list[Change]) -> bool:
    """True when the pair needs nothing written: it holds this certificate already, or a conflict says why
    not (another certificate under that name without replace_cert; this certificate under another name)."""
    same_elsewhere = next((ck for ck in cur.certkeys.values() if ck.certkey != ck_name and local.serial is not None
                           and ck.serial_int() == local.serial), None)
    if have is not None and local.serial is not None and have.serial_int() == local.serial:
        for f in (local.cert_file, local.key_file):
            changes.append(Change(kind="systemfile", name=f"{cur.ssl_dir}/{f}", action=Action.UNCHANGED,
                                  summary="in use by the cert-key pair"))
        changes.append(Change(kind="sslcertkey", name=ck_name, action=Action.UNCHANGED,
                              summary=f"holds this certificate (serial {format(local.serial, 'X')}, "
                                      f"expires {local.not_after})"))
        return True
    if have is not None and local.serial is not None and not replace_cert:
        changes.append(Change(
            kind="sslcertkey", name=ck_name, action=Action.CONFLICT,
            summary=f"exists and holds another certificate (serial {have.serial or '?'}, {have.subject or '?'}, "
                    f"expires {have.clientcertnotafter or '?'})",
            fields={"serial": (have.serial, format(local.serial, "X"))},
            hint="the pair's name on the ADC holds another certificate", advice=advice("ns.renew_or_rename")))
        return True
    if have is None and same_elsewhere is not None:
        changes.append(Change(
            kind="sslcertkey", name=ck_name, action=Action.CONFLICT,
            summary=f"this certificate is already installed as cert-key pair {same_elsewhere.certkey!r}",
            hint="the ADC refuses the same certificate twice",
            advice=advice("ns.reuse_pair", name=same_elsewhere.certkey)))
        return True
    return False


def _uploads(cur: Current, local: LocalCert, cert_file: str, key_file: str, renewal: bool, changes: list[Change],
             steps: list[ApplyStep]) -> bool:
    """Upload the files not there yet (one array write); True when a file blocks the pair: a name longer
    than the ADC accepts, or a file of that name with other content (never overwritten: the ADC would
    refuse with 1642 anyway, and replacing it could break what uses it)."""
    uploads: list[tuple[Change, dict[str, Any]]] = []
    blocked = False
    for fname, content, what in ((cert_file, local.cert_pem, "certificate"), (key_file, local.key_pem, "key")):
        if len(fname) > MAX_FILENAME:
            changes.append(Change(
                kind="systemfile", name=f"{cur.ssl_dir}/{fname}", action=Action.CONFLICT,
                summary=f"the file name has {len(fname)} characters; the ADC accepts at most {MAX_FILENAME}",
                hint=f"rename the local {what} file to a shorter name (the name on the ADC follows it)"
                     + ("; a renewal adds 9 characters to it" if renewal else "")))
            blocked = True
            continue
        there = fname in cur.ssl_files()
        if there:
            remote = cur.file_content(fname)
            if remote is not None and normalise_pem(remote) == content:
                changes.append(Change(kind="systemfile", name=f"{cur.ssl_dir}/{fname}", action=Action.UNCHANGED,
                                      summary=f"the {what}, already uploaded"))
                continue
            changes.append(Change(
                kind="systemfile", name=f"{cur.ssl_dir}/{fname}", action=Action.CONFLICT,
                summary=f"a file of that name holds other content than the plan's {what}",
                hint=f"this tool never overwrites files: rename the local {what} file (the name on the ADC follows "
                     f"it), or remove {cur.ssl_dir}/{fname} on the ADC if nothing uses it (shell: rm)"))
            blocked = True
            continue
        c = Change(kind="systemfile", name=f"{cur.ssl_dir}/{fname}", action=Action.CREATE,
                   summary=f"upload the {what}",
                   cli=[f"# upload {fname} to {cur.ssl_dir}/ (NITRO systemfile; from a shell: "
                        f"scp {fname} nsroot@<NSIP>:{cur.ssl_dir}/)"])
        changes.append(c)
        encoded = base64.b64encode(content).decode() if content is not None else f"<base64 of {fname}>"
        uploads.append((c, {"filename": fname, "filelocation": cur.ssl_dir, "filecontent": encoded,
                            "fileencoding": "BASE64"}))
    if uploads:
        steps.append(ApplyStep([c for c, _ in uploads], [batch("systemfile", [i for _, i in uploads])]))
    return blocked
