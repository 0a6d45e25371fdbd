"""The worklist rung: a Modality Worklist C-FIND for the scheduled procedure steps Butterfly asks for.

After the C-ECHO on a worklist virtual server, the same association (which proposed the Modality
Worklist Information Model - FIND SOP Class as well as Verification) asks for scheduled procedure
steps by modality, date range and, optionally, scheduled station AE (PS3.4 K.6.1), and reports how
many came back and the first few; or exactly why not: the SOP class was not accepted, the C-FIND
failed with a status (PS3.4 K.4.1.1.4, PS3.7 Annex C), the peer dropped the query, or no step matched.

The result is data (codes, counts, items); the faces phrase it. Patient names are masked unless the
caller asks for them, and nothing here logs an item (they are patient data).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel
from pydicom.dataset import Dataset

from dicomtls.engine.plan import DEFAULT_WORKLIST_MODALITY, check_ae_title

MWL_FIND_UID = "1.2.840.10008.5.1.4.31"  # PS3.4 K.6.1.2: Modality Worklist Information Model - FIND
SHOWN_ITEMS = 5
PENDING = (0xFF00, 0xFF01)

# PS3.4 K.4.1.1.4 (Table K.4-1: C-FIND response status values) and the general ones of PS3.7 Annex C.
_STATUS = {
    0x0000: "Matching is complete",
    0xFF00: "Matches are continuing",
    0xFF01: "Matches are continuing; one or more optional keys were not supported",
    0xFE00: "Matching terminated due to Cancel",
    0xA700: "Refused: out of resources",
    0xA900: "Identifier does not match SOP class",
    0x0110: "Processing failure",
    0x0122: "Refused: SOP class not supported",
    0x0124: "Refused: not authorised",
    0x0211: "Unrecognised operation",
    0x0213: "Resource limitation",
}
# PS3.8 §9.3.3.2: the Result/Reason of a presentation context in the A-ASSOCIATE-AC.
_CONTEXT_RESULT = {1: "user rejection", 2: "no reason (provider rejection)",
                   3: "abstract syntax not supported (provider rejection)",
                   4: "transfer syntaxes not supported (provider rejection)"}

WorklistCode = Literal["found", "no_items", "not_offered", "failed", "no_response"]


def status_meaning(code: int) -> str:
    if code in _STATUS:
        return _STATUS[code]
    if 0xC000 <= code <= 0xCFFF:
        return "Unable to process"
    return "not a Modality Worklist C-FIND status"


# --- the query ------------------------------------------------------------------------------------

_DATE_RANGE = re.compile(r"^(\d{8})(?:-(\d{8}))?$")
_MODALITY = re.compile(r"^[A-Z0-9_ ]{1,16}$")  # VR CS (PS3.5 6.2): upper case, digits, space, underscore


def _date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{text} is not a calendar date (YYYYMMDD)") from None


def parse_dates(text: str) -> tuple[str, str]:
    """'YYYYMMDD' or 'YYYYMMDD-YYYYMMDD' -> (first, last); ValueError saying what is wrong."""
    m = _DATE_RANGE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a date or a date range: give YYYYMMDD or YYYYMMDD-YYYYMMDD")
    first, last = m.group(1), m.group(2) or m.group(1)
    if _date(first) > _date(last):
        raise ValueError(f"the range {text} ends before it starts: give the earlier date first")
    return first, last


class WorklistQuery(BaseModel):
    """What the rung asks for: the matching keys of the scheduled procedure step (PS3.4 K.6.1.2.2)."""

    modality: str = DEFAULT_WORKLIST_MODALITY
    date_from: str
    date_to: str
    station_ae: str | None = None  # None: any scheduled station

    @property
    def dates(self) -> str:
        """The DICOM date-range matching value (PS3.4 C.2.2.2.5)."""
        return self.date_from if self.date_from == self.date_to else f"{self.date_from}-{self.date_to}"

    def describe(self) -> str:
        station = f"scheduled station AE {self.station_ae}" if self.station_ae else "any scheduled station AE"
        return f"modality {self.modality}, scheduled {self.dates}, {station}"


def make_query(modality: str = DEFAULT_WORKLIST_MODALITY, dates: str | None = None, station_ae: str | None = None,
               today: dt.date | None = None) -> WorklistQuery:
    """A checked query; `dates` defaults to today (the local date, as the RIS schedules). ValueError names
    the bad part ("modality ...", "date ...", "station AE ...")."""
    mod = (modality or "").strip().upper()
    if not _MODALITY.match(mod):
        raise ValueError(f"modality {modality!r} is not a DICOM modality code (up to 16 capital letters or "
                         "digits, e.g. US)")
    if dates is None:
        first = last = (today or dt.date.today()).strftime("%Y%m%d")
    else:
        try:
            first, last = parse_dates(dates)
        except ValueError as exc:
            raise ValueError(f"date {exc}") from None
    station = None
    if station_ae is not None:
        try:
            station = check_ae_title(station_ae)
        except ValueError as exc:
            raise ValueError(f"station AE {station_ae!r} {exc}") from None
    return WorklistQuery(modality=mod, date_from=first, date_to=last, station_ae=station)


def identifier(query: WorklistQuery) -> Dataset:
    """The C-FIND identifier: matching keys set, return keys empty (PS3.4 K.6.1.2.2, Table K.6-1)."""
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                    "RequestedProcedureID", "RequestedProcedureDescription", "StudyInstanceUID"):
        setattr(ds, keyword, "")
    sps = Dataset()
    sps.Modality = query.modality
    sps.ScheduledStationAETitle = query.station_ae or ""
    sps.ScheduledProcedureStepStartDate = query.dates
    for keyword in ("ScheduledProcedureStepStartTime", "ScheduledPerformingPhysicianName",
                    "ScheduledProcedureStepDescription", "ScheduledProcedureStepID"):
        setattr(sps, keyword, "")
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


# --- the answer ----------------------------------------------------------------------------------

class WorklistItem(BaseModel):
    patient_name: str  # masked ("D***^J***") unless names were asked for
    accession_number: str = ""
    scheduled_date: str = ""  # DICOM DA, YYYYMMDD
    scheduled_time: str = ""  # DICOM TM, HHMMSS[.FFFFFF] (often shorter)
    modality: str = ""
    station_ae: str = ""
    description: str = ""

    @property
    def scheduled(self) -> str:
        d, t = self.scheduled_date, self.scheduled_time
        day = f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d
        clock = f"{t[:2]}:{t[2:4]}" if len(t) >= 4 and t[:4].isdigit() else t
        return " ".join(x for x in (day, clock) if x)


class WorklistResult(BaseModel):
    code: WorklistCode
    query: WorklistQuery
    count: int = 0  # pending responses with an identifier
    items: list[WorklistItem] = []  # the first SHOWN_ITEMS of them
    names_shown: bool = False
    status: int | None = None  # the final C-FIND status, when one arrived
    status_meaning: str = ""
    context_result: str = ""  # not_offered: why the presentation context was not accepted
    called_ae: str = ""
    calling_ae: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "found"


def mask_name(name: str) -> str:
    """Each name component's first letter, the rest hidden: enough to recognise a test patient."""
    return "^".join(f"{part[:1]}***" if part else "" for part in name.split("^")).rstrip("^")


