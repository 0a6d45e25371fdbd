"""Two ways to run the terminator: `serve` (foreground, signals, pid file, installs into the state
dir; the plan checked by a helper process, bundle.py) and run_in_thread (in-process for the wizard's
demo; writes nothing to disk or the terminal)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, TypeVar

from dicomtls.engine import paths
from dicomtls.engine.errors import UserError
from dicomtls.engine.terminator.bundle import Bundle, load_bundle, load_bundle_async
from dicomtls.engine.terminator.config import StateFiles
from dicomtls.engine.terminator.events import EventLog, Subscriber
from dicomtls.engine.terminator.sdnotify import Notifier
from dicomtls.engine.terminator.server import Terminator

if TYPE_CHECKING:  # the serving process never loads the plan's models (pydantic): bundle.py
    from dicomtls.engine.plan import Plan

_T = TypeVar("_T")


def _passphrase(plan: Plan, env_var: str | None) -> str | None:
    var = env_var or plan.certificate.passphrase_env
    return os.environ.get(var) if var else None


def running_pid(state: StateFiles) -> int | None:
    """The pid of a live `serve` for this state dir, from its pid file (a stale file whose pid now
    belongs to another program does not count)."""
    try:
        pid = int(state.pid.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"serve" not in cmdline and b"dicomtls.engine.terminator" not in cmdline:  # `dicomtls serve` or our own entry
            return None
    except OSError:
        pass  # no /proc: trust the pid
    return pid


# --- serve ------------------------------------------------------------------------------------------

def serve(plan_path: str | os.PathLike[str], passphrase_env: str | None = None,
          stream: IO[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the plan. Returns the exit code."""
    # From the first instruction on, a SIGHUP (systemd ExecReload, `dicomtls apply`) must not kill us
    # with its default action: remember it, and reload once the terminator is up.
    early: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, frame: early.append(signum))
    path = Path(plan_path).expanduser().resolve()
    bundle = load_bundle(path, passphrase_env)
    state = bundle.state
    other = running_pid(state)
    if other and other != os.getpid():
        raise UserError(f"a terminator is already running for {state.dir} (pid {other})",
                        f"stop it first (kill {other} / systemctl stop), or reload it with kill -HUP {other}")
    context = bundle.context()
    events = EventLog(stream if stream is not None else sys.stderr)
    return asyncio.run(_serve(path, bundle, context, passphrase_env, events, early))


class _Reloads:
    """SIGHUP: read the plan again and swap the configuration in (Terminator.reload), one task per signal.
    A reload asked for during start-up waits until the listeners are up."""

    def __init__(self, path: Path, passphrase_env: str | None, state_dir: Path, term: Terminator,
                 systemd: Notifier) -> None:
        self.path, self.passphrase_env, self.state_dir = path, passphrase_env, state_dir
        self.term, self.systemd = term, systemd
        self.started = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        # One reload at a time, in the order of the signals (asyncio.Lock wakes its waiters first come, first
        # served): each check reads the plan when it starts, so the last signal's plan is the one that serves,
        # however long an earlier check took in the helper.
        self.lock = asyncio.Lock()

    def on_hup(self) -> None:
        t = asyncio.get_running_loop().create_task(self._when_started())
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _when_started(self) -> None:
        await self.started.wait()
        async with self.lock:
            await self._reload()

    async def _reload(self) -> None:
        # systemd (Type=notify): RELOADING=1 now, READY=1 once the outcome is known; a refused plan
        # leaves the old configuration serving, which is ready too.
        self.systemd.reloading()
        ok = False
        try:
            ok = await self._reload_plan()
        finally:
            refused = "" if ok else f"; reload refused: {self.term.last_reload_error}"
            self.systemd.ready(f"serving, generation {self.term.gen.number}{refused}")

    async def _reload_plan(self) -> bool:
        try:
            new = await load_bundle_async(self.path, self.passphrase_env)  # checked in the helper process
            context = new.context()
        except UserError as exc:
            self.term.reload_failed(exc.problem, exc.fix)
            return False
        if new.state.dir != self.state_dir:
            self.term.reload_failed(f"the new plan moves the state dir to {new.state.dir}",
                                    "restart the service to change [builtin] state_dir")
            return False
        if await self.term.reload(new.runtime, context):
            new.install()
            return True
        return False


