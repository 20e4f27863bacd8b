"""Corrections after late edits, from real Dagster runs over the digest fixture's week: the
digests go out through a real local SMTP server (the ledger records what they said), entries
of the week are then edited, archived or added as a later fetch lands them, and
``sent_corrections`` tells each client once per version: exactly once across re-runs and
crashes, nothing under the tolerance, one email for a burst of edits, the operations alert
instead of the client past the cut-off."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.alerts.resources import AlertResource
from jibble_pipeline.automation.corrections import corrections_sensor
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.digest.content import ActivityHours, AgentHours, ClientDigest, DayHours
from jibble_pipeline.digest.corrections import (
    CHANGE_COLUMNS,
    Policy,
    Reported,
    changed_rows,
    decide,
    ready_weeks,
    with_causes,
)
from jibble_pipeline.digest.resources import CorrectionsResource, build_digest_resources
from jibble_pipeline.digest.site.paths import client_page, correction_file
from jibble_pipeline.jibble.frames import entries_frame
from jibble_pipeline.jibble.models import TimeEntry, parse_payloads
from jibble_pipeline.settings.digests import load_digest_settings
from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline_tests.digest_fixture import (
    ACME,
    BETA,
    BOTH,
    ENTRIES,
    WEEK,
    DigestPipeline,
    punch,
)
from jibble_pipeline_tests.fake_services import SmtpServer
from jibble_pipeline_tests.test_digest_sending import metadata

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

SENDER = "Weekly hours <hours@staffing.example>"
# The fixture's week ended in January 2025: in these tests the cut-off lies far behind it,
# except where the test is about the cut-off.
RECENT = CorrectionsResource(cutoff_weeks=10_000)
CORRECTION_STEPS = ("client_digests", "sent_corrections")


def smtp(server: SmtpServer, dry_run: bool = False) -> EmailResource:
    return EmailResource(
        backend="smtp",
        dry_run=dry_run,
        attachments=False,
        from_address=SENDER,
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="none",
        timeout_seconds=5,
        retry_delay_seconds=0,
    )


class Week:
    """The fixture's week in a schema of its own, its digests sent; ``edit`` lands changed
    entries as a later fetch would, and re-derives the week."""

    def __init__(self, pipeline: DigestPipeline):
        self.pipeline = pipeline
        self.payloads = {p["id"]: dict(p) for p in ENTRIES}

    def send_digests(self, server: SmtpServer | None) -> None:
        email = {"email": smtp(server)} if server else {}
        assert self.pipeline.run(["sent_digests"], resources=email).success

    def edit(self, *changed: dict, landed: datetime | None = None) -> datetime:
        """Lands the changed payloads (by id; new ids are added) at ``landed`` (default: now)
        with their whole work dates, re-derives those dates and the week; returns ``landed``."""
        landed = landed or datetime.now(UTC)
        for payload in changed:
            self.payloads[payload["id"]] = {**self.payloads.get(payload["id"], {}), **payload}
        days = sorted({date.fromisoformat(p["belongsToDate"]) for p in changed})
        for day in days:
            of_day = [p for p in self.payloads.values() if p["belongsToDate"] == day.isoformat()]
            entries, rejected = parse_payloads(TimeEntry, of_day)
            assert not rejected
            window = DateWindow(day, day + timedelta(days=1))
            self.pipeline.warehouse.write(
                "raw_time_entries", entries_frame(entries, landed), window
            )
            self.pipeline.derive(day, day)
        assert self.pipeline.run([self.pipeline.weekly_hours]).success
        return landed

    def rederive(self, day: date) -> None:
        self.pipeline.derive(day, day)
        assert self.pipeline.run([self.pipeline.weekly_hours]).success

    def correct(
        self,
        email: EmailResource | None = None,
        now: datetime | None = None,
        corrections: CorrectionsResource = RECENT,
        raise_on_error: bool = True,
        steps: tuple[str, ...] = CORRECTION_STEPS,
        **config: object,
    ) -> dg.ExecuteInProcessResult:
        """The send_corrections job's steps for the week (without the site unless asked),
        deciding at ``now`` (default: three hours from now, past the quiet period)."""
        now = now or datetime.now(UTC) + timedelta(hours=3)
        resources: dict[str, object] = {"corrections": corrections}
        if email is not None:
            resources["email"] = email
        return self.pipeline.run(
            list(steps),
            resources=resources,
            run_config={
                "ops": {"sent_corrections": {"config": {"now": now.isoformat(), **config}}}
            },
            raise_on_error=raise_on_error,
        )

    def versions(self) -> list[tuple]:
        return self.pipeline.query(
            "SELECT client_email, version, kind, dry_run FROM reported_weeks"
            " ORDER BY client_email, version"
        )


def edited(entry_id: str, **fields: object) -> dict:
    """An entry of the fixture changed in Jibble now (a new ``updatedAt``)."""
    base = next(p for p in ENTRIES if p["id"] == entry_id)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {**base, **fields, "updatedAt": now}


def carla_out(at: str) -> dict:
    """Carla's Monday clock-out (16:30 at first: 8:30 of Inbound Calls) moved to ``at``."""
    moment = f"2025-01-06T{at}Z"
    return edited("e23", time=moment, localTime=moment[:-1])