def _text(ds: Any, keyword: str) -> str:
    value = getattr(ds, keyword, "") if ds is not None else ""
    return str(value if value is not None else "").strip()


def _item(ds: Dataset, show_names: bool) -> WorklistItem:
    try:
        sps = ds.ScheduledProcedureStepSequence[0] if "ScheduledProcedureStepSequence" in ds else None
    except (IndexError, TypeError):
        sps = None
    name = _text(ds, "PatientName")
    return WorklistItem(patient_name=name if show_names else mask_name(name),
                        accession_number=_text(ds, "AccessionNumber"),
                        scheduled_date=_text(sps, "ScheduledProcedureStepStartDate"),
                        scheduled_time=_text(sps, "ScheduledProcedureStepStartTime"),
                        modality=_text(sps, "Modality"), station_ae=_text(sps, "ScheduledStationAETitle"),
                        description=_text(sps, "ScheduledProcedureStepDescription")
                        or _text(ds, "RequestedProcedureDescription"))


def find(assoc: Any, query: WorklistQuery, *, show_names: bool = False) -> WorklistResult:
    """Run the C-FIND on an established pynetdicom association that proposed MWL_FIND_UID."""
    result = WorklistResult(code="no_response", query=query, names_shown=show_names,
                            calling_ae=str(assoc.requestor.ae_title), called_ae=str(assoc.acceptor.ae_title))
    if not any(cx.abstract_syntax == MWL_FIND_UID for cx in assoc.accepted_contexts):
        cx = next((c for c in assoc.rejected_contexts if c.abstract_syntax == MWL_FIND_UID), None)
        reason = _CONTEXT_RESULT.get(cx.result, f"result {cx.result}") if cx is not None and cx.result else \
            "not in the answer"
        return result.model_copy(update={"code": "not_offered", "context_result": reason})
    for status, ds in assoc.send_c_find(identifier(query), MWL_FIND_UID):
        if "Status" not in status:
            return result  # no response: the peer aborted, or the DIMSE timeout passed
        code = int(status.Status)
        if code in PENDING:
            result.count += 1
            if ds is not None and len(result.items) < SHOWN_ITEMS:
                result.items.append(_item(ds, show_names))
            continue
        result.status, result.status_meaning = code, status_meaning(code)
        if code == 0x0000:
            result.code = "found" if result.count else "no_items"
        else:
            result.code = "failed"
        return result
    return result


