"""The NetScaler backend: the seed guide's GUI procedure over NITRO, reconciled. In this package a bare
"§n" is a section of docs/research/nitro.md, which names the public reference behind each call.

    backend = NetScalerBackend(plan, BackendOptions(password=...))
    diff = backend.diff(plan)          # reads only: login + one GET per object type
    result = backend.apply(plan, diff, progress)   # the writes of that diff, then save, then logout
    backend.close()

Modules: client (NITRO over httpx, sessions, TLS pinning, errors), models (payloads), reconcile
(current state -> changes -> requests), export (CLI batch / NITRO request list), simulator (a NITRO
to rehearse and test against).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dicomtls.engine import paths
from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.base import ApplyResult, Diff, Progress, ProgressCallback, Status, StatusItem, TargetFacts
from dicomtls.engine.backends.netscaler.adc import Ha, read_ha, read_release, read_ssl_mode, release_text
from dicomtls.engine.backends.netscaler.client import NitroClient, fetch_fingerprint
from dicomtls.engine.backends.netscaler.current import Current, read_current
from dicomtls.engine.backends.netscaler.local import local_cert
from dicomtls.engine.backends.netscaler.models import (
    CertKey,
    LbVserverRow,
    LbVserverStat,
    MemberRow,
    ServiceGroupRow,
    ServiceRow,
    SslProfileRow,
    SslVserverRow,
)
from dicomtls.engine.backends.netscaler.reconcile import reconcile
from dicomtls.engine.backends.netscaler.steps import Reconciliation, step_name
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan, Service

__all__ = ["NetScalerBackend", "fetch_fingerprint"]

log = logging.getLogger("dicomtls.netscaler")


class NetScalerBackend:
    """Backend protocol over NITRO. Blocking; one NITRO session per backend object, opened lazily."""

    name = "netscaler"

    def __init__(self, plan: Plan, options: BackendOptions | None = None) -> None:
        if plan.netscaler is None:
            raise UserError("the plan names no NetScaler", advice=advice("ns.connection_missing"))
        self.plan = plan
        self.options = options or BackendOptions()
        self._client: NitroClient | None = None
        self._last: tuple[Diff, Reconciliation] | None = None
        self._base = (0, 0)  # client counters when the current run began

    def __repr__(self) -> str:
        return f"NetScalerBackend({self.plan.netscaler.url if self.plan.netscaler else '?'})"

    # --- session --------------------------------------------------------------------------------------
    def _connect(self) -> NitroClient:
        if self._client is None:
            ns = self.plan.netscaler
            assert ns is not None
            if not self.options.password:
                raise UserError(f"no NetScaler password for {ns.username}@{ns.url}",
                                f"export {ns.password_env}=... before running, or run in a terminal to be prompted")
            ca = str(self.plan.resolve(ns.ca_file)) if ns.ca_file else None
            self._client = NitroClient(ns.url, ns.username, self.options.password, ca_file=ca,
                                       fingerprint=ns.fingerprint, insecure=self.options.insecure,
                                       timeout=ns.timeout, password_source=f"${ns.password_env}",
                                       partition=ns.partition)
        return self._client

    @property
    def warnings(self) -> list[str]:
        return list(self._client.warnings) if self._client else []

    @property
    def client(self) -> NitroClient:
        return self._connect()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _pending_marker(self) -> Path:
        """A run that wrote but did not reach `save ns config` leaves this, so the next run saves even
        when nothing else differs (a no-change run must stay within its read budget, so it does not
        ask the ADC whether the config changed)."""
        assert self.plan.netscaler is not None
        tag = hashlib.sha256(self.plan.netscaler.url.encode()).hexdigest()[:12]
        return paths.state_dir() / "netscaler" / f"pending-save-{tag}"

    # --- protocol ---------------------------------------------------------------------------------------
    def diff(self, plan: Plan | None = None) -> Diff:
        plan = plan or self.plan
        local = local_cert(plan, self.options.passphrase)  # the PEM pair is checked before touching the ADC
        client = self._connect()
        self._base = (client.requests, client.writes)
        cur = read_current(client, plan)
        rec = reconcile(plan, cur, local, replace_cert=self.options.replace_cert,
                        passphrase=self.options.passphrase, pending_save=self._pending_marker().exists())
        assert plan.netscaler is not None
        diff = Diff(backend=self.name, target=plan.netscaler.url, changes=rec.changes,
                    requests=client.requests - self._base[0], facts=facts_of(cur, plan))
        self._last = (diff, rec)
        return diff

    def apply(self, plan: Plan | None = None, diff: Diff | None = None,
              progress: ProgressCallback | None = None) -> ApplyResult:
        plan = plan or self.plan
        if diff is None or self._last is None or self._last[0] is not diff:
            diff = self.diff(plan)  # a diff we did not compute (or none): read afresh
        assert self._last is not None
        rec = self._last[1]
        if diff.conflicts:
            raise UserError(f"{len(diff.conflicts)} conflict(s) on the NetScaler; nothing was changed",
                            "resolve each conflict in the change list, then run again", exit_code=3,
                            advice=advice("ns.resolve_conflicts"))
        client = self._connect()
        notify = progress or (lambda p: None)
        done: list[str] = []
        marker = self._pending_marker()
        if rec.steps:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(plan.netscaler.url if plan.netscaler else "")
        for i, step in enumerate(rec.steps):
            notify(Progress(step=step.label, state="start"))
            try:
                for req in step.requests:
                    client.send(req)
            except UserError as exc:
                notify(Progress(step=step.label, state="failed", message=exc.problem))
                not_done = [step_name(c) for s in rec.steps[i:] for c in s.changes]
                log.warning("apply stopped at %s: %s", step.label, exc.problem)
                client.logout()  # best effort: the ADC may be gone
                return ApplyResult(ok=False, done=done, not_done=not_done, error=exc.problem, fix=exc.fix,
                                   advice=exc.advice,
                                   requests=client.requests - self._base[0], writes=client.writes - self._base[1])
            done += [step_name(c) for c in step.changes]
            log.info("applied %s", step.label)
            notify(Progress(step=step.label, state="done"))
        saved = bool(rec.steps and rec.steps[-1].changes and rec.steps[-1].changes[-1].kind == "nsconfig")
        if saved:
            marker.unlink(missing_ok=True)
        sync, detail = self._ha_sync(client, diff, saved, notify)
        client.logout()
        result = ApplyResult(ok=True, done=done, requests=client.requests - self._base[0],
                             writes=client.writes - self._base[1], facts=diff.facts, ha_sync=sync,
                             ha_sync_detail=detail)
        self._last = None
        return result

    def _ha_sync(self, client: NitroClient, diff: Diff, saved: bool, notify: ProgressCallback) -> tuple[str, str]:
        """On the primary of a pair, after `save ns config`: is the secondary in sync? (One read of hanode.)"""
        if diff.facts.ha_role != "primary" or not saved:
            return "", ""
        try:
            ha = read_ha(client)
        except UserError as exc:
            log.info("HA sync state not read: %s", exc.problem)
            return "unknown", ""
        state = "unknown" if ha.in_sync is None else "in-sync" if ha.in_sync else "not-in-sync"
        notify(Progress(step="hanode sync", state="info", message=state))
        return state, ha.sync_detail if state == "not-in-sync" else ""

    def status(self, plan: Plan | None = None) -> Status:
        plan = plan or self.plan
        client = self._connect()
        vservers = {r["name"]: LbVserverRow.model_validate(r) for r in client.get(
            "lbvserver", attrs="name,ipv46,port,servicetype,curstate,effectivestate,state,totalservices,"
                               "activeservices,value")}
        stats = {r["name"]: LbVserverStat.model_validate(r) for r in client.get("lbvserver", stat=True)}
        services = {r["name"]: ServiceRow.model_validate(r) for r in client.get(
            "service", attrs="name,ipaddress,port,servicetype,svrstate,state")}
        pairs = [CertKey.model_validate(r) for r in client.get(
            "sslcertkey", plan.certificate.name, attrs="certkey,daystoexpiration,status,clientcertnotafter",
            missing_ok=True)]
        groups: dict[str, ServiceGroupRow] = {}
        members: dict[str, list[MemberRow]] = {}
        if any(s.is_group for s in plan.service):
            groups = {r["servicegroupname"]: ServiceGroupRow.model_validate(r) for r in client.get("servicegroup")}
            for svc in plan.service:
                if svc.is_group and svc.name in groups:  # the member rows carry each server's svrstate (§7)
                    members[svc.name] = [MemberRow.model_validate(r) for r in client.get(
                        "servicegroup_servicegroupmember_binding", svc.name, missing_ok=True)]
        offered, facts = self._offered(client, plan, vservers)
        client.logout()
        items: list[StatusItem] = []
        for vs in plan.virtual_server:
            row = vservers.get(vs.name)
            if row is None:
                items.append(StatusItem(kind="lbvserver", name=vs.name, state="absent",
                                        detail={"where": f"{vs.ip}:{vs.port}"}))
                continue
            st = stats.get(vs.name)
            detail: dict[str, Any] = {"where": f"{row.ipv46}:{row.port}", "effectivestate": row.effectivestate,
                      "services_up": f"{row.activeservices}/{row.totalservices}"}
            if row.value:
                detail["note"] = row.value
            if st is not None:
                detail.update(curclntconnections=st.curclntconnections, tothits=st.tothits,
                              totalrequests=st.totalrequests)
            if vs.name in offered:
                detail["protocols"] = offered[vs.name]
            items.append(StatusItem(kind="lbvserver", name=vs.name, state=row.curstate or "?", detail=detail))
        for svc in plan.service:
            if svc.is_group:
                items += _group_status(svc, groups.get(svc.name), members.get(svc.name, []))
                continue
            srow = services.get(svc.name)
            items.append(StatusItem(kind="service", name=svc.name, state=srow.svrstate if srow else "absent",
                                    detail={"where": f"{srow.ipaddress}:{srow.port}" if srow
                                            else f"{svc.host}:{svc.port}"}))
        if pairs:
            p = pairs[0]
            items.append(StatusItem(kind="sslcertkey", name=p.certkey, state=p.status or "?",
                                    detail={"days_left": p.daystoexpiration, "expires": p.clientcertnotafter}))
        else:
            items.append(StatusItem(kind="sslcertkey", name=plan.certificate.name, state="absent"))
        assert plan.netscaler is not None
        return Status(backend=self.name, target=plan.netscaler.url, items=items, facts=facts)

    def _offered(self, client: NitroClient, plan: Plan, vservers: dict[str, LbVserverRow]
                 ) -> tuple[dict[str, str], TargetFacts]:
        """The protocols each planned vserver really offers: its own flags in legacy mode, its SSL
        profile's where the ADC runs the Default SSL Profile; and the ADC's facts."""
        release, _ = read_release(client)
        mode = read_ssl_mode(client)
        facts = target_facts(plan, release, mode)
        planned = [vs.name for vs in plan.virtual_server if vs.name in vservers]
        if not planned:
            return {}, facts
        rows = {r.vservername: r for r in map(SslVserverRow.model_validate, client.get("sslvserver"))}
        profiles: dict[str, dict[str, str]] = {}
        out: dict[str, str] = {}
        for name in planned:
            row = rows.get(name)
            if row is None:
                continue
            flags = row.flags()
            if mode == "profile" and row.sslprofile:
                if row.sslprofile not in profiles:
                    got = client.get("sslprofile", row.sslprofile, missing_ok=True)
                    profiles[row.sslprofile] = SslProfileRow.model_validate(got[0]).flags() if got else {}
                flags = profiles[row.sslprofile]
            out[name] = ", ".join(k for k, v in flags.items() if v.upper() == "ENABLED") or "none"
        return out, facts

    def vserver_counters(self, name: str) -> LbVserverStat | None:
        """`stat/lbvserver/NAME` (NITRO statistics reference): hits, requests and client connections, for
        watching a connection from outside arrive. None while the vserver does not exist."""
        rows = self._connect().get("lbvserver", name, stat=True, missing_ok=True)
        return LbVserverStat.model_validate(rows[0]) if rows else None

    def list_cipher_groups(self) -> list[str]:
        """Cipher groups and aliases on the ADC (built-in and user-made), for the wizard's choice."""
        return [str(r["ciphergroupname"]) for r in self._connect().get("sslcipher", attrs="ciphergroupname")]

    def connection(self) -> NitroConnection:
        """Log in and read what deciding where to work needs, before any plan is drawn up: the release, the
        HA role (a secondary node accepts no configuration: error 368, so the primary is named at once) and
        the SSL mode, with the cipher groups for the wizard's choice. Four GETs after the login."""
        client = self._connect()
        release, _ = read_release(client)
        ha = read_ha(client)
        facts = target_facts(self.plan, release, read_ssl_mode(client), ha)
        refusal = advice("ns.not_primary", primary=ha.primary or "its NSIP") if ha.role == "secondary" else None
        return NitroConnection(facts=facts, cipher_groups=self.list_cipher_groups(), refusal=refusal)