@pytest.fixture
def week(database_url, tmp_path) -> Iterator[Week]:
    pipeline = DigestPipeline(database_url, f"test_{uuid.uuid4().hex[:10]}", tmp_path)
    try:
        pipeline.prepare()
        assert pipeline.run(["client_directory", "client_digests"]).success
        yield Week(pipeline)
    finally:
        pipeline.drop()


def execute(pipeline: DigestPipeline, *statements: str) -> None:
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pipeline.schema)))
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def received_by(server: SmtpServer) -> dict[str, list]:
    found: dict[str, list] = {}
    for message in server.received():
        found.setdefault(message["To"], []).append(message)
    return found


def test_a_late_edit_sends_one_correction_and_a_rerun_sends_nothing(week):
    with SmtpServer() as server:
        week.send_digests(server)
        assert len(server.received()) == 3  # the digests: version 1 of each client's week
        week.edit(carla_out("17:15"))
        first = week.correct(smtp(server))
        again = week.correct(smtp(server))
        later = week.correct(smtp(server), now=datetime.now(UTC) + timedelta(days=2))
        mail = received_by(server)

    # Carla (Beta's group) gained 45 minutes: Beta and the client of both groups hear it once.
    assert {to: len(messages) for to, messages in mail.items()} == {ACME: 1, BETA: 2, BOTH: 2}
    correction = mail[BETA][1]
    assert correction["Subject"] == (
        "Corrected hours for Beta Logistics: 6 Jan – 12 Jan 2025 (correction 1)"
    )
    assert correction["X-Jibble-Correction"] == "1"
    text = correction.get_body(("plain",)).get_content()
    assert "Total hours worked: 9:15 as reported, 10:00 now (+0:45)" in text
    assert "  Carla Diaz, Inbound Calls: 8:30 -> 9:15 (+0:45); entries edited after the report" in (
        text
    )
    assert "Mon 6 Jan      8:30 ->   9:15" in text
    assert "Email Support" not in text  # only the rows that changed
    html = correction.get_body(("html",)).get_content()
    for cell in ("Carla Diaz", "Inbound Calls", "8:30", "9:15", "entries edited after the report"):
        assert f">{cell}<" in html
    both = mail[BOTH][1].get_body(("plain",)).get_content()
    assert "Carla Diaz, Inbound Calls: 8:30 -> 9:15" in both and "Maria" not in both

    assert week.versions() == [
        (ACME, 1, "digest", False),
        (BOTH, 1, "digest", False),
        (BOTH, 2, "correction", False),
        (BETA, 1, "digest", False),
        (BETA, 2, "correction", False),
    ]
    log = week.pipeline.query(
        "SELECT client_email, version, status, send_count FROM sent_corrections ORDER BY 1"
    )
    assert log == [(BOTH, 2, "sent", 1), (BETA, 2, "sent", 1)]
    shown = metadata(first, "sent_corrections")
    assert shown["corrections"] == 2 and shown["sent"] == 2 and shown["clients_reported"] == 3
    assert metadata(again, "sent_corrections")["corrections"] == 0
    assert metadata(later, "sent_corrections")["corrections"] == 0
    # The correction as emailed is on the site's side of the reports folder.
    page = week.pipeline.reports / correction_file(WEEK, BETA, 1)
    assert "Carla Diaz" in page.read_text() and page.with_suffix(".txt").is_file()


