"""The last screen's live line on the NetScaler backend: the vserver's counters on the ADC, watched in a
thread (Services.watch_counters), turn the line green when a connection from outside arrives.

Counters cannot tell who called; the line says a connection arrived and leaves the calling AE to
Butterfly Cloud's own test result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from dicomtls.engine.backends import BackendOptions
from dicomtls.engine.backends.netscaler.watch import Arrival
from dicomtls.engine.errors import UserError
from dicomtls.engine.plan import VirtualServer
from dicomtls.wizard.messages import CountersMoved

if TYPE_CHECKING:
    from dicomtls.wizard.screens.base import StepScreen


def waiting(live: Static, vs: VirtualServer) -> None:
    live.update(Content(f"… Watching virtual server {vs.name} on the NetScaler for a connection from outside; "
                        "start a connection test in Butterfly Cloud."))
    live.set_classes("busy")


def start(screen: StepScreen) -> Callable[[], None] | None:
    """Begin watching for the screen; returns the stop, or None when there is nothing to watch yet."""
    st = screen.state
    plan, vs = st.try_plan(), st.vserver
    if plan is None or vs is None or st.apply_result is None or not st.apply_result.ok:
        return None
    options = BackendOptions(password=st.password, passphrase=st.passphrase)

    def arrived(a: Arrival) -> None:
        screen.post_message(CountersMoved(arrival=a))

    def failed(e: UserError) -> None:
        screen.post_message(CountersMoved(error=e))

    return screen.services.watch_counters(plan, options, vs.name, arrived, failed)


def show(live: Static, message: CountersMoved) -> None:
    when = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    if message.error is not None:
        live.update(Content(f"! Cannot read the virtual server's counters on the NetScaler: "
                            f"{getattr(message.error, 'problem', message.error)}"))
        live.set_classes("warn")
        return
    a = message.arrival
    if a is None:  # a CountersMoved carries one of the two
        return
    live.update(Content.styled(f"✓ {when} A connection from outside reached virtual server {a.vserver} on the "
                               f"NetScaler ({a.hits} new, {a.open} open now): check that Butterfly Cloud's "
                               "connection test succeeded.", "bold"))
    live.set_classes("ok")
