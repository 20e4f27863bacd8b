"""A client's week as files clients open in a spreadsheet (docs/rules.md, Client-week
exports): pure, no I/O.

Two tables, built from the week's sessions of the client's groups (the same sessions the
digest's hours per day and Notes come from; docs/rules.md, Sessions):

- **sessions**: every session (work and break, any status) with its start and end on the
  agent's own clock *with that instant's UTC offset* (``2025-01-06 09:00+08:00``; seconds are
  shown when they are not zero), its status, the automatic clock-out flag and its duration;
- **hours**: work hours of complete work sessions per agent, group, activity and work date,
  then a ``Total`` row: the digest's total (docs/rules.md, Weekly hours; when
  ``weekly_hours`` and the sessions disagree, ``client_digests`` already warns); for a client
  with a contract, two rows more: the hours contracted, and the shortfall (or the hours over)
  with the share delivered.

Each is a CSV (UTF-8 with a byte-order mark, which is how Excel knows the file is UTF-8 and
shows accented names right; CRLF line ends) and both are sheets of one workbook (``.xlsx``:
header row frozen and filtered, readable column widths, dates as dates, decimal hours as
numbers). ``h:mm`` stays text, exactly as the digest prints it (rounded to the minute), so
the figures read the same in the email and the file; the decimal columns are the numbers to
sum. Text that a spreadsheet would run as a formula (a name starting with ``=``, ``+``,
``-`` or ``@``) is kept as text: quoted in the CSV, a string cell in the workbook.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pandas as pd
import xlsxwriter

from jibble_pipeline.digest.content import ClientDigest, Delivery, local_start, week_sessions
from jibble_pipeline.digest.site.paths import EXPORT_SUFFIXES, export_file
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.warehouse.display_names import Names

SESSION_COLUMNS = [
    "Agent", "Group", "Activity", "Kind", "Work date", "Start (local)", "End (local)",
    "Status", "Auto clock-out", "Duration (h:mm)", "Duration (hours)",
]  # fmt: skip
HOURS_COLUMNS = ["Agent", "Group", "Activity", "Work date", "Hours (h:mm)", "Hours (decimal)"]
TOTAL = "Total"

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# kind -> (the name a client sees as an attachment, its content type)
ATTACHMENTS: dict[str, tuple[str, str]] = {
    "hours_xlsx": ("hours-{week}.xlsx", XLSX),
    "hours_csv": ("hours-{week}.csv", CSV),
    "sessions_csv": ("sessions-{week}.csv", CSV),
}
assert set(ATTACHMENTS) == set(EXPORT_SUFFIXES)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_WIDTH = 60


@dataclass(frozen=True)
class ClientExport:
    """A client's week as two display tables (columns ``SESSION_COLUMNS``, ``HOURS_COLUMNS``;
    ``hours`` without its total rows), the total in seconds and the delivery against the
    client's contract (None without one)."""

    week: date
    client_email: str
    sessions: pd.DataFrame
    hours: pd.DataFrame
    total_seconds: int
    delivery: Delivery | None = None

    def summary_rows(self) -> list[dict[str, object]]:
        """The rows under the hours: ``Total``, then with a contract ``Contracted (...)`` and
        ``Shortfall (93.8 % delivered)`` (or ``Over contract``, or ``Contract met``)."""
        rows: list[tuple[str, int]] = [(TOTAL, self.total_seconds)]
        if self.delivery is not None:
            done, short = self.delivery, self.delivery.shortfall_seconds
            rows.append((f"Contracted ({done.contract_label})", done.contracted_seconds))
            label = "Shortfall" if short > 0 else ("Over contract" if short < 0 else "Contract met")
            if format_hours(abs(short)) == "0:00":
                label = "Contract met"  # within half a minute, as the digest says
            rows.append((f"{label} ({done.percent:.1f} % delivered)", abs(short)))
        return [
            {
                "Agent": label,
                "Hours (h:mm)": format_hours(seconds),
                "Hours (decimal)": seconds / 3600,
            }
            for label, seconds in rows
        ]

    def hours_with_total(self) -> pd.DataFrame:
        summary = pd.DataFrame(self.summary_rows())
        return pd.concat([self.hours, summary], ignore_index=True)[HOURS_COLUMNS]

    def files(self) -> dict[str, bytes]:
        """``digests/<week>/<client>-hours.xlsx``, ``-hours.csv``, ``-sessions.csv``."""
        contents = {
            "hours_xlsx": workbook_bytes(self),
            "hours_csv": csv_bytes(self.hours_with_total()),
            "sessions_csv": csv_bytes(self.sessions),
        }
        return {export_file(self.week, self.client_email, k): v for k, v in contents.items()}

    def summary(self) -> dict[str, object]:
        """One row of the UI's table of exports: counts, and the files under the reports
        folder."""
        paths = {kind: export_file(self.week, self.client_email, kind) for kind in ATTACHMENTS}
        return {
            "client": self.client_email,
            "sessions": len(self.sessions),
            "hour_rows": len(self.hours),
            "hours": format_hours(self.total_seconds),
            **paths,
        }


