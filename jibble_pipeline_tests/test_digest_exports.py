"""The weekly exports (``digest/exports.py``): the CSVs and the workbook that ``client_digests``
writes beside each digest, read back with pandas and openpyxl and compared with the
warehouse's sessions; their links on the report site, served over HTTP; and, on sessions
derived by the real rules, the local times of a half-hour offset and of a daylight-saving
change, and text that a spreadsheet would otherwise run as a formula."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin

import httpx
import openpyxl
import pandas as pd
import pytest

from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.exports import build_client_export, csv_bytes, workbook_bytes
from jibble_pipeline.digest.site.paths import EXPORT_SUFFIXES, client_page, export_file, week_dir
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.rules.sessions import derive_sessions
from jibble_pipeline.warehouse.display_names import Names
from jibble_pipeline_tests.digest_fixture import (
    ACME,
    BETA,
    BOTH,
    EXPECTED,
    HOSTILE_AGENT,
    WEEK,
    DigestPipeline,
    running_pipeline,
)
from jibble_pipeline_tests.reference_rules import entries_frame, entry

CLIENT_GROUPS = {ACME: ["g1"], BETA: ["g2"], BOTH: ["g1", "g2"]}


@pytest.fixture(scope="module")
def pipeline(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    yield from running_pipeline(
        database_url, folder, ["client_directory", "client_digests", "report_site"]
    )


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, na_values=[""])


def warehouse_hours(pipeline: DigestPipeline, groups: list[str]) -> dict[tuple, int]:
    """Work seconds of complete work sessions per (agent, group, activity, work date)."""
    rows = pipeline.query(
        "SELECT a.full_name, g.name, coalesce(x.name, 'No activity'), s.belongs_to_date,"
        "       sum(s.duration_seconds)"
        " FROM sessions s JOIN agents a ON a.person_id = s.person_id"
        " JOIN client_groups g ON g.group_id = s.group_id"
        " LEFT JOIN activities x ON x.activity_id = s.activity_id"
        " WHERE s.kind = 'work' AND s.status = 'complete' AND s.group_id = ANY(%s)"
        "   AND s.belongs_to_date BETWEEN %s AND %s"
        " GROUP BY 1, 2, 3, 4",
        (groups, WEEK, WEEK + timedelta(days=6)),
    )
    return {
        (agent, group, activity, day.isoformat()): int(s) for agent, group, activity, day, s in rows
    }


def warehouse_sessions(pipeline: DigestPipeline, groups: list[str]) -> list[tuple]:
    return pipeline.query(
        "SELECT a.full_name, s.start_utc, s.end_utc, s.status, s.auto_out, s.duration_seconds"
        " FROM sessions s JOIN agents a USING (person_id)"
        " WHERE s.group_id = ANY(%s) AND s.belongs_to_date BETWEEN %s AND %s",
        (groups, WEEK, WEEK + timedelta(days=6)),
    )


def test_every_client_week_has_its_three_files(pipeline):
    folder = pipeline.reports / "digests" / WEEK.isoformat()
    for email in (ACME, BETA, BOTH):
        for kind in EXPORT_SUFFIXES:
            path = pipeline.reports / export_file(WEEK, email, kind)
            assert path.parent == folder and path.stat().st_size > 0
            assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}-(hours|sessions)\.(csv|xlsx)", path.name)
        csv = (pipeline.reports / export_file(WEEK, email, "hours_csv")).read_bytes()
        assert csv.startswith(b"\xef\xbb\xbf") and b"\r\n" in csv  # BOM: Excel reads UTF-8


def test_hours_csv_equals_the_warehouse_and_the_digest(pipeline):
    for email, groups in CLIENT_GROUPS.items():
        hours = read_csv(pipeline.reports / export_file(WEEK, email, "hours_csv"))
        *detail, total = hours.to_dict(orient="records")
        got = {
            (r["Agent"], r["Group"], r["Activity"], r["Work date"]): round(
                r["Hours (decimal)"] * 3600
            )
            for r in detail
        }
        assert got == warehouse_hours(pipeline, groups)
        assert all(
            r["Hours (h:mm)"] == format_hours(got[k]) for k, r in zip(got, detail, strict=True)
        )
        digest = ClientDigest.model_validate(
            pipeline.query(
                "SELECT content FROM client_digests WHERE week_start = %s AND client_email = %s",
                (WEEK, email),
            )[0][0]
        )
        assert total["Agent"] == "Total" and pd.isna(total["Work date"])
        assert total["Hours (h:mm)"] == format_hours(digest.total_seconds)
        assert round(total["Hours (decimal)"] * 3600) == digest.total_seconds
        # Per agent and per day, the rows add up to the digest's own figures.
        frame = pd.DataFrame(detail).assign(
            seconds=[round(h * 3600) for h in hours["Hours (decimal)"][:-1]]
        )
        per_agent = frame.groupby("Agent")["seconds"].sum().to_dict()
        assert per_agent == {a.agent: a.seconds for a in digest.agents if a.seconds}
        per_day = frame.groupby("Work date")["seconds"].sum().to_dict()
        assert per_day == {d.day.isoformat(): d.seconds for d in digest.days if d.seconds}
    assert EXPECTED[ACME]["total"] == 24 * 3600 + 15 * 60


def test_sessions_csv_carries_local_times_with_their_offsets(pipeline):
    sessions = read_csv(pipeline.reports / export_file(WEEK, ACME, "sessions_csv"))
    maria = sessions[sessions["Agent"] == "Maria Santos"]
    bob = sessions[sessions["Agent"] == HOSTILE_AGENT]
    assert maria["Start (local)"].str.endswith("+08:00").all()
    assert bob["Start (local)"].str.endswith("-05:00").all()
    assert list(maria["Start (local)"])[:3] == [
        "2025-01-06 09:00+08:00", "2025-01-06 13:00+08:00", "2025-01-06 13:30+08:00",
    ]  # fmt: skip
    night = bob[bob["Status"] == "complete"].iloc[0]
    assert (night["Work date"], night["Start (local)"], night["End (local)"]) == (
        "2025-01-09", "2025-01-09 22:00-05:00", "2025-01-10 02:15-05:00",
    )  # fmt: skip
    assert (night["Duration (h:mm)"], night["Duration (hours)"]) == ("4:15", 4.25)
    auto = maria[maria["Auto clock-out"]]
    assert list(auto["Start (local)"]) == ["2025-01-07 09:00+08:00"]
    open_or_not = sessions[sessions["Status"] != "complete"]
    assert set(open_or_not["Status"]) == {"open", "incomplete"}
    assert open_or_not["End (local)"].isna().all() and open_or_not["Duration (hours)"].isna().all()
    assert set(sessions["Kind"]) == {"work", "break"}

    # Every row, read back as an instant, is a session of the warehouse: same start and end.
    for email, groups in CLIENT_GROUPS.items():
        rows = read_csv(pipeline.reports / export_file(WEEK, email, "sessions_csv"))

        def instant(text: object) -> datetime | None:
            return None if pd.isna(text) else pd.Timestamp(text).tz_convert(UTC).to_pydatetime()

        got = sorted(
            (r["Agent"], instant(r["Start (local)"]), instant(r["End (local)"]), r["Status"],
             bool(r["Auto clock-out"]),
             None if pd.isna(r["Duration (hours)"]) else round(r["Duration (hours)"] * 3600))
            for r in rows.to_dict(orient="records")
        )  # fmt: skip
        expected = sorted(warehouse_sessions(pipeline, groups), key=lambda r: (r[0], r[1]))
        assert got == sorted(expected, key=lambda r: (r[0], r[1]))
    carla = read_csv(pipeline.reports / export_file(WEEK, BETA, "sessions_csv"))
    assert "2025-01-10 08:44:40+00:00" in set(carla["End (local)"])  # seconds kept


def test_the_workbook_has_both_tables_as_typed_readable_sheets(pipeline):
    for email in (ACME, BETA, BOTH):
        path = pipeline.reports / export_file(WEEK, email, "hours_xlsx")
        book = openpyxl.load_workbook(path)
        assert book.sheetnames == ["Hours", "Sessions"]
        sheets = pd.read_excel(path, sheet_name=None, dtype={"Work date": object})
        for name, kind in (("Hours", "hours_csv"), ("Sessions", "sessions_csv")):
            sheet = book[name]
            assert sheet.freeze_panes == "A2"
            assert all(cell.font.bold for cell in sheet[1])
            csv = read_csv(pipeline.reports / export_file(WEEK, email, kind))
            excel = sheets[name]
            assert list(excel.columns) == list(csv.columns) and len(excel) == len(csv)
            # The same figures as the CSV (which carries 4 decimals), in both formats.
            decimal = [c for c in csv.columns if "(hours)" in c or "(decimal)" in c][0]
            pd.testing.assert_series_equal(excel[decimal], csv[decimal], atol=5e-5)
            hmm = [c for c in csv.columns if "h:mm" in c][0]
            assert list(excel[hmm].fillna("")) == list(csv[hmm].fillna(""))
            assert list(excel["Agent"]) == list(csv["Agent"])
            # Numbers are numbers, dates are dates, flags are booleans, h:mm is text.
            header = [c.value for c in sheet[1]]
            body = list(sheet.iter_rows(min_row=2))
            column = {h: [row[i] for row in body] for i, h in enumerate(header)}
            for cell in column[decimal]:
                assert cell.value is None or (
                    cell.data_type == "n" and cell.number_format == "0.00"
                )
            assert all(c.is_date for c in column["Work date"] if c.value is not None)
            assert all(isinstance(c.value, str) for c in column[hmm] if c.value is not None)
            if name == "Sessions":
                assert {type(c.value) for c in column["Auto clock-out"]} == {bool}
            # Each column is at least as wide as its header and its longest value.
            for i, h in enumerate(header):
                longest = max(
                    [len(str(h))]
                    + [len(str(c.value)) for c in column[h] if isinstance(c.value, str)]
                )
                # Adjacent columns of one width are stored as one range of columns.
                (width,) = [d.width for d in sheet.column_dimensions.values()
                            if d.min <= i + 1 <= d.max]  # fmt: skip
                assert width >= min(longest, 58)
        total_row = list(book["Hours"].iter_rows(min_row=book["Hours"].max_row))[0]
        assert total_row[0].value == "Total" and total_row[0].font.bold


def test_the_week_metadata_lists_the_files(pipeline):
    (event,) = [
        e for e in pipeline.result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "client_digests"
    ]  # fmt: skip
    metadata = event.materialization.metadata
    assert metadata["export_files"].value == 9
    rows = {r.data["client"]: r.data for r in metadata["exports"].value.records}
    assert set(rows) == {ACME, BETA, BOTH}
    assert rows[ACME]["hours"] == "24:15" and rows[ACME]["sessions"] == 7
    assert rows[BETA]["hours"] == "9:15" and rows[BETA]["hour_rows"] == 2
    for row in rows.values():
        for kind in EXPORT_SUFFIXES:
            assert (pipeline.reports / row[kind]).is_file()


def _links(html: str) -> list[str]:
    return [unquote(h) for h in re.findall(r'href="([^"]+)"', html)]


def test_the_client_page_links_the_files_on_disk_and_over_http(pipeline):
    from jibble_pipeline.digest.serve import make_server

    root = pipeline.reports
    page = root / client_page(WEEK, ACME)
    links = [link for link in _links(page.read_text()) if link.endswith((".csv", ".xlsx"))]
    targets = [(page.parent / link).resolve() for link in links]
    assert targets == [(root / export_file(WEEK, ACME, k)).resolve() for k in EXPORT_SUFFIXES]
    week_index = root / week_dir(WEEK) / "index.html"
    week_links = [(week_index.parent / h).resolve() for h in _links(week_index.read_text())]
    assert (root / export_file(WEEK, BETA, "hours_xlsx")).resolve() in week_links

    server = make_server(root, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        page_url = urljoin(base, client_page(WEEK, ACME))
        answers = [httpx.get(urljoin(page_url, link)) for link in links]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["content-type"].startswith("application/vnd.openxmlformats")
    assert answers[1].headers["content-type"].startswith("text/csv")
    assert [a.content for a in answers] == [p.read_bytes() for p in targets]


# ------------------------------------------------------- the rules' sessions, no database

MONDAY = date(2025, 3, 24)


def derived(rows: list[dict]) -> pd.DataFrame:
    sessions = derive_sessions(entries_frame(rows), now=datetime(2025, 4, 10, tzinfo=UTC)).sessions
    return sessions.assign(group_id="g1")


def digest_of(groups: list[str]) -> ClientDigest:
    return ClientDigest(
        week_start=MONDAY, client_email="c@x.example", client_name="C", group_ids=groups,
        group_names=groups, total_seconds=0, agents=[], days=[], notes=[],
    )  # fmt: skip


def test_half_hour_offsets_and_a_daylight_saving_change_keep_their_own_offsets():
    sessions = derived(
        [
            # India, +05:30: 09:00 -> 17:45 local (docs/rules.md, Sessions).
            entry("i1", "p-in", "In", "2025-03-24T03:30:00Z", offset=330, activity="a1"),
            entry("i2", "p-in", "Out", "2025-03-24T12:15:00Z", offset=330),
            # Berlin, spring forward: 22:00 at +01:00 -> 06:00 at +02:00, 7 h, dated 03-29.
            entry("b1", "p-de", "In", "2025-03-29T21:00:00Z", offset=60, activity="a1"),
            entry("b2", "p-de", "Out", "2025-03-30T04:00:00Z", offset=120, day=date(2025, 3, 29)),
        ]
    )
    names = Names(agents={"p-in": "Priya", "p-de": "Dieter"}, groups={"g1": "G"})
    export = build_client_export(digest_of(["g1"]), sessions, names)
    rows = {r["Agent"]: r for r in export.sessions.to_dict(orient="records")}
    assert (rows["Priya"]["Start (local)"], rows["Priya"]["End (local)"]) == (
        "2025-03-24 09:00+05:30", "2025-03-24 17:45+05:30",
    )  # fmt: skip
    assert rows["Priya"]["Duration (h:mm)"] == "8:45" and rows["Priya"]["Duration (hours)"] == 8.75
    assert (rows["Dieter"]["Start (local)"], rows["Dieter"]["End (local)"]) == (
        "2025-03-29 22:00+01:00", "2025-03-30 06:00+02:00",
    )  # fmt: skip
    assert rows["Dieter"]["Work date"] == date(2025, 3, 29)
    assert rows["Dieter"]["Duration (h:mm)"] == "7:00"
    assert export.total_seconds == (8 * 60 + 45 + 7 * 60) * 60
    # Another client's groups, or another week, leave them out.
    assert build_client_export(digest_of(["g2"]), sessions, names).sessions.empty
    assert build_client_export(digest_of(["g2"]), sessions, names).total_seconds == 0


def test_names_that_look_like_formulas_stay_text():
    sessions = derived(
        [
            entry("f1", "p-x", "In", "2025-03-25T08:00:00Z", activity="a-x"),
            entry("f2", "p-x", "Out", "2025-03-25T09:00:00Z"),
        ]
    )
    names = Names(
        agents={"p-x": '=HYPERLINK("http://evil.example","click")'},
        groups={"g1": "@SUM(A1)"},
        activities={"a-x": "-1+2"},
    )
    export = build_client_export(digest_of(["g1"]), sessions, names)
    csv = read_csv_bytes(csv_bytes(export.hours_with_total()))
    assert csv.loc[0, "Agent"] == "'" + names.agents["p-x"]
    assert (csv.loc[0, "Group"], csv.loc[0, "Activity"]) == ("'@SUM(A1)", "'-1+2")
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes(export)))
    for sheet in book.worksheets:
        agent = sheet["A2"]
        assert agent.value == names.agents["p-x"] and agent.data_type == "s"  # not a formula


def test_the_same_week_gives_the_same_files(pipeline):
    """A re-render of an unchanged week rewrites byte-identical files (no clock inside)."""
    first = pipeline.reports / export_file(WEEK, BETA, "hours_xlsx")
    before = {kind: (pipeline.reports / export_file(WEEK, BETA, kind)).read_bytes()
              for kind in ("hours_xlsx", "hours_csv", "sessions_csv")}  # fmt: skip
    assert pipeline.run(["client_digests"]).success
    assert {kind: (pipeline.reports / export_file(WEEK, BETA, kind)).read_bytes()
            for kind in before} == before  # fmt: skip
    assert openpyxl.load_workbook(first).properties.created.date() == WEEK


def read_csv_bytes(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), encoding="utf-8-sig")
