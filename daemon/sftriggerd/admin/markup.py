"""The status page's small HTML pieces. Every value goes through `e`: names come from the
config, errors and bodies from Salesforce and from webhook answers, and none of them may
become markup."""

from __future__ import annotations

from datetime import datetime
from html import escape

from ..events.payload import format_time


def e(value: object) -> str:
    return escape(str(value), quote=True)


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{e(text)}</span>'


def table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th scope=col>{e(header)}</th>" for header in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def row(attribute: str, key: object, cells: list[tuple[str, str]]) -> str:
    """`cells` are (label, html) pairs; the label titles the cell in the phone layout."""
    tds = "".join(f'<td data-label="{e(label)}">{html}</td>' for label, html in cells)
    return f'<tr {attribute}="{e(key)}">{tds}</tr>'


def duration_text(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def when(at: datetime, now: datetime) -> str:
    seconds = (at - now).total_seconds()
    relative = f"in {duration_text(seconds)}" if seconds > 0 else f"{duration_text(-seconds)} ago"
    stamp = format_time(at)
    return f'<time datetime="{e(stamp)}" title="{e(stamp)}">{e(relative)}</time>'