def local_stamp(moment: datetime, offset_minutes: int | None) -> str:
    """A wall-clock time with its UTC offset; seconds only when they are not zero.

    >>> local_stamp(datetime(2025, 1, 6, 9, 0), 480), local_stamp(datetime(2025, 1, 6, 9, 0), 330)
    ('2025-01-06 09:00+08:00', '2025-01-06 09:00+05:30')
    >>> local_stamp(datetime(2025, 1, 6, 8, 44, 40), 0), local_stamp(datetime(2025, 3, 9, 1), -300)
    ('2025-01-06 08:44:40+00:00', '2025-03-09 01:00-05:00')
    """
    minutes = int(offset_minutes or 0)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    clock = f"{moment:%Y-%m-%d %H:%M}" + (f":{moment:%S}" if moment.second else "")
    return f"{clock}{sign}{hours:02d}:{rest:02d}"


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _end_stamp(row: Mapping, start_offset: int | None) -> str | None:
    """The end on the agent's clock with the end entry's own offset (end_local − end_utc:
    a shift across a daylight-saving change ends on another offset than it started)."""
    if _missing(row.get("end_utc")):
        return None
    end_utc = pd.Timestamp(row["end_utc"]).tz_convert("UTC").tz_localize(None)
    if _missing(row.get("end_local")):
        offset = int(start_offset or 0)
        return local_stamp((end_utc + pd.Timedelta(minutes=offset)).to_pydatetime(), offset)
    end_local = pd.Timestamp(row["end_local"]).tz_localize(None)
    offset = round((end_local - end_utc).total_seconds() / 60)
    return local_stamp(end_local.to_pydatetime(), offset)