def test_the_site_marks_a_corrected_week_and_shows_what_was_sent(week):
    with SmtpServer() as server:
        week.send_digests(server)
        week.edit(carla_out("17:15"))
        # The send_corrections job's steps, the site's after the sending's in one run.
        assert week.correct(smtp(server), steps=(*CORRECTION_STEPS, "report_site")).success
    reports = week.pipeline.reports
    page = html.unescape((reports / client_page(WEEK, BETA)).read_text())
    assert '<h1>Beta Logistics <span class="flag">corrected</span></h1>' in page
    told = page.split("What the client was told", 1)[1]
    history = re.findall(r"<tr><td>(\d)</td><td>([^<]+)</td><td>([^<]+)</td>", told)
    assert [(n, what) for n, what, _ in history] == [("1", "Digest"), ("2", "Correction 1")]
    assert all(when.endswith(" UTC") for _, _, when in history)
    # Each version next to now; the newest that differs from now is open: the digest's.
    first, second = told.split("<details")[1:3]
    assert first.startswith(' class="reported">') and "Correction 1" in first
    assert ": the same</summary>" in first and "<table" not in first
    assert second.startswith(' class="reported" open>') and "(Digest) and now</summary>" in second
    changed = re.findall(
        r'<tr class="changed"><td>([^<]+)</td><td>([^<]+)</td>\s*'
        r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>',
        second,
    )
    assert changed == [("Carla Diaz", "Inbound Calls", "8:30", "9:15")]
    assert "The 7 other figures (agents' activities and days) are as reported." in second
    # Each version as it was told, rendered from the ledger: the digest said 9:15.
    links = re.findall(r'<a href="([^"]+-version-\d\.html)">email</a>', told)
    pages = [(reports / client_page(WEEK, BETA)).parent.joinpath(link).resolve() for link in links]
    digest_told, correction_told = (html.unescape(p.read_text()) for p in pages)
    assert "9:15" in digest_told and "10:00" not in digest_told
    assert "Correction 1 of the hours reported on" in correction_told
    index = (reports / "index.html").read_text()
    beta_row = index.split("Beta Logistics", 1)[1].split("</tr>", 1)[0]
    assert 'class="flag">corrected<' in beta_row
    week_page = (reports / "weeks" / WEEK.isoformat() / "index.html").read_text()
    assert week_page.count('class="flag">corrected<') == 2  # Beta and the client of both


def test_the_sensor_asks_once_a_changed_week_is_quiet_and_not_after_it_is_corrected(week):
    pipeline = week.pipeline
    resources = {
        "warehouse": pipeline.resources["warehouse"],
        "corrections": CorrectionsResource(quiet_hours=0, cutoff_weeks=10_000),
    }
    with SmtpServer() as server:
        resources["email"] = smtp(server)
        week.send_digests(server)

        def evaluate(**overrides: object):
            with dg.build_sensor_context(
                instance=pipeline.instance, resources={**resources, **overrides}
            ) as context:
                return corrections_sensor(context)

        unchanged = evaluate()
        week.edit(carla_out("17:15"))
        noisy = evaluate(corrections=CorrectionsResource(quiet_hours=5, cutoff_weeks=10_000))
        ready = evaluate()
        week.correct(smtp(server))
        done = evaluate()
    assert isinstance(unchanged, dg.SkipReason) and isinstance(noisy, dg.SkipReason)
    assert "1 reported client-week(s) changed" not in unchanged.skip_message
    assert "2 reported client-week(s) changed, none quiet yet" in noisy.skip_message
    (request,) = ready.run_requests
    assert request.partition_key == WEEK.isoformat()
    assert isinstance(done, dg.SkipReason)