class NitroConnection(BaseModel):
    """A working NITRO login: the ADC's facts, its cipher groups, and why not to configure this node (a secondary)."""

    facts: TargetFacts
    cipher_groups: list[str]
    refusal: Advice | None = None


def facts_of(cur: Current, plan: Plan) -> TargetFacts:
    return target_facts(plan, cur.release, "" if cur.blocked else cur.ssl_mode, None if cur.too_old else cur.ha)


def target_facts(plan: Plan, release: tuple[int, int] | None, ssl_mode: str, ha: Ha | None = None) -> TargetFacts:
    """The ADC's facts as read (ssl_mode "" where it was not read; ha None where HA was not read), with the
    plan's SSL profile (in profile mode) and partition: the one place a TargetFacts is put together."""
    ns = plan.netscaler
    return TargetFacts(release=release_text(release), ssl_mode=ssl_mode,
                       ssl_profile=ns.ssl_profile if ns and ssl_mode == "profile" else "",
                       ha_role=ha.role if ha else "",
                       ha_primary=ha.primary if ha and ha.role == "secondary" else "",
                       ha_peer=ha.peer if ha and ha.role == "primary" else "",
                       partition=(ns.partition or "") if ns else "")


def _group_status(svc: Service, row: ServiceGroupRow | None, rows: list[MemberRow]) -> list[StatusItem]:
    """The group's state and each member's, the plan's members first, then any the plan does not list."""
    if row is None:
        return [StatusItem(kind="servicegroup", name=svc.name, state="absent",
                           detail={"members": ", ".join(m.address for m in svc.targets)})]
    by_addr = {(_norm(r.ip), r.port): r for r in rows}
    up = sum(1 for r in rows if r.svrstate.upper() == "UP")
    out = [StatusItem(kind="servicegroup", name=svc.name,
                      state=row.servicegroupeffectivestate or ("UP" if up == len(rows) and rows else
                                                              "PARTIAL-UP" if up else "DOWN"),
                      detail={"members_up": f"{up}/{len(rows)}", "monconnectionclose": row.monconnectionclose})]
    for m in svc.targets:
        r = by_addr.pop((_norm(m.host), m.port), None)
        out.append(StatusItem(kind="servicegroupmember", name=f"{svc.name} {m.address}",
                              state=(r.svrstate or "?") if r else "absent",
                              detail={"state": r.state} if r and r.state else {}))
    for (ip, port), r in by_addr.items():
        address = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        out.append(StatusItem(kind="servicegroupmember", name=f"{svc.name} {address}", state=r.svrstate or "?",
                              detail={"note": "not in the plan"}))
    return out


def _norm(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip

