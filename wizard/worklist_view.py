"""The worklist rung in the wizard: on a worklist pass, the PACS step's plain test and the echo step
also run Butterfly's Modality Worklist query (engine.worklist), and show what came back.

Self-contained so the screens change by a few lines: `rungs` (the ladder's lines), `query_for`
(the query to pass to the echo, or None on a store pass) and `verdict` (the result's lines).
Patient names stay masked here: the wizard never asks for them.
"""

from __future__ import annotations

from typing import Any

from textual.content import Content

SHOWN = 3  # item lines under the verdict; the screen is 24 rows


def rungs(base: list[str], role: str) -> list[str]:
    """The ladder's rungs, with the worklist query before the release on a worklist pass."""
    if role != "worklist":
        return list(base)
    return [r for r in base if r != "release"] + ["worklist", "release"]


def query_for(role: str, services: Any) -> dict[str, Any]:
    """The echo's extra arguments: a worklist query for today (this host's local date) on a worklist pass."""
    if role != "worklist":
        return {}
    from dicomtls.engine.worklist import make_query

    return {"worklist": make_query(today=services.now().astimezone().date())}


def _day(dates: str) -> str:
    def iso(d: str) -> str:
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}"

    first, _, last = dates.partition("-")
    return iso(first) + (f" to {iso(last)}" if last else "")


def verdict(report: Any, what: str, base: Content) -> Content:
    """`base` (the echo's verdict line), followed on success by the worklist's count and first items."""
    wl = getattr(report, "worklist", None)
    if wl is None or not report.ok:
        return base
    q = wl.query
    station = f", station {q.station_ae}" if q.station_ae else ""
    steps = "scheduled procedure step" + ("" if wl.count == 1 else "s")
    lines = [Content.styled(f"✓ {wl.count} {steps} found {what} (modality {q.modality}, {_day(q.dates)}{station}):",
                            "bold")]
    for item in wl.items[:SHOWN]:
        lines.append(Content(f"    {item.scheduled or '(no date)':<16}  {item.accession_number or '(no accession)':<16}"
                             f"  {item.patient_name or '(no name)'}"))
    if wl.count > SHOWN:
        lines.append(Content(f"    … and {wl.count - SHOWN} more (patient names masked)"))
    return Content("\n").join([base, *lines])