def test_a_crash_between_sending_and_logging_does_not_send_twice(week):
    pipeline = week.pipeline
    with SmtpServer() as server:
        week.send_digests(server)
        week.edit(carla_out("17:15"))
        # The database refuses to log a correction sent: the run dies after the messages went.
        execute(
            pipeline,
            "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'the process died'; END $$",
            "CREATE TRIGGER crash BEFORE UPDATE ON sent_corrections FOR EACH ROW"
            " WHEN (NEW.status = 'sent') EXECUTE FUNCTION crash()",
        )
        crashed = week.correct(smtp(server), raise_on_error=False)
        execute(pipeline, "DROP TRIGGER crash ON sent_corrections")
        after_crash = len(server.received())
        # An hour later (the claims long stale), the sensor's next run and a plain re-run.
        pipeline.query(
            "UPDATE sent_corrections SET claimed_at = claimed_at - interval '1 hour' RETURNING 1"
        )
        rerun = week.correct(smtp(server))
        after_rerun = len(server.received())
        forced = week.correct(smtp(server), force=True, clients=[BETA])
        mail = received_by(server)

    assert not crashed.success
    assert after_crash == after_rerun == 3 + 2  # the digests, then Beta's and Both's corrections
    assert pipeline.query("SELECT client_email, status FROM sent_corrections ORDER BY 1") == [
        (BOTH, "attempting"),
        (BETA, "sent"),
    ]
    shown = metadata(rerun, "sent_corrections")
    assert shown["delivery_unknown"] == 2 and shown["sent"] == 0
    statuses = {r.data["client"]: r.data["status"] for r in shown["per_client"].records}
    assert statuses[BOTH].startswith("delivery unknown") and "force" in statuses[BOTH]
    warnings = [e.user_message for e in pipeline.instance.all_logs(rerun.run_id) if e.level >= 30]
    assert sum("delivery unknown" in w for w in warnings) == 2
    # A person who checked forces the one client: sent once more, now logged and reported.
    assert forced.success and len(mail[BETA]) == 3 and len(mail[BOTH]) == 2
    assert (BETA, 2, "correction", False) in week.versions()
    assert (BOTH, 2, "correction", False) not in week.versions()


def test_an_edit_under_the_tolerance_sends_nothing(week):
    with SmtpServer() as server:
        week.send_digests(server)
        week.edit(carla_out("16:30:50"))  # 50 seconds more
        result = week.correct(smtp(server))
        received = server.received()
    assert len(received) == 3  # the digests only
    shown = metadata(result, "sent_corrections")
    assert shown["corrections"] == 0 and shown["clients_reported"] == 3
    assert {r.data["verdict"] for r in shown["per_client"].records} == {"unchanged"}
    assert [v[1] for v in week.versions()] == [1, 1, 1]


def test_two_edits_inside_the_quiet_period_make_one_email(week):
    hour = timedelta(hours=1)
    with SmtpServer() as server:
        week.send_digests(server)
        first = week.edit(carla_out("16:45"))
        early = week.correct(smtp(server), now=first + hour)
        second = week.edit(carla_out("17:05"), landed=first + hour)
        still = week.correct(smtp(server), now=second + hour)
        quiet = week.correct(smtp(server), now=second + 2 * hour)
        mail = received_by(server)
    waiting = metadata(early, "sent_corrections")
    assert waiting["waiting_for_quiet"] == 2 and waiting["corrections"] == 0
    until = {r.data["client"]: r.data["quiet_until"] for r in waiting["per_client"].records}
    assert until[BETA] == (first + 2 * hour).isoformat()
    assert metadata(still, "sent_corrections")["waiting_for_quiet"] == 2
    assert metadata(quiet, "sent_corrections")["sent"] == 2
    assert len(mail[BETA]) == 2  # the digest and one correction, with both edits in it
    text = mail[BETA][1].get_body(("plain",)).get_content()
    assert "Carla Diaz, Inbound Calls: 8:30 -> 9:05 (+0:35)" in text


