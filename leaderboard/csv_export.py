"""Every CSV the site exports goes through here, so that no cell runs as a spreadsheet formula.

Names, usernames and emails come from students and rosters. A spreadsheet opening a cell that
starts with ``= + - @`` (or a tab or carriage return) evaluates it as a formula, which can fetch
URLs or run commands on the TA's machine. Such text cells get a leading ``'``, which spreadsheets
read as "this is text" and hide; numbers (and text that is a plain number, such as "-Infinity")
stay numeric so sorting and sums keep working.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and "_" not in text


def safe_cell(value: Any) -> Any:
    """``value`` as a cell a spreadsheet shows as it is: numbers unchanged, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> HttpResponse:
    """A CSV download of ``rows`` under ``header``, every cell through ``safe_cell``."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return response