def rung(result: WorklistResult) -> tuple[bool, str, str, str]:
    """(ok, detail, cause, next action) of the ladder's worklist step. No patient data in it."""
    q, calling, called = result.query.describe(), result.calling_ae, result.called_ae
    if result.code == "found":
        return True, f"{result.count} scheduled procedure step(s) for {q}", "", ""
    if result.code == "no_items":
        return (False, f"0 scheduled procedure steps for {q} (status 0x0000)",
                "the worklist answered, but nothing scheduled matches this query",
                f"check in the RIS that procedure steps are scheduled for {q}; a modality, date or station AE "
                "filter that differs from the RIS's values returns nothing")
    if result.code == "not_offered":
        return (False, f"the Modality Worklist FIND context was not accepted ({result.context_result})",
                f"{called} does not offer the Modality Worklist service to {calling}: it may be a storage-only "
                "PACS, or the worklist is served by another AE title (often the RIS's)",
                "point the worklist virtual server at the AE that serves the worklist (ask the RIS/PACS "
                f"administrator for its AE title and port), or enable the worklist for {calling} on {called}")
    if result.code == "failed":
        status = result.status or 0
        meaning = result.status_meaning
        if status in (0x0122, 0x0124):
            action = f"allow {calling} to query the worklist on {called} (its list of modalities/AEs)"
        elif status in (0xA700, 0x0213):
            action = "retry later, or narrow the date range; check the worklist server's resources and log"
        else:
            action = f"check {called}'s log for why it could not process the query for {q}"
        return (False, f"C-FIND failed with status 0x{status:04X}: {meaning} (after {result.count} item(s))",
                f"the worklist server refused or could not process the query ({meaning})", action)
    return (False, f"no C-FIND response (after {result.count} item(s)): the peer aborted or went silent",
            f"{called} accepted the association and the C-ECHO, then dropped the worklist query: it may not "
            f"allow {calling} to query the worklist (Orthanc: AllowFindWorklist for the modality, or "
            "DicomAlwaysAllowFindWorklist)",
            f"allow {calling} to query the worklist on {called}, and check its log at this moment")