def test_a_change_past_the_cutoff_goes_to_the_alert_not_to_the_client(week):
    pipeline = week.pipeline
    with SmtpServer() as server:
        week.send_digests(server)
        week.edit(carla_out("17:15"))
        now = datetime.now(UTC) + timedelta(hours=3)
        result = week.correct(smtp(server), now=now, corrections=CorrectionsResource())
        again = week.correct(smtp(server), now=now, corrections=CorrectionsResource())
        received = server.received()
        alert = pipeline.run(
            ["operations_alert"],
            resources={"alerts": AlertResource(emails=["ops@staffing.example"])},
            # Today's partition (UTC): three hours on may already be tomorrow, not yet one.
            partition_key=datetime.now(UTC).date().isoformat(),
        )
    assert len(received) == 3  # the digests; no correction reached a client
    shown = metadata(result, "sent_corrections")
    assert shown["past_cutoff"] == 2 and shown["corrections"] == 0
    assert metadata(again, "sent_corrections")["past_cutoff"] == 0  # noted once
    assert (BETA, 2, "past_cutoff", False) in week.versions()
    message = metadata(alert, "operations_alert")["message"]
    assert "Clients (2)" in message
    assert (
        "Week changed after the correction cut-off (not emailed): Beta Logistics, week of "
        "6 Jan – 12 Jan 2025: 9:15 -> 10:00; Carla Diaz, Inbound Calls 8:30 -> 9:15 (entries "
        "edited after the report)"
    ) in message


def test_each_cause_is_named(week):
    """Archived, added late, closed by an automatic clock-out, and a group corrected."""
    pipeline = week.pipeline
    with SmtpServer() as server:
        week.send_digests(server)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        week.edit(
            # Maria's Wednesday, never clocked out when reported: Jibble clocks her out.
            {**punch("e08", "p1", "Out", "2025-01-08T05:00:00Z", 480, "2025-01-08",
                     client_type="AutoOut"), "createdAt": now, "updatedAt": now},
            # Bob's Thursday night shift is archived.
            edited("e10", status="Archived"),
            # Carla's Friday gets a session added late (and her Monday stays as it was).
            {**punch("e26", "p3", "In", "2025-01-10T09:00:00Z", 0, "2025-01-10", "a3"),
             "createdAt": now, "updatedAt": now},
            {**punch("e27", "p3", "Out", "2025-01-10T10:00:00Z", 0, "2025-01-10"),
             "createdAt": now, "updatedAt": now},
        )  # fmt: skip
        # Dan was in Acme's group all along: his history is corrected, his Monday re-derived.
        pipeline.query(
            "UPDATE agent_group_history SET group_id = 'g1' WHERE person_id = 'p4' RETURNING 1"
        )
        week.rederive(date(2025, 1, 6))
        week.correct(smtp(server))
        mail = received_by(server)
    acme = mail[ACME][1].get_body(("plain",)).get_content()
    assert "Maria Santos, Inbound Calls: 16:00 -> 20:00 (+4:00); a session closed by an " in acme
    assert "automatic clock-out after the report" in acme
    assert "Dan Gamma, Inbound Calls: 0:00 -> 2:00 (+2:00); the agent's group corrected" in acme
    assert '"><img src=x onerror=alert(1)>: 4:15 -> 0:00 (-4:15); entries archived' in acme
    beta = mail[BETA][1].get_body(("plain",)).get_content()
    assert "Carla Diaz, Email Support: 0:45 -> 1:45 (+1:00); entries added late" in beta