async def _serve(path: Path, bundle: Bundle, context: ssl.SSLContext, passphrase_env: str | None,
                 events: EventLog, early: list[int]) -> int:
    loop = asyncio.get_running_loop()
    state = bundle.state
    stop = asyncio.Event()
    term = Terminator(bundle.runtime, context, events)
    systemd = Notifier()
    reloads = _Reloads(path, passphrase_env, state.dir, term, systemd)
    # Signal handlers before anything else can take time; a stop is honoured right after start-up.
    loop.add_signal_handler(signal.SIGHUP, reloads.on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    paths.ensure_private_dir(state.dir)
    if early:
        reloads.on_hup()
    await term.start()
    bundle.install()  # installed only once its listeners are bound
    state.pid.write_text(f"{os.getpid()}\n")
    reloads.started.set()
    systemd.ready(f"serving {len(term.listeners)} listener(s), generation {term.gen.number}")
    watchdog = loop.create_task(_watchdog(systemd)) if systemd.watchdog_interval else None
    try:
        await stop.wait()
        systemd.stopping()
        await term.shutdown()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        try:
            if running_pid(state) == os.getpid():
                state.pid.unlink()
        except OSError:
            pass
    return 0


async def _watchdog(systemd: Notifier) -> None:
    """WATCHDOG=1 from the event loop itself: a loop that hangs stops pinging, and systemd restarts it."""
    while True:
        systemd.watchdog()
        await asyncio.sleep(systemd.watchdog_interval)


# --- in-process (wizard demo) -----------------------------------------------------------------------

class ReadyFlag(threading.Event):
    """A threading.Event that is also truthy once set, so both `handle.ready.wait(5)` and
    `if handle.ready:` work."""

    def __bool__(self) -> bool:
        return self.is_set()


class TerminatorHandle:
    def __init__(self, events: EventLog) -> None:
        self.events = events
        self.ready = ReadyFlag()  # set once every listener is bound
        self.error: BaseException | None = None  # why start failed, if it did
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._term: Terminator | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._drain = 2.0  # seconds live associations get to finish once stop() is asked

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every log record (dicts; event "association" for each connection)."""
        return self.events.subscribe(callback)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until started; raises the start error (e.g. a UserError for a busy port)."""
        self._started.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.ready.is_set()

    def _call(self, fn: Callable[[], _T], timeout: float = 5.0) -> _T:
        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("the terminator is not running")

        async def run() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def status(self) -> dict[str, Any]:
        assert self._term is not None
        return self._call(self._term.status)

    @property
    def ports(self) -> dict[str, int]:
        """Listener name -> bound port."""
        return {lst["name"]: lst["bound_port"] for lst in self.status()["listeners"]}

    def reload(self, plan: Plan, passphrase: str | None = None) -> bool:
        from dicomtls.engine.terminator.install import prepare

        new = prepare(plan, passphrase if passphrase is not None else _passphrase(plan, None))
        assert self._loop is not None and self._term is not None
        return asyncio.run_coroutine_threadsafe(self._term.reload(new.runtime, new.context), self._loop).result(10)

    def stop(self, drain_timeout: float = 2.0, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            loop, ev = self._loop, self._stop

            def drain_then_stop() -> None:
                self._drain = drain_timeout
                ev.set()
            loop.call_soon_threadsafe(drain_then_stop)
        if self._thread is not None:
            self._thread.join(timeout)


def run_in_thread(plan: Plan, passphrase: str | None = None, *, control: bool = False,
                  stream: IO[str] | None = None) -> TerminatorHandle:
    """Start the terminator for `plan` in a background thread (the wizard's demo mode).

    Raises UserError at once if the plan cannot be served (certificate, key, policy); a listener
    that cannot be bound is reported by handle.wait_ready() and handle.error. Nothing is written to
    the state dir unless control=True (then the control socket is created there).
    """
    from dicomtls.engine.terminator.install import prepare

    prepared = prepare(plan, passphrase if passphrase is not None else _passphrase(plan, None))
    handle = TerminatorHandle(EventLog(stream))

    async def main() -> None:
        handle._loop = asyncio.get_running_loop()
        handle._stop = asyncio.Event()
        term = Terminator(prepared.runtime, prepared.context, handle.events, control=control)
        if control:
            paths.ensure_private_dir(prepared.state.dir)
        try:
            await term.start()
        except BaseException as exc:
            handle.error = exc
            handle._started.set()
            return
        handle._term = term
        handle.ready.set()
        handle._started.set()
        await handle._stop.wait()
        await term.shutdown(handle._drain)

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surface, never crash the wizard
            handle.error = handle.error or exc
            handle._started.set()

    handle._thread = threading.Thread(target=thread_main, name="dicomtls-terminator", daemon=True)
    handle._thread.start()
    return handle
