"""Hours against the contract, names a client can tell apart and the site's charts, from real
Dagster runs over the digest fixture's week with contracts in the clients file and a second
"Maria Santos": the digest, the report site (its SVG read back, and drawn by a real
headless Chromium), the exports and the alert."""

from __future__ import annotations

import html
import io
import shutil
import struct
import subprocess
import zlib
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from jibble_pipeline.alerts.resources import AlertResource
from jibble_pipeline.digest.charts import Bar, bar_chart
from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.site.paths import agent_page, client_page, week_dir
from jibble_pipeline.digest.site.paths import export_file as export_path
from jibble_pipeline.warehouse.display_names import agent_labels
from jibble_pipeline_tests.digest_fixture import (
    ACME,
    BETA,
    BOTH,
    ENTRIES,
    PEOPLE,
    WEEK,
    DigestPipeline,
    punch,
    running_pipeline,
)
from jibble_pipeline_tests.test_digest_sending import metadata

GAMMA = "gamma@client.example"
# Acme buys 30 h a week; Beta 2 seats of 5 h; the combined client 4 seats of 50 h; Gamma
# (Dan's group) has no contract.
CLIENTS_YAML = """
clients:
  - {email: acme@client.example, name: Acme, groups: g1, contracted_hours: 30}
  - {email: ops@beta.example, name: Beta Logistics, groups: [g2], seats: 2, hours_per_seat: 5}
  - {email: both@example.com, name: Both, groups: "g1, g2", seats: 4, hours_per_seat: 50}
  - {email: gamma@client.example, name: Gamma, groups: g3}
"""
# A second Maria Santos in Acme's group, with a person code; the first has none (her email
# tells her apart). She works Monday 10:00-12:00 UTC.
NAMESAKE = {
    "id": "p5", "fullName": "Maria Santos", "groupId": "g1", "timeZone": "UTC",
    "email": "maria.santos@agents.example", "status": "Joined", "code": "AG005",
}  # fmt: skip
MARIA, NAMESAKE_LABEL = "Maria Santos (maria)", "Maria Santos (AG005)"
H, M = 3600, 60
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def pipeline(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("contracts")
    entries = ENTRIES + [
        punch("e50", "p5", "In", "2025-01-06T10:00:00Z", 0, "2025-01-06", "a1"),
        punch("e51", "p5", "Out", "2025-01-06T12:00:00Z", 0, "2025-01-06"),
    ]
    for prepared in running_pipeline(
        database_url,
        folder,
        ["client_directory", "client_digests"],
        clients_yaml=CLIENTS_YAML,
        people=PEOPLE + [NAMESAKE],
        entries=entries,
    ):
        # The week before holds Carla's Sunday 5 Jan (1:00): Beta's chart has two weeks.
        assert prepared.run([prepared.weekly_hours], partition_key=str(WEEK - timedelta(7))).success
        prepared.result = prepared.run(["client_digests", "report_site"])
        yield prepared


def digest(pipeline: DigestPipeline, email: str) -> ClientDigest:
    (row,) = pipeline.query(
        "SELECT content FROM client_digests WHERE week_start = %s AND client_email = %s",
        (WEEK, email),
    )
    return ClientDigest.model_validate(row[0])


def text_of(pipeline: DigestPipeline, email: str) -> tuple[str, str]:
    (row,) = pipeline.query(
        "SELECT text, html FROM client_digests WHERE week_start = %s AND client_email = %s",
        (WEEK, email),
    )
    return row[0], html.unescape(row[1])


def read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", keep_default_na=False)


def test_agents_who_share_a_name_get_a_detail_everywhere_the_same_way():
    labels = agent_labels(
        [
            ("p1", "John Malik", "AG012", "john@a.example"),
            ("p2", "john malik", None, "john.m@b.example"),  # names compare case-blind
            ("p3", "Ana Cruz", "AG003", None),
            ("p4", "Sam Li", None, "sam@a.example"),
            ("p5", "Sam Li", None, "sam@b.example"),  # the same local part: the id settles it
            ("p6", None, None, None),  # no name: the id
        ]
    )
    assert labels == {
        "p1": "John Malik (AG012)",
        "p2": "john malik (john.m)",
        "p3": "Ana Cruz",
        "p4": "Sam Li (sam, p4)",
        "p5": "Sam Li (sam, p5)",
        "p6": "p6",
    }


def test_same_name_agents_are_distinct_in_the_digest(pipeline):
    acme = digest(pipeline, ACME)
    assert [a.agent for a in acme.agents][:2] == [MARIA, '<script>alert("pwn")</script> Bob']
    assert {a.person_id: a.agent for a in acme.agents}["p5"] == NAMESAKE_LABEL
    text, page = text_of(pipeline, ACME)
    for rendering in (text, page):
        assert MARIA in rendering and NAMESAKE_LABEL in rendering
    assert "Automatic clock-out: Maria Santos (maria) (" in text  # the Notes too


def test_same_name_agents_are_distinct_on_the_site_and_in_the_exports(pipeline):
    client = (pipeline.reports / client_page(WEEK, ACME)).read_text()
    assert html.escape(MARIA) in client and html.escape(NAMESAKE_LABEL) in client
    for person, label in (("p1", MARIA), ("p5", NAMESAKE_LABEL)):
        agent = (pipeline.reports / agent_page(WEEK, person)).read_text()
        assert f"<h1>{html.escape(label)}</h1>" in agent
    week = (pipeline.reports / week_dir(WEEK) / "index.html").read_text()
    assert html.escape(MARIA) in week and html.escape(NAMESAKE_LABEL) in week
    folder = pipeline.reports
    hours = read_csv((folder / export_path(WEEK, ACME, "hours_csv")).read_bytes())
    sessions = read_csv((folder / export_path(WEEK, ACME, "sessions_csv")).read_bytes())
    assert {MARIA, NAMESAKE_LABEL} <= set(hours["Agent"]) and "Maria Santos" not in set(
        hours["Agent"]
    )
    assert set(sessions.loc[sessions["Agent"] == NAMESAKE_LABEL, "Work date"]) == {"2025-01-06"}
    workbook = pd.read_excel(folder / export_path(WEEK, ACME, "hours_xlsx"), sheet_name="Hours")
    assert {MARIA, NAMESAKE_LABEL} <= set(workbook["Agent"])


def delivered_by_sql(pipeline: DigestPipeline, groups: list[str]) -> int:
    """The week's complete work sessions of the groups, summed by Postgres."""
    ((seconds,),) = pipeline.query(
        "SELECT coalesce(sum(duration_seconds), 0) FROM sessions WHERE group_id = ANY(%s)"
        " AND kind = 'work' AND status = 'complete'"
        " AND belongs_to_date BETWEEN %s AND %s::date + 6",
        (groups, WEEK, WEEK),
    )
    return int(seconds)


def test_delivered_against_contract_equals_the_sessions_summed_in_sql(pipeline):
    acme, beta = digest(pipeline, ACME), digest(pipeline, BETA)
    assert acme.delivery and beta.delivery
    # Acme: 24:15 of the fixture and the namesake's 2:00, of 30:00 contracted.
    assert acme.delivery.delivered_seconds == delivered_by_sql(pipeline, ["g1"]) == 26 * H + 15 * M
    assert acme.delivery.contracted_seconds == 30 * H
    # Beta: 2 seats × 5:00.
    assert beta.delivery.delivered_seconds == delivered_by_sql(pipeline, ["g2"])
    assert beta.delivery.contracted_seconds == 2 * 5 * H
    assert beta.delivery.contract_label == "2 seats × 5:00"
    assert digest(pipeline, BOTH).delivery.delivered_seconds == delivered_by_sql(  # type: ignore[union-attr]
        pipeline, ["g1", "g2"]
    )
    text, page = text_of(pipeline, ACME)
    line = (
        "Delivered against contract: 26:15 of 30:00 contracted (30:00 a week): 87.5 %, short 3:45"
    )
    assert line in text and "26:15 of 30:00 contracted (30:00 a week): 87.5 %, short 3:45" in page
    beta_text, _ = text_of(pipeline, BETA)
    assert "9:15 of 10:00 contracted (2 seats × 5:00): 92.4 %, short 0:45" in beta_text


def test_a_client_without_a_contract_shows_no_delivery_line(pipeline):
    gamma = digest(pipeline, GAMMA)
    assert gamma.delivery is None and gamma.total_seconds == 2 * H
    text, page = text_of(pipeline, GAMMA)
    assert "contract" not in text.lower() and "contract" not in page.lower()
    hours = read_csv((pipeline.reports / export_path(WEEK, GAMMA, "hours_csv")).read_bytes())
    assert list(hours["Agent"])[-1] == "Total"
    page = (pipeline.reports / client_page(WEEK, GAMMA)).read_text()
    assert "Delivered against contract" not in page


def test_the_exports_and_the_site_carry_the_contract(pipeline):
    hours = read_csv((pipeline.reports / export_path(WEEK, BETA, "hours_csv")).read_bytes())
    summary = hours[hours["Work date"] == ""][["Agent", "Hours (h:mm)", "Hours (decimal)"]]
    assert summary.values.tolist() == [
        ["Total", "9:15", pytest.approx(9.2444, abs=1e-4)],
        ["Contracted (2 seats × 5:00)", "10:00", 10.0],
        ["Shortfall (92.4 % delivered)", "0:45", pytest.approx(0.7556, abs=1e-4)],
    ]
    sheet = pd.read_excel(pipeline.reports / export_path(WEEK, BETA, "hours_xlsx"))
    assert list(sheet["Agent"])[-3:] == list(summary["Agent"])
    client = html.unescape((pipeline.reports / client_page(WEEK, ACME)).read_text())
    assert "Delivered against contract" in client and "87.5 %, short 3:45" in client
    week = html.unescape((pipeline.reports / week_dir(WEEK) / "index.html").read_text())
    assert "87.5 %" in week and "92.4 %" in week
    shown = {
        r.data["email"]: r.data["of_contract"]
        for r in metadata(pipeline.result, "client_digests")["per_client"].records
    }
    assert shown == {ACME: "87.5 % of 30:00", BETA: "92.4 % of 10:00", BOTH: "17.7 % of 200:00",
                     GAMMA: None}  # fmt: skip


def alert_text(pipeline: DigestPipeline, day: date, **settings) -> tuple[str, dict]:
    result = pipeline.run(
        ["operations_alert"],
        resources={"alerts": AlertResource(emails=["ops@staffing.example"], **settings)},
        partition_key=day.isoformat(),
    )
    shown = metadata(result, "operations_alert")
    return shown["message"].replace("```", ""), shown


def test_the_mid_week_alert_names_the_client_behind_its_contract_pace(pipeline):
    # The alert of Tuesday's work date goes out on Wednesday, the pace day by default.
    text, shown = alert_text(pipeline, date(2025, 1, 7))
    assert shown["pace_checked"] is True
    clients = text.split("Clients (1)\n", 1)[1].split("\n\n", 1)[0]
    # Both: 30:30 on Monday and Tuesday, 2 of 5 working days: 76:15 of 200:00. Acme (22:00
    # for 30:00) and Beta (8:30 for 10:00) are ahead; Gamma has no contract.
    assert clients.splitlines() == [
        "  - Behind its contract's pace: Both, 30:30 delivered Mon 6 – Tue 7 Jan: on pace for "
        "76:15 of 200:00 contracted (38.1 %)"
    ]
    # Another day of the week, or a margin wider than the gap, names nobody.
    monday, _ = alert_text(pipeline, date(2025, 1, 6))
    wide, _ = alert_text(pipeline, date(2025, 1, 7), pace_margin_percent=70)
    assert "contract's pace" not in monday and "contract's pace" not in wide
    # A Thursday check (the pace day a setting) sees three days: Both is still behind.
    thursday, _ = alert_text(pipeline, date(2025, 1, 8), pace_day=4)
    assert "Behind its contract's pace: Both, 30:30 delivered Mon 6 – Wed 8 Jan" in thursday


# ------------------------------------------------------------------------------ charts


def svgs_of(page: str) -> list[ElementTree.Element]:
    """The inline SVG charts of a page, parsed as XML."""
    return [
        ElementTree.fromstring(part.split("</svg>")[0].join(["<svg", "</svg>"]))
        for part in page.split("<svg")[1:]
    ]


def read_bars(svg: ElementTree.Element) -> tuple[float, list[tuple[int, float, float, str]]]:
    """The axis and each bar: (seconds, height, bottom, label), as the SVG says."""
    axis = float(svg.get("data-axis-y", "nan"))
    bars = [
        (
            int(rect.get("data-seconds", "-1")),
            float(rect.get("height", "nan")),
            float(rect.get("y", "nan")) + float(rect.get("height", "nan")),
            rect.get("data-label", ""),
        )
        for rect in svg.iter(f"{SVG}rect")
        if rect.get("class") == "bar"
    ]
    return axis, bars


def assert_proportional(svg: ElementTree.Element) -> float:
    """Every bar stands on the axis with a height proportional to its seconds, on the scale
    of the plot (its height stands for ``data-full-seconds``); returns pixels per second."""
    axis, bars = read_bars(svg)
    full = int(svg.get("data-full-seconds", "0"))
    scale = (axis - float(svg.get("data-top-y", "nan"))) / full
    for seconds, height, bottom, label in bars:
        assert bottom == pytest.approx(axis, abs=0.01), label
        assert height == pytest.approx(seconds * scale, abs=0.01), label
    return scale


def test_the_client_chart_reads_back_as_its_weeks_against_the_contract_line(pipeline):
    (svg,) = svgs_of((pipeline.reports / client_page(WEEK, BETA)).read_text())
    axis, bars = read_bars(svg)
    # Beta's weeks with hours: Carla's Sunday of the week before (1:00) and her week (9:14:40).
    assert [(s, label) for s, _, _, label in bars] == [(3600, "30 Dec"), (33280, "6 Jan")]
    scale = assert_proportional(svg)
    (line,) = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "contract"]
    assert int(line.get("data-seconds", "0")) == 10 * H  # 2 seats × 5:00
    assert float(line.get("y1", "nan")) == pytest.approx(axis - 10 * H * scale, abs=0.01)
    assert line.get("y1") == line.get("y2")
    # The plot's full height stands for a round number of hours above the contract.
    top = float(svg.get("data-top-y", "nan"))
    assert (axis - top) / scale == int(svg.get("data-full-seconds", "0")) == 12 * H
    # A client with no contract has no line.
    (gamma,) = svgs_of((pipeline.reports / client_page(WEEK, GAMMA)).read_text())
    assert not [e for e in gamma.iter(f"{SVG}line") if e.get("class") == "contract"]


