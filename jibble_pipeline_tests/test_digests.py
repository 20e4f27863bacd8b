"""Client digests and the report site from real Dagster runs over a small hand-made week
(``digest_fixture``): hours against the hand-computed figures, the Notes, HTML escaping of
hostile names, the files, and the report site's pages and links."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markupsafe import escape

from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.site.paths import agent_page, client_page, digest_file
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline_tests.digest_fixture import (
    ACME,
    BETA,
    BOTH,
    EXPECTED,
    HOSTILE_ACTIVITY,
    HOSTILE_AGENT,
    HOSTILE_GROUP,
    WEEK,
    DigestPipeline,
    running_pipeline,
)

HOSTILE = [HOSTILE_GROUP, HOSTILE_AGENT, HOSTILE_ACTIVITY]


@pytest.fixture(scope="module")
def pipeline(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("digests")
    yield from running_pipeline(
        database_url, folder, ["client_directory", "client_digests", "report_site"]
    )


def stored(pipeline: DigestPipeline) -> dict[str, dict]:
    rows = pipeline.query(
        "SELECT client_email, client_name, subject, total_work_seconds, agent_count, note_count,"
        " html, text, content, digest_sha256 FROM client_digests WHERE week_start = %s",
        (WEEK,),
    )
    names = ["name", "subject", "total", "agents", "notes", "html", "text", "content", "sha"]
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def test_one_digest_per_client_with_the_hand_computed_hours(pipeline):
    digests = stored(pipeline)
    # The directory's emails are compared case-insensitively; the bad row is skipped.
    assert set(digests) == {ACME, BETA, BOTH}
    for email, expected in EXPECTED.items():
        digest = ClientDigest.model_validate(digests[email]["content"])
        assert digest.total_seconds == expected["total"] == digests[email]["total"]
        assert [
            (a.agent, a.seconds, [(x.activity, x.seconds) for x in a.activities])
            for a in digest.agents
        ] == expected["agents"]
        assert [d.seconds for d in digest.days] == expected["days"]
        assert [d.day.isoformat() for d in digest.days][0] == "2025-01-06"
    # The client of two groups gets both groups' hours and notes.
    both = ClientDigest.model_validate(digests[BOTH]["content"])
    assert both.total_seconds == EXPECTED[ACME]["total"] + EXPECTED[BETA]["total"]
    assert len(both.notes) == 3 and len(both.agents) == 3


def test_hours_read_as_h_mm_in_both_renderings(pipeline):
    digests = stored(pipeline)
    acme, beta = digests[ACME], digests[BETA]
    for part in (acme["text"], html.unescape(acme["html"])):
        for figure in ("24:15", "20:00", "16:00", "4:00", "4:15", "12:00", "8:00"):
            assert figure in part
    # 9 h 14 min 40 s rounds to 9:15 and 44 min 40 s to 0:45: never "44 min" or "0.74".
    for part in (beta["text"], beta["html"]):
        assert "9:15" in part and "0:45" in part and "8:30" in part
        assert not re.search(r"\d\s*(min|mins|minutes|hrs|hours)\b", part)
        assert "0.74" not in part and "9.24" not in part
    assert re.search(r"Total hours worked: 24:15", acme["text"])
    assert "Thu 9 Jan      4:15" in acme["text"]  # the night shift counts on its work date


def test_notes_list_open_incomplete_and_auto_out_in_local_time(pipeline):
    digests = stored(pipeline)
    acme = ClientDigest.model_validate(digests[ACME]["content"])
    assert [(n.kind, n.agent, n.group, n.activity, n.start_text) for n in acme.notes] == EXPECTED[
        ACME
    ]["notes"]
    text = digests[ACME]["text"]
    notes = text.split("NOTES", 1)[1]
    assert "Automatic clock-out: Maria Santos" in notes
    assert "No clock-out (incomplete): Maria Santos" in notes
    assert "Wed 8 Jan 09:00 (UTC+08:00)" in notes
    assert f"Still clocked in (open): {HOSTILE_AGENT}" in notes
    assert "Sun 12 Jan 20:00 (UTC-05:00)" in notes
    page = digests[ACME]["html"]
    for start in ("Tue 7 Jan 09:00 (UTC+08:00)", "Sun 12 Jan 20:00 (UTC-05:00)"):
        assert start in page
    assert "Nothing to note" in digests[BETA]["text"]


def test_hostile_names_are_escaped_in_html(pipeline):
    for email, digest in stored(pipeline).items():
        page = digest["html"]
        assert "<script" not in page.lower() and "<img" not in page.lower(), email
        assert "<b>" not in page
        assert "onerror=alert(1)>" not in page
        shown = html.unescape(re.sub(r"<[^>]+>", "", page))
        if email != BETA:
            for name in HOSTILE:
                assert str(escape(name)) in page  # &lt; &gt; &amp; &#34; &#39;
                assert name in shown  # readable as text, not swallowed
        # The plain-text part keeps names as they are (no entities in text mail).
        assert "&lt;" not in digest["text"] and "&amp;" not in digest["text"]
    assert HOSTILE_AGENT in stored(pipeline)[ACME]["text"]


def test_subjects_are_one_line_even_when_the_name_is_not(pipeline):
    digests = stored(pipeline)
    assert digests[BETA]["subject"] == "Weekly hours for Beta Logistics: 6 Jan – 12 Jan 2025"
    both = digests[BOTH]["subject"]
    assert "\r" not in both and "\n" not in both
    assert digests[ACME]["name"] == HOSTILE_GROUP  # no name in the file: the group's name


def test_digests_are_files_too(pipeline):
    root = pipeline.reports
    for email, digest in stored(pipeline).items():
        assert (root / digest_file(WEEK, email)).read_text() == digest["html"]
        assert (root / digest_file(WEEK, email, ".txt")).read_text() == digest["text"]


def test_metadata_shows_the_tables_and_uncovered_groups(pipeline):
    events = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in pipeline.result.get_asset_materialization_events()
    }
    digests = events["client_digests"]
    assert digests["dagster/row_count"].value == 3
    per_client = {r.data["email"]: r.data for r in digests["per_client"].value.records}
    assert per_client[ACME]["hours"] == "24:15" and per_client[ACME]["notes"] == 3
    uncovered = [r.data["group"] for r in digests["groups_without_client"].value.records]
    assert uncovered == ["Gamma Unassigned"]
    directory = events["client_directory"]
    assert directory["clients"].value == 3 and directory["skipped_rows"].value == 1
    site = events["report_site"]
    agents = {r.data["agent"]: r.data for r in site["agents"].value.records}
    assert agents["Maria Santos"]["work"] == "20:00" and agents["Maria Santos"]["break"] == "0:30"
    assert agents["Maria Santos"]["incomplete"] == 1 and agents["Maria Santos"]["auto_out"] == 1
    assert agents[HOSTILE_AGENT]["open"] == 1
    assert {r.data["email"] for r in site["clients"].value.records} == {ACME, BETA, BOTH}


def _links(page: Path) -> list[str]:
    return [unquote(h) for h in re.findall(r'href="([^"]+)"', page.read_text())]


def test_report_site_links_index_to_clients_to_agents(pipeline):
    root = pipeline.reports
    index = root / "index.html"
    assert index.exists()
    client = root / client_page(WEEK, ACME)
    assert any((index.parent / link).resolve() == client.resolve() for link in _links(index))

    agent_links = [(client.parent / link).resolve() for link in _links(client)]
    maria = (root / agent_page(WEEK, "p1")).resolve()
    bob = (root / agent_page(WEEK, "p2")).resolve()
    assert maria in agent_links and bob in agent_links
    # Every relative link of every page resolves to a file of the site.
    for page in root.rglob("*.html"):
        for link in _links(page):
            assert (page.parent / link).resolve().exists(), (page, link)

    page = maria.read_text()
    for expected in ("09:00", "17:30", "21:00", "auto clock-out", "incomplete", "8:00", "0:30"):
        assert expected in page
    assert "<script" not in bob.read_text().lower()
    assert str(escape(HOSTILE_AGENT)) in bob.read_text()


def test_a_client_gone_from_the_directory_loses_its_pages_on_the_next_run(pipeline, tmp_path):
    clients = tmp_path / "clients.csv"
    clients.write_text("email,groups,name\nops@beta.example,g2,Beta Logistics\n")
    from jibble_pipeline.digest.resources import ClientDirectoryResource

    resources = {"clients": ClientDirectoryResource(source="file", clients_file=str(clients))}
    try:
        pipeline.run(["client_directory", "client_digests", "report_site"], resources=resources)
        assert set(stored(pipeline)) == {BETA}
        assert not (pipeline.reports / client_page(WEEK, ACME)).exists()
        assert not (pipeline.reports / digest_file(WEEK, ACME)).exists()
        assert (pipeline.reports / client_page(WEEK, BETA)).exists()
        mappings = pipeline.query("SELECT email, group_id FROM client_directory")
        assert mappings == [(BETA, "g2")]
    finally:
        pipeline.run(["client_directory", "client_digests", "report_site"])
    assert set(stored(pipeline)) == {ACME, BETA, BOTH}


def test_rerendering_a_week_is_idempotent(pipeline):
    before = {k: (v["sha"], v["html"]) for k, v in stored(pipeline).items()}
    pipeline.run(["client_digests"])
    after = {k: (v["sha"], v["html"]) for k, v in stored(pipeline).items()}
    assert after == before
    rows = pipeline.query("SELECT count(*) FROM client_digests")
    assert rows == [(3,)]
    content = json.loads(json.dumps(stored(pipeline)[BETA]["content"]))
    assert format_hours(content["total_seconds"]) == "9:15"


def test_the_site_is_served_over_http(pipeline):
    import threading

    import httpx

    from jibble_pipeline.digest.serve import make_server

    server = make_server(pipeline.reports, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        index = httpx.get(f"{base}/")
        page = httpx.get(f"{base}/{client_page(WEEK, BETA)}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert index.status_code == 200 and "Weekly hours by client" in index.text
    assert page.status_code == 200 and "Carla Diaz" in page.text