def _day(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return pd.Timestamp(value).date()


def _id(value: object) -> str | None:
    return None if _missing(value) else str(value)


def build_client_export(digest: ClientDigest, sessions: pd.DataFrame, names: Names) -> ClientExport:
    """The export of ``digest``'s client and week; ``sessions`` may hold other weeks and
    groups, which are left out. Sessions are listed by agent, then in time order."""
    mine = week_sessions(sessions, digest.week_start)
    mine = mine[mine["group_id"].isin(set(digest.group_ids))]
    rows, work = [], []
    for row in mine.sort_values(["start_utc", "session_id"]).to_dict(orient="records"):
        start, offset = local_start(row)
        seconds = None if _missing(row["duration_seconds"]) else int(row["duration_seconds"])
        ids = (str(row["person_id"]), _id(row["group_id"]), _id(row["activity_id"]))
        agent, group = names.agent(ids[0]), names.group(ids[1])
        activity = names.activity(ids[2], str(row["kind"]))
        day = _day(row["belongs_to_date"])
        rows.append(
            [agent, group, activity, row["kind"], day, local_stamp(start, offset),
             _end_stamp(row, offset), row["status"], bool(row["auto_out"]),
             None if seconds is None else format_hours(seconds),
             None if seconds is None else seconds / 3600]
        )  # fmt: skip
        if row["kind"] == "work" and row["status"] == "complete" and seconds is not None:
            work.append((*ids, agent, group, activity, day, seconds))
    rows.sort(key=lambda r: r[0].lower())  # stable: each agent's sessions stay in time order

    # The grain of weekly_hours (ids, a missing group or activity a value of its own) and
    # the work date; the names ride along.
    keys = ["person_id", "group_id", "activity_id", "Agent", "Group", "Activity", "Work date"]
    per_day = (
        pd.DataFrame(work, columns=[*keys, "seconds"])
        .groupby(keys, dropna=False, sort=False)["seconds"]
        .sum()
        .reset_index()
    )
    per_day = per_day[per_day["seconds"] > 0].sort_values(
        ["Agent", "Group", "Activity", "Work date"],
        key=lambda column: column if column.name == "Work date" else column.str.lower(),
        kind="stable",
    )
    per_day["Hours (h:mm)"] = per_day["seconds"].map(format_hours)
    per_day["Hours (decimal)"] = per_day["seconds"] / 3600
    return ClientExport(
        week=digest.week_start,
        client_email=digest.client_email,
        sessions=pd.DataFrame(rows, columns=SESSION_COLUMNS),
        hours=per_day[HOURS_COLUMNS].reset_index(drop=True),
        total_seconds=int(per_day["seconds"].sum()),
        delivery=digest.delivery,
    )


def attachment_name(kind: str, week: date) -> str:
    """``hours-2025-01-06.xlsx``: the file name a client sees in the email."""
    return ATTACHMENTS[kind][0].format(week=week.isoformat())


# ------------------------------------------------------------------------------ CSV


def _as_text(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text by Excel, LibreOffice and Google Sheets
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a BOM, CRLF, dates ``YYYY-MM-DD``, decimal hours to 4 places (0.36 s)."""
    safe = frame.copy()
    for column in safe.select_dtypes(include=["object", "string"]).columns:
        safe[column] = safe[column].map(_as_text)
    text = safe.to_csv(index=False, float_format="%.4f", lineterminator="\r\n")
    return ("\ufeff" + text).encode("utf-8")


# ----------------------------------------------------------------------------- Excel

_NUMBER_FORMATS = {"Work date": "yyyy-mm-dd", "Duration (hours)": "0.00", "Hours (decimal)": "0.00"}


def _column_width(frame: pd.DataFrame, name: str) -> int:
    """Characters of the column's longest value as shown (decimals at two places)."""
    values = frame[name].dropna()
    if name in _NUMBER_FORMATS and name != "Work date":
        shown = values.map(lambda v: f"{v:.2f}")
    else:
        shown = values.astype(str)
    return int(max(len(name), shown.str.len().max() if len(shown) else 0))


class _Formats:
    """The workbook's cell formats, made once per workbook."""

    def __init__(self, book: xlsxwriter.Workbook):
        self.bold = book.add_format({"bold": True})
        self._by_column = {
            name: book.add_format({"num_format": number})
            for name, number in _NUMBER_FORMATS.items()
        }
        self._total = {
            name: book.add_format({"num_format": number, "bold": True})
            for name, number in _NUMBER_FORMATS.items()
        }

    def cell(self, column: str, total: bool) -> Any:
        if total:
            return self._total.get(column, self.bold)
        return self._by_column.get(column)


def _write_sheet(sheet: Any, frame: pd.DataFrame, formats: _Formats, summary_rows: int = 0) -> None:
    """The frame with a bold header; its last ``summary_rows`` rows (totals) bold too and
    outside the filter."""
    columns = [str(c) for c in frame.columns]
    sheet.write_row(0, 0, columns, formats.bold)
    last = len(frame)
    for r, record in enumerate(frame.itertuples(index=False), start=1):
        total = r > last - summary_rows
        for c, value in enumerate(record):
            if _missing(value):
                continue
            if hasattr(value, "item"):  # numpy scalars
                value = value.item()
            style = formats.cell(columns[c], total)
            if isinstance(value, str):
                sheet.write_string(r, c, value, style)  # never a formula, whatever it starts with
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value, style)
            elif isinstance(value, date):
                sheet.write_datetime(r, c, value, style)
            else:
                sheet.write_number(r, c, value, style)
    for c, name in enumerate(columns):
        sheet.set_column(c, c, min(_column_width(frame, name) + 2, _MAX_WIDTH))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(last - summary_rows, 0), len(columns) - 1)


def workbook_bytes(export: ClientExport) -> bytes:
    """Sheets ``Hours`` (with its total row) and ``Sessions``. Written with XlsxWriter, which
    streams cells to the file several times faster than building the sheets in memory. The
    same week's content gives the same bytes: the file is dated by its week, not the clock."""
    buffer = io.BytesIO()
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
               "strings_to_urls": False}  # fmt: skip
    book = xlsxwriter.Workbook(buffer, options)
    book.set_properties({"created": datetime.combine(export.week, time())})
    formats = _Formats(book)
    hours = export.hours_with_total()
    _write_sheet(book.add_worksheet("Hours"), hours, formats, len(export.summary_rows()))
    _write_sheet(book.add_worksheet("Sessions"), export.sessions, formats)
    book.close()
    return buffer.getvalue()