def test_the_agent_chart_reads_back_as_hours_per_day(pipeline):
    (svg,) = svgs_of((pipeline.reports / agent_page(WEEK, "p1")).read_text())
    axis, bars = read_bars(svg)
    # Maria: Monday 8:00, Tuesday 12:00 (an automatic clock-out), Wednesday never clocked out.
    assert [(s, label) for s, _, _, label in bars] == [
        (8 * H, "Mon 6"), (12 * H, "Tue 7"), (0, "Wed 8"), (0, "Thu 9"), (0, "Fri 10"),
        (0, "Sat 11"), (0, "Sun 12"),
    ]  # fmt: skip
    assert_proportional(svg)
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "Tue 7 Jan: 12:00" in titles


def test_chart_labels_are_text_and_heights_hold_for_any_figures():
    hostile = '<script>alert("x")</script>'
    bars = [Bar(f"{hostile}{n}", n * 1234, f"{hostile} title") for n in range(12)]
    svg = ElementTree.fromstring(bar_chart(bars, hostile, line_seconds=5000, line_label=hostile))
    _, read = read_bars(svg)
    assert [s for s, _, _, _ in read] == [n * 1234 for n in range(12)]
    assert_proportional(svg)
    assert svg.find(f"{SVG}script") is None and "<script>" not in bar_chart(bars, hostile)
    assert [r.get("data-label") for r in svg.iter(f"{SVG}rect")][3] == f"{hostile}3"


