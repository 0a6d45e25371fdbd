"""Everything the wizard asks of the engine, in one place.

Every method blocks (certificate checks, sockets, NITRO calls), so screens call them from thread
workers only. Engine modules are imported lazily: the wizard starts fast and a screen that does
not need NetScaler never loads httpx. Tests may pass a subclass (a fixed clock, say) to the App.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.engine.backends import BackendOptions, get_backend
from dicomtls.engine.backends.base import Backend
from dicomtls.engine.plan import DEFAULT_CERT_FILE, DEFAULT_KEY_FILE, Plan
from dicomtls.engine.terminator.follow import Follower

if TYPE_CHECKING:  # the results' types; their modules are loaded when a method runs
    from dicomtls.engine.backends.netscaler import NitroConnection
    from dicomtls.engine.backends.netscaler.watch import Arrival
    from dicomtls.engine.certs import PemReport
    from dicomtls.engine.check import InstalledCert
    from dicomtls.engine.errors import UserError
    from dicomtls.engine.verify import EchoReport, Step


def source_key(address: str) -> str:
    """host:port without IPv6 brackets: the terminator logs a client as `::1:5000`, the ladder `[::1]:5000`."""
    return address.replace("[", "").replace("]", "")


class Services:
    @property
    def own_sources(self) -> set[str]:
        """Where this wizard's own test connections came from (host:port), so the Butterfly watch can
        tell them from Butterfly's: added from the worker thread as soon as the TCP rung connects,
        before the association that the terminator will log exists."""
        if "_own_sources" not in self.__dict__:
            self._own_sources: set[str] = set()
        return self._own_sources

    def is_own(self, client: str) -> bool:
        return source_key(client) in self.own_sources

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    # --- certificates ---------------------------------------------------------------------------
    def installed_certificate(self, plan: Plan) -> InstalledCert | None:
        """The certificate a saved plan put in service, with its days to expiry (engine.check)."""
        from dicomtls.engine.check import installed_certificate

        return installed_certificate(plan, self.now())

    def check_pair(self, cert: str, key: str, passphrase: str | None = None,
                   policy: str | None = None) -> PemReport:
        from dicomtls.engine.certs import check_pair

        return check_pair(cert, key, passphrase=passphrase.encode() if passphrase else None, policy=policy,
                          now=self.now())

    def make_test_pair(self, folder: Path) -> tuple[Path, Path]:
        """A self-signed rehearsal pair named like Butterfly's, in `folder` (an existing pair is kept)."""
        from dicomtls.engine.rehearsal.pairs import make_self_signed

        cert, key = folder / DEFAULT_CERT_FILE, folder / DEFAULT_KEY_FILE
        if not (cert.exists() and key.exists()):
            make_self_signed(cert, key, common_name="dicomtls-test", overwrite=True)
        return cert, key

    def find_butterfly_pair(self, folders: list[Path]) -> tuple[Path, Path] | None:
        """Butterfly's download names in the first folder holding both."""
        for folder in folders:
            cert, key = folder / DEFAULT_CERT_FILE, folder / DEFAULT_KEY_FILE
            if cert.is_file() and key.is_file():
                return cert, key
        return None

    # --- DICOM ------------------------------------------------------------------------------------
    def echo(self, host: str, port: int, *, on_step: Callable[[Step], None] | None = None,
             **kw: Any) -> EchoReport:
        from dicomtls.engine.verify import echo

        def seen(step: Step) -> None:
            if step.name == "tcp" and step.local:
                self.own_sources.add(source_key(step.local))
            if on_step is not None:
                on_step(step)

        return echo(host, port, on_step=seen, **kw)  # its advice is phrased where shown (wizard.advice)

    # --- backends ---------------------------------------------------------------------------------
    def backend(self, plan: Plan, options: BackendOptions) -> Backend:
        return get_backend(plan, options)

    def fetch_fingerprint(self, url: str) -> str:
        """The NetScaler management certificate's SHA-256, for pinning on first connect."""
        from dicomtls.engine.backends.netscaler import fetch_fingerprint

        return fetch_fingerprint(url)

    def nitro_connect(self, ns: Any, options: BackendOptions) -> NitroConnection:
        """Log in to the ADC `ns` (a plan's [netscaler]): its release, HA role and SSL mode, and its cipher groups."""
        from dicomtls.engine.backends.netscaler import NetScalerBackend

        backend = NetScalerBackend(Plan(backend="netscaler", netscaler=ns), options)
        try:
            return backend.connection()
        finally:
            backend.close()

    # --- the NetScaler vserver's counters ----------------------------------------------------------
    def watch_counters(self, plan: Plan, options: BackendOptions, vserver: str,
                       on_arrival: Callable[[Arrival], None], on_error: Callable[[UserError], None],
                       interval: float = 2.0) -> Callable[[], None]:
        """Poll `stat/lbvserver/VSERVER` on the plan's ADC in a daemon thread; `on_arrival(Arrival)` once a
        connection from outside arrives. Returns a stop (which also ends the NITRO session)."""
        from dicomtls.engine.backends.netscaler import NetScalerBackend
        from dicomtls.engine.backends.netscaler.watch import CounterWatch, watch_in_thread

        backend = NetScalerBackend(plan, options)
        stop = watch_in_thread(CounterWatch(vserver, backend.vserver_counters), on_arrival, on_error, interval)

        def stop_and_close() -> None:
            stop()
            backend.close()

        return stop_and_close

    # --- the built-in terminator's association log ----------------------------------------------
    def watch_associations(self, state: Any, plan: Plan, callback: Callable[[dict[str, Any]], None],
                           run: Callable[[Callable[[], None]], Any] | None = None) -> Callable[[], None] | None:
        """Call `callback(record)` for each association the terminator logs from now on; returns a stop.

        A terminator in this process (the demo, or one started from the wizard) is subscribed to
        directly; otherwise the log file `dicomtls serve` writes (same user, same log dir) is followed
        (engine.terminator.follow), in `run` (the screen's thread worker) or else a daemon thread."""
        handle = getattr(state, "terminator", None) or (getattr(state.demo, "terminator", None) if state.demo else None)
        if handle is not None:
            unsubscribe = handle.subscribe(callback)
            return unsubscribe if callable(unsubscribe) else None
        from dicomtls.engine import paths

        log = paths.log_dir() / "dicomtls.log"
        if not log.exists():
            raise RuntimeError(f"no terminator log at {log}; is `dicomtls serve` running as this user?")
        follower = Follower(log)

        def consume() -> None:
            for record in follower:
                callback(record)

        if run is not None:
            run(consume)
        else:
            threading.Thread(target=consume, name="dicomtls-log-follow", daemon=True).start()
        return follower.stop
