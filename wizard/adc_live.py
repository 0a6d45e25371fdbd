"""The last screen's live line on the NetScaler backend: the vserver's counters on the ADC, watched in a
thread (Services.watch_counters), turn the line green when a connection from outside arrives.

Counters cannot tell who called; the line says a connection arrived and leaves the calling AE to
Butterfly Cloud's own test result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from textual.content import Content
from textual.widgets import Static

from dicomtls.engine.backends import BackendOptions
from dicomtls.wizard.messages import CountersMoved


def waiting(live: Static, vs: Any) -> None:
    live.update(Content(f"… Watching virtual server {vs.name} on the NetScaler for a connection from outside; "
                        "start a connection test in Butterfly Cloud."))
    live.set_classes("busy")


def start(screen: Any) -> Callable[[], None] | None:
    """Begin watching for the screen; returns the stop, or None when there is nothing to watch yet."""
    st = screen.state
    plan, vs = st.try_plan(), st.vserver
    if plan is None or vs is None or st.apply_result is None or not st.apply_result.ok:
        return None
    options = BackendOptions(password=st.password, passphrase=st.passphrase)
    return screen.services.watch_counters(plan, options, vs.name,
                                          lambda a: screen.post_message(CountersMoved(arrival=a)),
                                          lambda e: screen.post_message(CountersMoved(error=e)))


def show(live: Static, message: CountersMoved) -> None:
    when = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    if message.error is not None:
        live.update(Content(f"! Cannot read the virtual server's counters on the NetScaler: "
                            f"{getattr(message.error, 'problem', message.error)}"))
        live.set_classes("warn")
        return
    a = message.arrival
    live.update(Content.styled(f"✓ {when} A connection from outside reached virtual server {a.vserver} on the "
                               f"NetScaler ({a.hits} new, {a.open} open now): check that Butterfly Cloud's "
                               "connection test succeeded.", "bold"))
    live.set_classes("ok")