# ------------------------------------------------------------------- in a real browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
GREEN, RED = (0x2D, 0xA4, 0x4E), (0xCF, 0x22, 0x2E)  # charts.BAR, charts.CONTRACT


def browser() -> str:
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.fail(
            "No Chromium to draw the charts with: install Debian's chromium package "
            "(./scripts/test installs it when it runs as root with apt-get)."
        )
    return found


def screenshot(page: Path, folder: Path, size: str = "1000,900") -> list[list[tuple[int, ...]]]:
    """The page drawn by headless Chromium, as rows of RGB pixels."""
    target = folder / "page.png"
    subprocess.run(
        [
            browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={folder / 'profile'}", "--hide-scrollbars",
            f"--screenshot={target}", f"--window-size={size}", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return decode_png(target.read_bytes())


def decode_png(data: bytes) -> list[list[tuple[int, ...]]]:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as rows of RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    idat = b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IDAT":
            idat += body
        chunks[kind] = body
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    step = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * step
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + guess) & 0xFF
        rows.append([tuple(line[x * step : x * step + 3]) for x in range(width)])
        previous = line
    return rows


def runs(row: list[tuple[int, ...]], colour: tuple[int, int, int]) -> int:
    """How many separate stretches of ``colour`` a row of pixels holds."""
    count, inside = 0, False
    for pixel in row:
        match = all(abs(a - b) <= 3 for a, b in zip(pixel, colour, strict=True))
        count += match and not inside
        inside = match
    return count


def bars_on_the_axis(rows: list[list[tuple[int, ...]]]) -> int:
    """How many green bars of the page's first chart stand side by side, counted just above
    its axis (where no figure is written over them): the bottom of the first block of rows
    holding green (an agent's timeline further down is green too)."""
    green = [y for y, row in enumerate(rows) if runs(row, GREEN)]
    bottom = next(
        (y for y, after in zip(green, green[1:], strict=False) if after > y + 1), green[-1]
    )
    return runs(rows[bottom - 2], GREEN)


@pytest.mark.slow
def test_a_real_browser_draws_the_charts(pipeline, tmp_path):
    rows = screenshot(pipeline.reports / client_page(WEEK, BETA), tmp_path)
    # Beta's two weeks are two green bars side by side on the axis; the contract's dashed
    # line is red across the plot.
    assert bars_on_the_axis(rows) == 2
    assert max(runs(row, RED) for row in rows) >= 10  # dashes
    tall = [y for y, row in enumerate(rows) if runs(row, GREEN)]
    assert 100 < len(tall) < 200  # the taller bar: 9:15 of the plot's 12 hours (168 px)
    assert tall[-1] - tall[0] == len(tall) - 1  # one block: the bars stand on one axis
    agent = screenshot(pipeline.reports / agent_page(WEEK, "p1"), tmp_path / "agent")
    assert bars_on_the_axis(agent) == 2  # Monday and Tuesday
