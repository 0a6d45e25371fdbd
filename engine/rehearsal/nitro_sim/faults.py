"""NITRO error responses and request parsing helpers of the simulator."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import unquote

# The handlers' shapes (reads, writes): get_<resource>(name, args, q) -> rows, add_/update_/action_<...>(name,
# item), delete_<resource>(name, args).
Row = dict[str, Any]  # one NITRO object: a row of a GET, an item of a write body
Args = dict[str, str]  # the parsed ?args= (parse_args), and the query string


class Fault(Exception):
    """A NITRO error response: HTTP status, NITRO errorcode and message (bracketed detail as newer firmware)."""

    def __init__(self, http: int, code: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.http, self.code = http, code
        self.message = f"{message} [{detail}]" if detail else message

    def body(self) -> dict[str, Any]:
        return {"errorcode": self.code, "message": self.message, "severity": "ERROR"}


def not_found(what: str, name: str) -> Fault:
    return Fault(404, 258, "No such resource", f"{what}, {name}")


def already_exists(what: str, name: str) -> Fault:
    return Fault(409, 273, "Resource already exists", f"{what}, {name}")


def arg_missing(arg: str) -> Fault:
    return Fault(400, 1095, "Required argument missing", arg)


def invalid_arg(arg: str) -> Fault:
    return Fault(599, 278, "Invalid argument", arg)


def ns_date(t: dt.datetime) -> str:
    """OpenSSL's text form, as `show ssl certKey` prints validity dates."""
    return t.astimezone(dt.timezone.utc).strftime("%b %e %H:%M:%S %Y GMT")


def ns_now() -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime())


# --- the API ----------------------------------------------------------------------------------------

def body_items(body: Any, resource: str) -> list[dict[str, Any]]:
    """The items of a request body: `{"<type>": {...}}` or `{"<type>": [{...}, ...]}` (§1, §13)."""
    if not isinstance(body, dict) or resource not in body:
        raise Fault(400, 1233, "Invalid JSON input", f"expected {{\"{resource}\": ...}}")
    items = body[resource]
    if isinstance(items, dict):
        return [items]
    if isinstance(items, list) and all(isinstance(i, dict) for i in items):
        return items
    raise Fault(400, 1234, "Invalid JSON data type", resource)


def truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("true", "yes"))


def parse_args(raw: str) -> dict[str, str]:
    """`args=k:v,k2:v2` with single-encoded values (§1)."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part:
            continue
        k, _, v = part.partition(":")
        out[unquote(k).lower()] = unquote(v)
    return out


def project(rows: list[dict[str, Any]], attrs: str | None) -> list[dict[str, Any]]:
    if not attrs:
        return rows
    keep = {a.strip().lower() for a in attrs.split(",")}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]
