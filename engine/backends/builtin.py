"""Backend "builtin": the terminator on this host, configured through its state dir.

diff   compares the plan with what is installed in the state dir (runtime.json, cert.pem) and with
       the running terminator (its control endpoint), and finds ports another program holds.
apply  checks the plan (engine.terminator.install.prepare), installs cert/key/config into the state
       dir, then reloads the running terminator (SIGHUP) or starts one: with systemd if
       `dicomtls install-service` made a unit, otherwise as a background `dicomtls serve` whose
       stderr goes to serve.log in the state dir.
status asks the running terminator's control endpoint.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dicomtls.engine.addresses import host_port
from dicomtls.engine.advice import Advice, advice
from dicomtls.engine.backends.base import (
    Action,
    ApplyResult,
    Change,
    Diff,
    Progress,
    ProgressCallback,
    Status,
    StatusItem,
)
from dicomtls.engine.certs import CertError, fingerprint
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import Plan
from dicomtls.engine.terminator.config import RuntimeConfig, StateFiles, state_dir_for
from dicomtls.engine.terminator.control import query_status
from dicomtls.engine.terminator.install import installed_fingerprint, prepare
from dicomtls.engine.terminator.runner import running_pid

# [builtin] settings the running terminator uses (state_dir is where it all lives, not a setting of it).
SETTINGS = ("handshake_timeout", "connect_timeout", "idle_timeout", "drain_timeout", "health_interval", "status_port")
START_TIMEOUT = 20.0
RELOAD_TIMEOUT = 15.0


class BuiltinBackend:
    name = "builtin"

    def __init__(self, plan: Plan, options: Any = None) -> None:
        self.plan = plan
        self.options = options

    # --- reading ------------------------------------------------------------------------------------
    def _state(self, plan: Plan) -> StateFiles:
        return StateFiles(state_dir_for(plan))

    def _live(self, state: StateFiles, installed: RuntimeConfig | None, plan: Plan) -> dict[str, Any] | None:
        """The running terminator's status, or None if none answers."""
        port = installed.status_port if installed else plan.builtin.status_port
        try:
            return query_status(state.control, port, timeout=3.0)
        except (OSError, ValueError):
            return None

    def diff(self, plan: Plan) -> Diff:
        state = self._state(plan)
        installed = state.read_runtime()
        live = self._live(state, installed, plan)
        changes = [self._cert_change(plan, state), self._policy_change(plan, installed)]
        b = plan.builtin
        settings = {k: getattr(b, k) for k in SETTINGS}
        changes.append(_compare("settings", "builtin", {k: getattr(installed, k) for k in SETTINGS} if installed
                                else None, settings, ", ".join(f"{k}={v:g}" for k, v in settings.items())))
        have_svcs = {s.name: s for s in installed.services} if installed else {}
        for s in plan.service:
            # The members, in order, stand for host/port (the first member): one field, read as old -> new.
            members = ", ".join(m.address for m in s.targets)
            want = {"members": members, "ae_title": s.ae_title}
            have = have_svcs.get(s.name)
            changes.append(_compare("service", s.name, {"members": ", ".join(m.address for m in have.members),
                                                        "ae_title": have.ae_title} if have else None, want,
                                    f"PACS {s.ae_title} at {members}"))
        have_lst = {v.name: v for v in installed.listeners} if installed else {}
        live_addrs = {(lst["ip"], lst["port"]) for lst in live["listeners"]} if live else set()
        for v in plan.virtual_server:
            want_v = {"ip": v.ip, "port": v.port, "role": v.role, "service": v.service,
                      "allowed_calling_aes": list(v.allowed_calling_aes), "allowed_clients": list(v.allowed_clients)}
            have_v = have_lst.get(v.name)
            ch = _compare("listener", v.name, {k: getattr(have_v, k) for k in want_v} if have_v else None, want_v,
                          f"TLS {v.ip}:{v.port} ({v.role}) -> {v.service}")
            if (v.ip, v.port) not in live_addrs:
                problem, fix = _port_problem(v.ip, v.port)
                if problem:
                    ch.action, ch.hint, ch.advice = Action.CONFLICT, problem, fix
            changes.append(ch)
        for name in sorted(set(have_lst) - {v.name for v in plan.virtual_server}):
            old = have_lst[name]
            changes.append(Change(kind="listener", name=name, action=Action.UPDATE,
                                  summary=f"remove: {old.ip}:{old.port} is no longer in the plan",
                                  fields={"listening": (True, False)}))
        for name in sorted(set(have_svcs) - {s.name for s in plan.service}):
            changes.append(Change(kind="service", name=name, action=Action.UPDATE,
                                  summary="remove: no longer in the plan", fields={"present": (True, False)}))
        changes.append(self._process_change(state, live, installed, changes))
        return Diff(backend=self.name, target=f"this host (state dir {state.dir})", changes=changes)

    def _cert_change(self, plan: Plan, state: StateFiles) -> Change:
        try:
            want = fingerprint(plan.cert_path.read_bytes())
        except OSError as exc:
            raise UserError(f"cannot read the certificate {plan.cert_path}: {exc.strerror}",
                            "check the certificate's path", advice=advice("plan.cert_unreadable",
                                                                        path=plan.cert_path)) from None
        except CertError as exc:
            raise UserError(f"{plan.cert_path}: {exc.problem}", exc.fix, advice=exc.advice) from None
        have = installed_fingerprint(state)
        return _compare("certificate", plan.certificate.name, {"fingerprint": have} if have else None,
                        {"fingerprint": want}, f"{plan.cert_path.name} (SHA-256 {want[:23]}...)")

    def _policy_change(self, plan: Plan, installed: RuntimeConfig | None) -> Change:
        p = plan.policy
        return _compare("cipher_policy", plan.cipher_policy.name,
                        {"profile": installed.policy} if installed else None, {"profile": p.name},
                        f"{p.title}: {p.openssl_cipher_string.replace(':', ', ')}")  # wraps at words

    def _process_change(self, state: StateFiles, live: dict[str, Any] | None, installed: RuntimeConfig | None,
                        changes: list[Change]) -> Change:
        writes = any(c.writes for c in changes)
        if live is None:
            how = f"systemd unit {_unit(state)}" if _unit(state) else "a background `dicomtls serve`"
            return Change(kind="process", name="dicomtls serve", action=Action.CREATE,
                          summary=f"start the terminator ({how})")
        behind = installed is not None and live.get("cert_fingerprint") != installed.cert_fingerprint
        if writes or behind:
            return Change(kind="process", name="dicomtls serve", action=Action.UPDATE,
                          summary=f"reload pid {live['pid']} (SIGHUP); live associations continue")
        return Change(kind="process", name="dicomtls serve", action=Action.UNCHANGED,
                      summary=f"running, pid {live['pid']}, generation {live['generation']}")

    # --- writing ------------------------------------------------------------------------------------
    def apply(self, plan: Plan, diff: Diff | None = None, progress: ProgressCallback | None = None) -> ApplyResult:
        say = progress or (lambda p: None)
        diff = diff or self.diff(plan)
        if diff.conflicts:
            c = diff.conflicts[0]
            return ApplyResult(ok=False, not_done=[f"{c.kind} {c.name}" for c in diff.writes],
                               error=f"{len(diff.conflicts)} conflict(s): {c.kind} {c.name}: {c.hint}",
                               fix="resolve the conflicts shown in the diff, then apply again")
        result = ApplyResult(ok=True)
        if diff.is_noop:
            return result
        state = self._state(plan)
        steps = ["check the plan", "install into the state dir", "start or reload the terminator"]
        try:
            say(Progress(step=steps[0], state="start"))
            prepared = prepare(plan, getattr(self.options, "passphrase", None))
            say(Progress(step=steps[0], state="done", message=f"certificate {prepared.fingerprint[:23]}..."))
            result.done.append(steps[0])
            say(Progress(step=steps[1], state="start"))
            before = state.read_runtime()
            live = self._live(state, before, plan)  # found where the running terminator answers now
            cfg = prepared.write()
            result.writes += 1
            for c in diff.writes:
                if c.kind != "process":
                    say(Progress(step=f"{c.kind} {c.name}", state="done", message=c.action.value))
            say(Progress(step=steps[1], state="done", message=str(state.dir)))
            result.done.append(steps[1])
            say(Progress(step=steps[2], state="start"))
            message = self._start_or_reload(state, cfg, live, before)
            say(Progress(step=steps[2], state="done", message=message))
            result.done.append(steps[2])
        except UserError as exc:
            step = steps[len(result.done)]
            say(Progress(step=step, state="failed", message=exc.problem))
            result.ok, result.error, result.fix, result.advice = False, exc.problem, exc.fix, exc.advice
            result.not_done = steps[len(result.done):]
        return result

    def _start_or_reload(self, state: StateFiles, cfg: RuntimeConfig, live: dict[str, Any] | None,
                         before: RuntimeConfig | None) -> str:
        if live is not None:
            pid, gen = live["pid"], live["generation"]
            failures = live.get("counters", {}).get("reload_failures", 0)
            os.kill(pid, signal.SIGHUP)
            end = time.monotonic() + RELOAD_TIMEOUT
            while time.monotonic() < end:
                # The status endpoint may move with this very reload (status_port): ask at both places.
                now = self._live(state, cfg, self.plan) or self._live(state, before, self.plan)
                if now is None and running_pid(state) == pid:
                    time.sleep(0.1)  # moving its endpoint right now
                    continue
                if now is None:
                    raise UserError(f"the terminator (pid {pid}) stopped answering during the reload",
                                    f"look at its log (journalctl, or {state.log}) and start it again")
                if now["generation"] > gen:
                    if now["cert_fingerprint"] != cfg.cert_fingerprint:
                        raise UserError(f"the terminator (pid {pid}) reloaded {now.get('plan_path')}, not this plan",
                                        f"run it from the applied plan ({state.plan}) or apply that plan file")
                    return f"reloaded pid {pid} (generation {now['generation']})"
                if now.get("counters", {}).get("reload_failures", 0) > failures:
                    raise UserError(f"the terminator (pid {pid}) refused the new configuration: "
                                    f"{now.get('last_reload_error') or 'see its log'}",
                                    "fix the problem; the previous configuration is still serving")
                time.sleep(0.1)  # poll interval
            raise UserError(f"the terminator (pid {pid}) did not confirm the reload within {RELOAD_TIMEOUT:g} s",
                            f"check its log (journalctl, or {state.log})")
        unit = _unit(state)
        if unit and shutil.which("systemctl"):
            r = subprocess.run(["systemctl", "start", unit], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise UserError(f"systemctl start {unit} failed: {r.stderr.strip() or r.stdout.strip()}",
                                f"see `systemctl status {unit}` and `journalctl -u {unit}`")
            return self._wait_started(state, cfg, None, f"started systemd unit {unit}")
        return self._spawn(state, cfg)

    def _spawn(self, state: StateFiles, cfg: RuntimeConfig) -> str:
        with open(state.log, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "dicomtls.engine.terminator", str(state.plan)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    cwd=str(state.dir))
        return self._wait_started(state, cfg, proc, f"started pid {proc.pid} (log: {state.log})")

    def _wait_started(self, state: StateFiles, cfg: RuntimeConfig, proc: subprocess.Popen[bytes] | None,
                      done: str) -> str:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if proc is not None and proc.poll() is not None:
                raise UserError(f"the terminator exited at start (code {proc.returncode}): {_last_error(state.log)}",
                                f"fix that and apply again; the full log is {state.log}")
            live = self._live(state, cfg, self.plan)
            if live is not None and live.get("cert_fingerprint") == cfg.cert_fingerprint:
                return done
            time.sleep(0.1)  # poll interval
        raise UserError(f"the terminator did not answer on its control endpoint within {START_TIMEOUT:g} s",
                        f"check {state.log} (or journalctl)")

    # --- status -------------------------------------------------------------------------------------
    def status(self, plan: Plan) -> Status:
        state = self._state(plan)
        installed = state.read_runtime()
        live = self._live(state, installed, plan)
        st = Status(backend=self.name, target=f"this host (state dir {state.dir})")
        if live is None:
            pid = running_pid(state)
            st.items.append(StatusItem(kind="process", name="dicomtls serve", state="STOPPED" if pid is None else
                                       "NOT ANSWERING", detail={"pid": pid} if pid else {}))
            for lst in installed.listeners if installed else []:
                st.items.append(StatusItem(kind="listener", name=lst.name, state="not listening",
                                           detail={"address": f"{lst.ip}:{lst.port}", "service": lst.service}))
            return st
        st.items.append(StatusItem(kind="process", name="dicomtls serve",
                                   state="DRAINING" if live["draining"] else "UP",
                                   detail={"pid": live["pid"], "generation": live["generation"],
                                           "policy": live["policy"], "cert": live["cert_fingerprint"][:23] + "...",
                                           "live": len(live["associations"]), **live["counters"]}))
        for lst in live["listeners"]:
            st.items.append(StatusItem(kind="listener", name=lst["name"], state=lst["state"],
                                       detail={"address": f"{lst['ip']}:{lst['bound_port']}", "role": lst["role"],
                                               "service": lst["service"], "live": lst["live"], **lst["counters"]}))
        per_service = Counter(svc["service"] for svc in live["services"])
        for svc in live["services"]:
            address = host_port(svc["host"], svc["port"])
            # A PACS on several servers: one line per member, named by its address.
            name = svc["service"] if per_service[svc["service"]] == 1 else f"{svc['service']} {address}"
            st.items.append(StatusItem(kind="service", name=name, state=svc["state"].upper(),
                                       detail={"address": address, "detail": svc["detail"],
                                               "failures": svc["failures"], "live": svc.get("live", 0)}))
        for a in live["associations"]:
            st.items.append(StatusItem(kind="association", name=a["client"], state="live",
                                       detail={k: a[k] for k in ("listener", "calling_ae", "called_ae", "backend",
                                                                 "seconds", "bytes_from_client", "bytes_to_client")
                                               if k in a}))
        return st

    def close(self) -> None:
        pass


# --- helpers ------------------------------------------------------------------------------------------

def _compare(kind: str, name: str, have: dict[str, Any] | None, want: dict[str, Any], summary: str) -> Change:
    if have is None:
        return Change(kind=kind, name=name, action=Action.CREATE, summary=summary)
    fields = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    return Change(kind=kind, name=name, action=Action.UPDATE if fields else Action.UNCHANGED, summary=summary,
                  fields=fields)


def _port_problem(ip: str, port: int) -> tuple[str, Advice | None]:
    """Why this host cannot listen on ip:port right now, and the fix ("", None if it can)."""
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {ip} is in use by another program (`ss -ltnp 'sport = :{port}'` shows "
                        "which)", advice("port.in_use"))
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"this host has no address {ip}", advice("port.no_address")
            if exc.errno == errno.EACCES:
                return f"port {port} needs root or CAP_NET_BIND_SERVICE", advice("port.privileged")
            return f"cannot listen on {ip}:{port}: {exc.strerror}", None
    return "", None


def _unit(state: StateFiles) -> str | None:
    try:
        return state.unit.read_text().strip() or None
    except OSError:
        return None


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors[-1].removeprefix("error: ") if errors else lines[-1] if lines else "no output")
