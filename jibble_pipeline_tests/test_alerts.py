"""The daily operations alert over the digest fixture's week: problems per client group,
emailed through a real local SMTP server and posted to a local Slack/Teams webhook, each
recipient once per day (``sent_alerts``), empty days, dry runs, failures retried, the
morning schedule and the settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import pytest

from jibble_pipeline.alerts.resources import AlertResource
from jibble_pipeline.automation.alerts import build_alert_schedule
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.jibble.frames import entries_frame
from jibble_pipeline.jibble.models import TimeEntry, parse_payloads
from jibble_pipeline.settings.alerts import load_alert_settings
from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline_tests.digest_fixture import (
    HOSTILE_AGENT,
    HOSTILE_GROUP,
    NOW,
    DigestPipeline,
    punch,
    running_pipeline,
)
from jibble_pipeline_tests.fake_services import FakeWebhook, SmtpServer
from jibble_pipeline_tests.test_digest_sending import assert_no_secret, metadata

OPS = ["ops@staffing.example", "lead@staffing.example"]
SENDER = "Operations <ops-alerts@staffing.example>"
TUESDAY, WEDNESDAY, SATURDAY, SUNDAY = (date(2025, 1, d) for d in (7, 8, 11, 5))
CREDENTIALS = {"JIBBLE_CLIENT_ID": "id", "JIBBLE_CLIENT_SECRET": "secret"}


def _add_problems(pipeline: DigestPipeline) -> None:
    """Beyond the fixture: Carla punches Out twice on Saturday with no clock-in (orphans,
    derived by the real sessions asset), and an entry of Wednesday sits in quarantine."""
    orphans = [
        punch("e40", "p3", "Out", "2025-01-11T09:00:00Z", 0, "2025-01-11"),
        punch("e41", "p3", "Out", "2025-01-11T17:00:00Z", 0, "2025-01-11"),
    ]
    entries, rejected = parse_payloads(TimeEntry, orphans)
    assert not rejected
    window = DateWindow(SATURDAY, SATURDAY + timedelta(days=1))
    pipeline.warehouse.write("raw_time_entries", entries_frame(entries, NOW), window)
    pipeline.derive(SATURDAY, SATURDAY)
    pipeline.query(
        "INSERT INTO quarantined_entries (partition_date, entry_id, reason, raw_payload,"
        " quarantined_at, quarantine_key) VALUES (%s, 'e99', 'time: not an ISO 8601 instant',"
        ' \'{"id": "e99", "personId": "p3", "time": "yesterday"}\', now(), \'e99\')'
        " RETURNING 1",
        (WEDNESDAY,),
    )


@pytest.fixture(scope="module")
def pipeline(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("alerts")
    for prepared in running_pipeline(database_url, folder, ["client_directory", "client_digests"]):
        _add_problems(prepared)
        yield prepared


@pytest.fixture
def clean(pipeline):
    pipeline.query("DELETE FROM sent_alerts RETURNING 1")
    return pipeline


def smtp(server: SmtpServer) -> EmailResource:
    return EmailResource(
        backend="smtp",
        dry_run=False,
        from_address=SENDER,
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="none",
        timeout_seconds=5,
        retry_delay_seconds=0,
    )


def alerts(webhook: FakeWebhook | None = None, **settings) -> AlertResource:
    return AlertResource(
        emails=OPS,
        webhook_url=dg.EnvVar("TEST_ALERT_WEBHOOK_URL") if webhook else None,
        webhook_format=settings.pop("webhook_format", "slack"),
        dry_run=settings.pop("dry_run", False),
        webhook_max_attempts=2,
        **settings,
    )


def run_alert(
    pipeline: DigestPipeline, day: date, resources: dict, **config
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        pipeline.assets,
        selection=["operations_alert"],
        instance=pipeline.instance,
        resources={**pipeline.resources, **resources},
        partition_key=day.isoformat(),
        run_config={"ops": {"operations_alert": {"config": config}}} if config else {},
        raise_on_error=False,
    )


def sent_log(pipeline: DigestPipeline, day: date) -> dict[str, tuple]:
    rows = pipeline.query(
        "SELECT recipient, status, send_count, backend, last_error FROM sent_alerts"
        " WHERE alert_date = %s",
        (day,),
    )
    return {row[0]: row[1:] for row in rows}


def test_yesterdays_problems_reach_every_recipient_once(clean, monkeypatch):
    pipeline = clean
    with SmtpServer() as server, FakeWebhook() as webhook:
        monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", webhook.webhook_url)
        resources = {"email": smtp(server), "alerts": alerts(webhook)}
        first = run_alert(pipeline, TUESDAY, resources)
        second = run_alert(pipeline, TUESDAY, resources)  # the next tick of the morning
        received = server.received()
        posts = list(webhook.posts)

    assert first.success and second.success
    assert sorted(m["To"] for m in received) == sorted(OPS)
    message = received[0]
    assert message["Subject"] == "Operations alert for Tue 7 Jan 2025: 4 problem(s)"
    assert message["X-Jibble-Alert-Date"] == "2025-01-07"
    text = message.get_body(("plain",)).get_content()
    # Tuesday: Maria's automatic clock-out (21:00 in Manila); Bob, Carla and Dan tracked
    # nothing; groups by name, each problem under its group.
    assert text.splitlines()[2:] == [
        f"{HOSTILE_GROUP} (2)",
        "  - Automatic clock-out: Maria Santos, Inbound Calls, clocked out by Jibble at "
        "Tue 7 Jan 21:00 (UTC+08:00)",
        f"  - Tracked nothing on a working day: {HOSTILE_AGENT}",
        "",
        "Beta Logistics (1)",
        "  - Tracked nothing on a working day: Carla Diaz",
        "",
        "Gamma Unassigned (1)",
        "  - Tracked nothing on a working day: Dan Gamma",
    ]
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html

    (post,) = posts
    assert "&lt;script&gt;alert" in post["text"] and "<script>" not in post["text"]
    assert post["text"].startswith("Operations alert for Tue 7 Jan 2025: 4 problem(s)")

    assert sent_log(pipeline, TUESDAY) == {
        OPS[0]: ("sent", 1, "smtp", None),
        OPS[1]: ("sent", 1, "smtp", None),
        "webhook:slack": ("sent", 1, "slack", None),
    }
    shown = metadata(first, "operations_alert")
    assert shown["problems"] == 4 and shown["sent"] == 3 and shown["working_day"] is True
    per_group = {r.data["group"]: r.data for r in shown["per_group"].records}
    assert per_group[HOSTILE_GROUP]["auto_out"] == 1
    assert per_group[HOSTILE_GROUP]["no_tracking"] == 1
    assert metadata(second, "operations_alert")["sent"] == 0
    for result in (first, second):
        assert_no_secret(pipeline.instance, result.run_id, "webhook-secret-token")
        assert "webhook-secret-token" not in str(metadata(result, "operations_alert"))


def test_each_kind_of_problem_is_listed(clean, monkeypatch):
    pipeline = clean
    with SmtpServer() as server:
        resources = {"email": smtp(server), "alerts": alerts()}
        wednesday = run_alert(pipeline, WEDNESDAY, resources)
        saturday = run_alert(pipeline, SATURDAY, resources)
        sunday_open = run_alert(pipeline, date(2025, 1, 12), resources)
        received = {m["X-Jibble-Alert-Date"]: m for m in server.received()}

    assert wednesday.success and saturday.success and sunday_open.success
    wed = received["2025-01-08"].get_body(("plain",)).get_content()
    assert (
        "  - No clock-out (incomplete): Maria Santos, Inbound Calls, since "
        "Wed 8 Jan 09:00 (UTC+08:00)" in wed
    )
    assert "  - Entry in quarantine: Carla Diaz, time: not an ISO 8601 instant" in wed
    sat = received["2025-01-11"].get_body(("plain",)).get_content()
    assert "Clock-out with no clock-in: Carla Diaz, 2 Out punch(es) with no open session" in sat
    assert "Tracked nothing" not in sat  # Saturday is not a working day
    sun = received["2025-01-12"].get_body(("plain",)).get_content()
    assert (
        f"  - Still clocked in (open): {HOSTILE_AGENT}, Inbound Calls, since "
        "Sun 12 Jan 20:00 (UTC-05:00)" in sun
    )


def test_nobody_is_missed_on_a_holiday(clean):
    pipeline = clean
    with SmtpServer() as server:
        holiday = alerts(holidays=[TUESDAY.isoformat()])
        result = run_alert(pipeline, TUESDAY, {"email": smtp(server), "alerts": holiday})
        (message,) = [m for m in server.received() if m["To"] == OPS[0]]
    text = message.get_body(("plain",)).get_content()
    assert result.success and metadata(result, "operations_alert")["working_day"] is False
    assert "Tracked nothing" not in text
    assert "Automatic clock-out: Maria Santos" in text  # the day's other problems stay


def test_an_empty_day_sends_nothing_unless_asked(clean, monkeypatch):
    pipeline = clean
    with SmtpServer() as server, FakeWebhook() as webhook:
        monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", webhook.webhook_url)
        quiet = run_alert(pipeline, SUNDAY, {"email": smtp(server), "alerts": alerts(webhook)})
        assert quiet.success and not server.received() and not webhook.posts
        chosen = {"email": smtp(server), "alerts": alerts(webhook, send_empty=True,
                                                           webhook_format="teams")}  # fmt: skip
        told = run_alert(pipeline, SUNDAY, chosen)
        received = server.received()
        posts = list(webhook.posts)

    assert metadata(quiet, "operations_alert")["not_sent"].startswith("no problems")
    assert told.success and len(received) == 2
    assert received[0]["Subject"] == "Operations alert for Sun 5 Jan 2025: no problems"
    (post,) = posts
    card = post["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    blocks = card["content"]["body"]
    assert blocks[0]["text"] == "Operations alert for Sun 5 Jan 2025: no problems"
    assert sent_log(pipeline, SUNDAY)["webhook:teams"][0] == "sent"


def test_a_refused_webhook_fails_the_run_and_the_next_tick_retries_it(clean, monkeypatch):
    pipeline = clean
    with SmtpServer() as server, FakeWebhook() as webhook:
        monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", webhook.webhook_url)
        resources = {"email": smtp(server), "alerts": alerts(webhook)}
        webhook.status = 403
        failed = run_alert(pipeline, TUESDAY, resources)
        log = sent_log(pipeline, TUESDAY)
        webhook.status = 200
        retried = run_alert(pipeline, TUESDAY, resources)
        received = server.received()
        posts = list(webhook.posts)

    assert not failed.success and retried.success
    assert log[OPS[0]][0] == "sent" and log["webhook:slack"][0] == "failed"
    assert "answered 403" in log["webhook:slack"][3]
    assert "webhook-secret-token" not in log["webhook:slack"][3]
    assert len(received) == 2 and len(posts) == 1  # the emails were not sent again
    assert sent_log(pipeline, TUESDAY)["webhook:slack"][:2] == ("sent", 1)
    failure = failed.get_step_failure_events()[0].step_failure_data.error
    assert "The next tick sends only those" in str(failure)
    assert_no_secret(pipeline.instance, failed.run_id, "webhook-secret-token")


def test_dry_runs_send_nothing_and_say_to_whom(clean, monkeypatch):
    pipeline = clean
    with SmtpServer() as server, FakeWebhook() as webhook:
        monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", webhook.webhook_url)
        dry = run_alert(
            pipeline, TUESDAY, {"email": smtp(server), "alerts": alerts(webhook, dry_run=True)}
        )
        by_config = run_alert(
            pipeline, TUESDAY, {"email": smtp(server), "alerts": alerts(webhook)}, dry_run=True
        )
        no_backend = run_alert(pipeline, TUESDAY, {"email": EmailResource(), "alerts": alerts()})
        assert not server.received() and not webhook.posts

    assert dry.success and by_config.success and no_backend.success
    would = metadata(dry, "operations_alert")["would_send_to"]
    assert sorted(r.data["to"] for r in would.records) == sorted([*OPS, "webhook:slack"])
    assert all("JIBBLE_ALERT_DRY_RUN" in r.data["dry_run_reason"] for r in would.records)
    config_reasons = {
        r.data["dry_run_reason"]
        for r in metadata(by_config, "operations_alert")["would_send_to"].records
    }
    assert config_reasons == {"run config dry_run"}
    reasons = {
        r.data["dry_run_reason"]
        for r in metadata(no_backend, "operations_alert")["would_send_to"].records
    }
    assert reasons == {"no email backend is configured (JIBBLE_EMAIL_BACKEND)"}
    assert sent_log(pipeline, TUESDAY) == {}


def test_the_morning_schedule_asks_for_yesterday_in_its_time_zone():
    settings = load_alert_settings(
        {**CREDENTIALS, "JIBBLE_ALERT_TIMEZONE": "Asia/Manila", "JIBBLE_ALERT_SEND_AT": "06:30"}
    )
    schedule = build_alert_schedule(settings)
    assert schedule.cron_schedule == "30 6-9 * * *"
    assert schedule.execution_timezone == "Asia/Manila"
    # 23:30 UTC on 7 Jan is 07:30 on 8 Jan in Manila: yesterday there is 7 Jan.
    tick = datetime(2025, 1, 7, 23, 30, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        request = schedule(context)
    assert request.partition_key == "2025-01-07"
    assert request.run_key == f"2025-01-07@{tick.isoformat()}"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # nobody to tell
    with_recipient = {**CREDENTIALS, "JIBBLE_ALERT_EMAILS": "ops@staffing.example"}
    running = build_alert_schedule(load_alert_settings(with_recipient)).default_status
    assert running == dg.DefaultScheduleStatus.RUNNING


def test_settings_from_the_environment():
    demo = load_alert_settings({})
    assert demo.dry_run and demo.emails == ("operations@staffing.example",)
    assert not demo.webhook_url_set
    assert demo.send_at == time(8, 0) and demo.working_days == (1, 2, 3, 4, 5)
    live = load_alert_settings(
        {
            **CREDENTIALS,
            "JIBBLE_ALERT_EMAILS": "Ops@Staffing.example; lead@staffing.example",
            "JIBBLE_ALERT_WEBHOOK_URL": "https://acme.webhook.office.com/webhookb2/x/y",
            "JIBBLE_ALERT_WORKING_DAYS": "Sunday,mon,tue,wed,thu",
            "JIBBLE_ALERT_HOLIDAYS": "2025-12-25, 2025-01-01",
            "JIBBLE_DIGEST_TIMEZONE": "Asia/Manila",
        }
    )
    assert not live.dry_run and live.emails == ("ops@staffing.example", "lead@staffing.example")
    assert live.webhook_format == "teams" and live.timezone == "Asia/Manila"
    assert live.working_days == (1, 2, 3, 4, 7)
    assert live.holidays == (date(2025, 1, 1), date(2025, 12, 25))
    assert demo.pace_day == 3 and demo.pace_margin_percent == 10
    paced = load_alert_settings(
        {"JIBBLE_ALERT_PACE_DAY": "Thursday", "JIBBLE_ALERT_PACE_MARGIN": "5"}
    )
    assert paced.pace_day == 4 and paced.pace_margin_percent == 5
    assert load_alert_settings({"JIBBLE_ALERT_PACE_DAY": "none"}).pace_day is None
    mistakes = {
        "JIBBLE_ALERT_EMAILS": "ops at staffing",
        "JIBBLE_ALERT_WORKING_DAYS": "weekdays",
        "JIBBLE_ALERT_HOLIDAYS": "25 December",
        "JIBBLE_ALERT_WEBHOOK_URL": "hooks.slack.com/services/secret-path",
        "JIBBLE_ALERT_SEND_AT": "8am",
        "JIBBLE_ALERT_TIMEZONE": "Manila",
        "JIBBLE_ALERT_DRY_RUN": "maybe",
        "JIBBLE_ALERT_PACE_DAY": "midweek",
        "JIBBLE_ALERT_PACE_MARGIN": "ten percent",
    }
    for name, value in mistakes.items():
        with pytest.raises(ConfigurationError) as error:
            load_alert_settings({**CREDENTIALS, name: value})
        message = str(error.value)
        assert name in message and "\n" not in message
        assert "secret-path" not in message