def test_a_deployment_that_sends_nothing_rehearses_and_renders_its_corrections(week):
    week.send_digests(None)  # no email backend: the digests are a dry run, rehearsed
    week.edit(carla_out("17:15"))
    first = week.correct()
    second = week.correct()
    assert week.versions() == [
        (ACME, 1, "digest", True),
        (BOTH, 1, "digest", True),
        (BOTH, 2, "correction", True),
        (BETA, 1, "digest", True),
        (BETA, 2, "correction", True),
    ]
    shown = metadata(first, "sent_corrections")
    assert shown["dry_run"] is True and shown["corrections"] == 2 and shown["sent"] == 0
    statuses = {r.data["status"] for r in shown["per_client"].records if r.data["status"]}
    assert statuses == {"dry run (no email backend is configured (JIBBLE_EMAIL_BACKEND))"}
    assert metadata(second, "sent_corrections")["corrections"] == 0
    assert week.pipeline.query("SELECT count(*) FROM sent_corrections") == [(0,)]
    text = (week.pipeline.reports / correction_file(WEEK, BETA, 1, ".txt")).read_text()
    assert "Carla Diaz, Inbound Calls: 8:30 -> 9:15" in text


def test_correction_settings_from_the_environment():
    default = load_digest_settings({})
    assert default.correction_tolerance_seconds == 60
    assert default.correction_quiet_hours == 2 and default.correction_cutoff_weeks == 8
    env = {
        "JIBBLE_CORRECTION_TOLERANCE_SECONDS": "300",
        "JIBBLE_CORRECTION_QUIET_HOURS": "0.5",
        "JIBBLE_CORRECTION_CUTOFF_WEEKS": "4",
    }
    resource = build_digest_resources(load_digest_settings(env))["corrections"]
    assert resource.policy == Policy(300, timedelta(minutes=30), 4)
    for name, value in (*env.items(), ("JIBBLE_CORRECTION_CUTOFF_WEEKS", "2.5")):
        for wrong in ("soon", "-1") if value != "2.5" else (value,):
            with pytest.raises(ConfigurationError) as error:
                load_digest_settings({name: wrong})
            assert name in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------ the rules, pure


def digest_of(week: date, agents: dict[str, dict[str | None, int]], groups=("G1",)) -> ClientDigest:
    """A client's digest of ``agents``: person -> activity id -> seconds."""
    return ClientDigest(
        week_start=week, client_email="c@x.example", client_name="C", group_ids=["g1"],
        group_names=list(groups),
        total_seconds=sum(s for acts in agents.values() for s in acts.values()),
        agents=[
            AgentHours(person_id=p, agent=p.upper(), groups=list(groups),
                       seconds=sum(acts.values()),
                       activities=[ActivityHours(activity=f"A {a}", seconds=s, activity_id=a)
                                   for a, s in acts.items()])
            for p, acts in agents.items()
        ],
        days=[DayHours(day=week + timedelta(days=n), seconds=0) for n in range(7)], notes=[],
    )  # fmt: skip


def changes_of(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CHANGE_COLUMNS)


REPORTED_AT = datetime(2025, 1, 13, 7, tzinfo=UTC)
AFTER = datetime(2025, 1, 15, 9, tzinfo=UTC)


def test_changed_rows_keep_only_moves_beyond_the_tolerance_and_rows_gone():
    before = digest_of(WEEK, {"p1": {"a1": 3600, "a2": 1800}, "p2": {"a1": 600}})
    after = digest_of(WEEK, {"p1": {"a1": 3660, "a2": 1861}, "p3": {None: 120}})
    rows = changed_rows(before, after, tolerance_seconds=60)
    assert [(r.person_id, r.activity_id, r.before_seconds, r.after_seconds) for r in rows] == [
        ("p1", "a2", 1800, 1861),  # 61 s: beyond; p1/a1 moved by exactly 60 s: not
        ("p3", None, 0, 120),  # new to the week
        ("p2", "a1", 600, 0),  # gone from it, named as reported
    ]
    assert rows[2].agent == "P2" and rows[2].activity == "A a1"


def test_causes_follow_the_rows_activity_and_the_agents_groups():
    before = digest_of(WEEK, {"p1": {"a1": 3600, "a2": 3600}, "p2": {"a1": 3600}})
    after = digest_of(WEEK, {"p1": {"a1": 7200, "a2": 0}, "p2": {"a1": 7200}}, groups=("G2",))
    rows = changed_rows(before, after, 60)
    entry = {"type": "In", "status": "Active", "client_type": "Web", "removed_at": None,
             "created_at": REPORTED_AT - timedelta(days=3), "fetched_at": AFTER}  # fmt: skip
    changes = changes_of(
        {**entry, "person_id": "p1", "activity_id": "a1", "updated_at": AFTER},  # edited
        {**entry, "person_id": "p1", "activity_id": "a2", "status": "Archived"},
        # Landed before the report: not a cause of anything since.
        {**entry, "person_id": "p2", "activity_id": "a1", "updated_at": AFTER,
         "fetched_at": REPORTED_AT - timedelta(hours=1)},
    )  # fmt: skip
    named = {(r.person_id, r.activity_id): r.causes for r in with_causes(rows, changes,
             REPORTED_AT, before, after)}  # fmt: skip
    # Both agents moved from G1 to G2: in both versions, so the group is named too.
    assert named == {
        ("p1", "a1"): ["edited", "group"],
        ("p1", "a2"): ["archived", "group"],
        ("p2", "a1"): ["group"],
    }


def test_decide_waits_for_quiet_and_notes_weeks_past_the_cutoff():
    before = digest_of(WEEK, {"p1": {"a1": 3600}})
    after = digest_of(WEEK, {"p1": {"a1": 7200}})
    reported = Reported(1, REPORTED_AT, before)
    policy = Policy(tolerance_seconds=60, quiet=timedelta(hours=2), cutoff_weeks=8)
    no_changes = changes_of()

    def verdict(now: datetime, digest: ClientDigest = after, last=AFTER):
        return decide(reported, digest, no_changes, last, now, policy, version=2)

    assert verdict(AFTER + timedelta(hours=3), before).verdict == "unchanged"
    waiting = verdict(AFTER + timedelta(hours=1))
    assert waiting.verdict == "waiting" and waiting.wait_until == AFTER + timedelta(hours=2)
    sent = verdict(AFTER + timedelta(hours=2))
    assert sent.verdict == "send" and sent.correction and sent.digest == after
    assert (sent.correction.version, sent.correction.number, sent.correction.previous) == (2, 1, 1)
    assert (sent.correction.total_before, sent.correction.total_after) == (3600, 7200)
    assert verdict(datetime(2025, 3, 11, tzinfo=UTC)).verdict == "past_cutoff"  # 8 weeks + 2 days
    assert verdict(datetime(2025, 3, 9, tzinfo=UTC)).verdict == "send"
    assert verdict(AFTER, last=None).verdict == "send"  # no entry changed: nothing to wait for


def test_ready_weeks_fingerprint_the_same_changes_the_same_way():
    changed = pd.DataFrame(
        {
            "week_start": [WEEK, WEEK, WEEK + timedelta(7)],
            "client_email": ["a@x", "b@x", "a@x"],
            "last_change": [AFTER, AFTER + timedelta(hours=1), None],
        }
    )
    quiet = timedelta(hours=2)
    early = ready_weeks(changed, AFTER + timedelta(hours=2, minutes=30), quiet)
    late = ready_weeks(changed, AFTER + timedelta(hours=3), quiet)
    assert set(early) == set(late) == {WEEK, WEEK + timedelta(7)}
    assert early[WEEK] != late[WEEK]  # b@x became quiet in between: another state
    assert ready_weeks(changed, AFTER + timedelta(hours=3), quiet) == late
    assert ready_weeks(changed.iloc[:2], AFTER, quiet) == {}
