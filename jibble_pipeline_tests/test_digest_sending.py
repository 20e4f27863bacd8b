"""Sending the digests: a real local SMTP server (aiosmtpd) and a local Resend-compatible API,
the ``sent_digests`` log (idempotent re-runs, forced re-sends, failures retried), dry runs,
the Monday schedule and the configuration from the environment."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg
import openpyxl
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.automation.digests import (
    build_digest_schedule,
    last_week,
    morning_cron,
    send_weekly_digests,
)
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.digest.resources import build_digest_resources
from jibble_pipeline.digest.site.paths import EXPORT_SUFFIXES, export_file
from jibble_pipeline.settings.catalog import SAMPLE_CLIENTS_FILE
from jibble_pipeline.settings.digests import load_digest_settings
from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline_tests.digest_fixture import (
    ACME,
    BETA,
    BOTH,
    WEEK,
    DigestPipeline,
    running_pipeline,
)
from jibble_pipeline_tests.fake_services import FakeResend, SmtpServer, decoded_attachments

SMTP_USER, SMTP_PASSWORD = "digests", "smtp-Pa55word-never-logged"
RESEND_KEY = "re_TESTKEY_never_logged_123"
SENDER = "Weekly hours <hours@staffing.example>"
EXPORT_NAMES = ["hours-2025-01-06.xlsx", "hours-2025-01-06.csv", "sessions-2025-01-06.csv"]
MONDAY_JOB = ["client_directory", "weekly_hours", "client_digests", "sent_digests", "report_site"]


@pytest.fixture(scope="module")
def pipeline(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sending")
    yield from running_pipeline(database_url, folder, ["client_directory", "client_digests"])


@pytest.fixture
def pipeline_clean_log(pipeline):
    pipeline.query("DELETE FROM sent_digests RETURNING 1")
    pipeline.query("DELETE FROM reported_hours RETURNING 1")
    pipeline.query("DELETE FROM reported_weeks RETURNING 1")
    return pipeline


def smtp_email(
    server: SmtpServer, dry_run: bool = False, attachments: bool = True
) -> EmailResource:
    return EmailResource(
        backend="smtp",
        dry_run=dry_run,
        attachments=attachments,
        from_address=SENDER,
        reply_to="support@staffing.example",
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="none",
        smtp_username=SMTP_USER,
        smtp_password=dg.EnvVar("TEST_SMTP_PASSWORD"),
        timeout_seconds=5,
        retry_delay_seconds=0,
    )


def log_rows(pipeline: DigestPipeline) -> dict[str, dict]:
    rows = pipeline.query(
        "SELECT client_email, status, attempts, send_count, backend, message_id, last_error,"
        " sent_at FROM sent_digests WHERE week_start = %s",
        (WEEK,),
    )
    names = ["status", "attempts", "send_count", "backend", "message_id", "last_error", "sent_at"]
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {asset}")


def assert_no_secret(instance: dg.DagsterInstance, run_id: str, *secrets: str) -> None:
    run = instance.get_run_by_id(run_id)
    text = str(run.run_config) + "".join(str(r) for r in instance.all_logs(run_id))
    for secret in secrets:
        assert secret not in text


def test_smtp_delivers_multipart_digests_once(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        email = {"email": smtp_email(server)}
        first = pipeline.run(MONDAY_JOB, resources=email)
        second = pipeline.run(["sent_digests"], resources=email)
        received = server.received()
        envelopes = list(server.messages)
        logins = list(server.logins)

    assert first.success and second.success
    assert len(received) == 3 and len(logins) == 1  # one connection for the batch
    by_recipient = {m["To"]: m for m in received}
    assert set(by_recipient) == {ACME, BETA, BOTH}
    assert {e["rcpt_tos"][0] for e in envelopes} == {ACME, BETA, BOTH}
    assert {e["mail_from"] for e in envelopes} == {"hours@staffing.example"}
    assert all(e["authenticated"] for e in envelopes)

    message = by_recipient[BETA]
    assert message["Subject"] == "Weekly hours for Beta Logistics: 6 Jan – 12 Jan 2025"
    assert message["From"] == SENDER
    assert message["Reply-To"] == "support@staffing.example"
    assert message["X-Jibble-Digest-Week"] == "2025-01-06"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@staffing.example>") and message["Date"]
    # The text/HTML alternative, then the week's exports as attachments.
    assert message.get_content_type() == "multipart/mixed"
    alternative, *attached = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [a.get_filename() for a in attached] == EXPORT_NAMES
    parts = {p.get_content_type(): p.get_content() for p in alternative.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Total hours worked: 9:15" in parts["text/plain"]
    assert "<!DOCTYPE html>" in parts["text/html"] and "9:15" in parts["text/html"]
    # The body names what is attached.
    named = f"the hours per agent, activity and day, and every session: {', '.join(EXPORT_NAMES)}"
    assert named in parts["text/plain"] and named in parts["text/html"]
    # A name carrying CR LF did not add a header.
    assert by_recipient[BOTH]["Bcc"] is None and "\n" not in by_recipient[BOTH]["Subject"]

    log = log_rows(pipeline)
    assert {e: r["status"] for e, r in log.items()} == {ACME: "sent", BETA: "sent", BOTH: "sent"}
    assert all(r["send_count"] == 1 and r["attempts"] == 1 for r in log.values())
    assert log[BETA]["message_id"] == message["Message-ID"] and log[BETA]["backend"] == "smtp"
    assert metadata(first, "sent_digests")["sent"] == 3
    again = metadata(second, "sent_digests")
    assert again["sent"] == 0 and again["already_sent"] == 3
    for result in (first, second):
        assert_no_secret(pipeline.instance, result.run_id, SMTP_PASSWORD)


def export_bytes(pipeline: DigestPipeline, email: str) -> dict[str, bytes]:
    """The week's export files of a client on disk, under their attachment names."""
    return {
        name: (pipeline.reports / export_file(WEEK, email, kind)).read_bytes()
        for name, kind in zip(EXPORT_NAMES, EXPORT_SUFFIXES, strict=True)
    }


def assert_exports_parse(files: dict[str, bytes], total: str) -> None:
    """The attached workbook and CSVs read back: the same hours in each, the digest's total."""
    workbook, hours_csv, sessions_csv = (files[name] for name in EXPORT_NAMES)
    hours = pd.read_csv(io.BytesIO(hours_csv), encoding="utf-8-sig")
    sheets = pd.read_excel(io.BytesIO(workbook), sheet_name=None)
    assert list(sheets) == ["Hours", "Sessions"]
    assert hours["Hours (h:mm)"].iloc[-1] == total == sheets["Hours"]["Hours (h:mm)"].iloc[-1]
    assert list(sheets["Hours"]["Hours (h:mm)"]) == list(hours["Hours (h:mm)"])
    sessions = pd.read_csv(io.BytesIO(sessions_csv), encoding="utf-8-sig")
    assert len(sessions) == len(sheets["Sessions"]) > 0
    assert openpyxl.load_workbook(io.BytesIO(workbook))["Hours"].freeze_panes == "A2"


def test_smtp_digests_carry_the_weeks_exports(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        result = pipeline.run(["sent_digests"], resources={"email": smtp_email(server)})
        received = {m["To"]: m for m in server.received()}
    assert result.success and set(received) == {ACME, BETA, BOTH}
    for email, total in ((ACME, "24:15"), (BETA, "9:15"), (BOTH, "33:30")):
        attached = {
            part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
            for part in received[email].iter_attachments()
        }
        assert [t for t, _ in attached.values()] == [
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "text/csv",
            "text/csv",
        ]
        files = {name: content for name, (_, content) in attached.items()}
        assert files == export_bytes(pipeline, email)  # byte for byte the files on disk
        for part in received[email].iter_attachments():
            if part.get_content_type() == "text/csv":  # declared UTF-8: decodes as written
                assert part.get_content_charset() == "utf-8"
                assert part.get_content().startswith("\ufeffAgent,")
        assert_exports_parse(files, total)
    values = metadata(result, "sent_digests")
    assert values["attachments"].startswith("on") and values["attachments_missing"] == 0


def test_with_attachments_off_the_digest_goes_alone(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        email = {"email": smtp_email(server, attachments=False)}
        result = pipeline.run(["client_digests", "sent_digests"], resources=email)
        received = server.received()
    pipeline.run(["client_digests"])  # the module's other tests read digests with attachments
    assert result.success and len(received) == 3
    for message in received:
        assert message.get_content_type() == "multipart/alternative"
        assert list(message.iter_attachments()) == []
        assert "Attached" not in message.get_body(("plain",)).get_content()
    assert metadata(result, "sent_digests")["attachments"] == "off"
    assert not load_digest_settings({"JIBBLE_DIGEST_ATTACHMENTS": "false"}).attachments
    assert load_digest_settings({}).attachments
    with pytest.raises(ConfigurationError, match="JIBBLE_DIGEST_ATTACHMENTS"):
        load_digest_settings({"JIBBLE_DIGEST_ATTACHMENTS": "sometimes"})


def test_missing_export_files_do_not_hold_the_digest_back(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    gone = [pipeline.reports / export_file(WEEK, BETA, kind) for kind in EXPORT_SUFFIXES]
    kept = pipeline.reports / "kept"
    kept.mkdir(exist_ok=True)
    for path in gone:
        shutil.move(path, kept / path.name)
    try:
        with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
            result = pipeline.run(["sent_digests"], resources={"email": smtp_email(server)})
            received = {m["To"]: m for m in server.received()}
    finally:
        for path in gone:
            shutil.move(kept / path.name, path)
    assert result.success and set(received) == {ACME, BETA, BOTH}
    assert list(received[BETA].iter_attachments()) == []
    assert received[BETA].get_body(("plain",)).get_content().startswith("Weekly hours")
    assert len(list(received[ACME].iter_attachments())) == 3
    assert log_rows(pipeline)[BETA]["status"] == "sent"
    values = metadata(result, "sent_digests")
    assert values["attachments_missing"] == 3
    missing = values["missing_attachments"].records
    assert {r.data["to"] for r in missing} == {BETA}
    assert {r.data["file"] for r in missing} == {str(p) for p in gone}
    warnings = [
        e.user_message
        for e in pipeline.instance.all_logs(result.run_id)
        if e.level >= 30 and "missing and not attached" in e.user_message
    ]
    assert len(warnings) == 1 and str(gone[0]) in warnings[0]


def test_a_forced_resend_reaches_only_the_chosen_client(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    force = {"ops": {"sent_digests": {"config": {"force": True, "clients": ["OPS@beta.example"]}}}}
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        email = {"email": smtp_email(server)}
        assert pipeline.run(["sent_digests"], resources=email).success
        assert pipeline.run(["sent_digests"], resources=email, run_config=force).success
        recipients = [m["To"] for m in server.received()]
    assert sorted(recipients) == sorted([ACME, BETA, BOTH, BETA])
    log = log_rows(pipeline)
    assert log[BETA]["send_count"] == 2 and log[ACME]["send_count"] == 1


def test_smtp_failures_are_recorded_and_retried(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        server.refuse = {BETA}
        email = {"email": smtp_email(server)}
        failed = pipeline.run(["sent_digests"], resources=email, raise_on_error=False)
        assert not failed.success
        log = log_rows(pipeline)
        assert log[BETA]["status"] == "failed" and log[BETA]["send_count"] == 0
        assert "550" in log[BETA]["last_error"] and SMTP_PASSWORD not in log[BETA]["last_error"]
        assert log[ACME]["status"] == log[BOTH]["status"] == "sent"

        server.refuse = set()
        retried = pipeline.run(["sent_digests"], resources=email)
        recipients = [m["To"] for m in server.received()]
    assert retried.success
    assert sorted(recipients) == sorted([ACME, BOTH, BETA])  # Beta once, nobody twice
    log = log_rows(pipeline)
    assert log[BETA]["status"] == "sent" and log[BETA]["last_error"] is None
    assert log[BETA]["attempts"] == 2 and log[BETA]["sent_at"] is not None
    assert metadata(retried, "sent_digests")["already_sent"] == 2


def test_a_wrong_smtp_password_fails_every_client_without_showing_it(
    pipeline_clean_log, monkeypatch
):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-" + SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        result = pipeline.run(
            ["sent_digests"], resources={"email": smtp_email(server)}, raise_on_error=False
        )
        assert not server.received()
    assert not result.success
    log = log_rows(pipeline)
    assert {r["status"] for r in log.values()} == {"failed"}
    for row in log.values():
        assert "SMTP_PASSWORD" in row["last_error"] and SMTP_PASSWORD not in row["last_error"]
    # Refused credentials stop the batch: one login attempt, not one per client.
    assert sorted(r["attempts"] for r in log.values()) == [0, 0, 1]
    assert_no_secret(pipeline.instance, result.run_id, SMTP_PASSWORD)


def test_resend_sends_with_an_idempotency_key_and_retries_failures(pipeline_clean_log):
    pipeline = pipeline_clean_log
    with FakeResend(RESEND_KEY) as resend:
        email = {
            "email": EmailResource(
                backend="resend",
                dry_run=False,
                from_address=SENDER,
                resend_api_key=RESEND_KEY,
                resend_api_url=resend.url,
                retry_delay_seconds=0,
            )
        }
        resend.fail_for = {ACME: 500}
        failed = pipeline.run(["sent_digests"], resources=email, raise_on_error=False)
        assert not failed.success
        log = log_rows(pipeline)
        assert log[ACME]["status"] == "failed" and log[ACME]["attempts"] == 1
        assert "server error 500" in log[ACME]["last_error"]
        acme_requests = [r for r in resend.requests if json.loads(r["body"])["to"] == [ACME]]
        assert len(acme_requests) == 3  # the HTTP layer retried it, with the same key
        assert sorted(e["to"][0] for e in resend.emails) == sorted([BETA, BOTH])

        resend.fail_for = {}
        assert pipeline.run(["sent_digests"], resources=email).success
        assert pipeline.run(["sent_digests"], resources=email).success  # nothing left
        emails = list(resend.emails)
        requests = list(resend.requests)

    assert sorted(e["to"][0] for e in emails) == sorted([ACME, BETA, BOTH])
    acme = next(e for e in emails if e["to"] == [ACME])
    # The exports in Resend's attachments field: base64 content, the client's file names.
    assert [a["content_type"] for a in acme["attachments"]][1:] == ["text/csv", "text/csv"]
    assert decoded_attachments(acme) == export_bytes(pipeline, ACME)
    assert_exports_parse(decoded_attachments(acme), "24:15")
    assert acme["from"] == SENDER and acme["subject"].startswith("Weekly hours for Acme")
    assert "24:15" in acme["text"] and "24:15" in acme["html"]
    assert acme["headers"]["X-Jibble-Digest-Week"] == "2025-01-06"
    # Every attempt for one digest carried the same key: Resend sends it at most once.
    acme_keys = {
        r["headers"]["Idempotency-Key"] for r in requests if json.loads(r["body"])["to"] == [ACME]
    }
    assert len(acme_keys) == 1 and acme["idempotency_key"] in acme_keys
    assert all(r["headers"]["Authorization"] == f"Bearer {RESEND_KEY}" for r in requests)
    log = log_rows(pipeline)
    assert {r["status"] for r in log.values()} == {"sent"}
    assert log[ACME]["message_id"] == acme["id"] and log[ACME]["attempts"] == 2
    assert_no_secret(pipeline.instance, failed.run_id, RESEND_KEY)


def test_dry_runs_render_but_send_nothing(pipeline_clean_log, monkeypatch):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        configured = {"email": smtp_email(server, dry_run=True)}
        by_setting = pipeline.run(MONDAY_JOB, resources=configured)
        by_run = pipeline.run(
            ["sent_digests"],
            resources={"email": smtp_email(server)},
            run_config={"ops": {"sent_digests": {"config": {"dry_run": True}}}},
        )
        no_backend = pipeline.run(["sent_digests"])  # the default: no backend configured
        assert server.received() == []
    assert log_rows(pipeline) == {}
    for result in (by_setting, by_run, no_backend):
        values = metadata(result, "sent_digests")
        assert values["dry_run"] is True and values["sent"] == 0 and values["would_send"] == 3
    assert "JIBBLE_EMAIL_BACKEND" in metadata(no_backend, "sent_digests")["dry_run_reason"]
    # The dry run still rendered the week: digests stored and the site regenerated.
    assert pipeline.query("SELECT count(*) FROM client_digests") == [(3,)]
    assert (pipeline.reports / "index.html").exists()


def test_monday_schedule_requests_last_week_in_its_time_zone():
    settings = load_digest_settings(
        {"JIBBLE_DIGEST_TIMEZONE": "Asia/Manila", "JIBBLE_DIGEST_SEND_AT": "07:00"}
    )
    schedule = build_digest_schedule(settings)
    assert schedule.cron_schedule == "0 7-10 * * 1"
    assert schedule.execution_timezone == "Asia/Manila"
    assert schedule.job_name == send_weekly_digests.name
    # Monday 07:00 in Manila is still Sunday in UTC: last week is the one of 6 Jan all the same.
    tick = datetime(2025, 1, 13, 7, 0, tzinfo=ZoneInfo("Asia/Manila"))
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        request = schedule(context)
    assert request.partition_key == "2025-01-06"
    assert last_week(datetime(2025, 1, 12, 23, 0, tzinfo=UTC), "UTC") == date(2024, 12, 30)
    assert morning_cron(time(23, 15), "1") == "15 23 * * 1"


def test_configuration_from_the_environment():
    default = load_digest_settings({})
    assert default.source == "file" and default.clients_file == SAMPLE_CLIENTS_FILE
    assert default.email_backend == "none" and default.dry_run
    assert default.timezone == "UTC" and default.send_at == time(7, 0)

    env = {
        "AIRTABLE_API_KEY": "patX.secret",
        "AIRTABLE_BASE_ID": "appBASE",
        "JIBBLE_EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PASSWORD": "hunter2-secret",
        "JIBBLE_DIGEST_FROM": SENDER,
    }
    settings = load_digest_settings(env)
    assert settings.source == "airtable" and settings.email_backend == "smtp"
    assert not settings.dry_run and settings.smtp_port == 587
    resources = build_digest_resources(settings)
    # Secrets stay environment references: the resource never holds their values.
    assert resources["clients"].airtable_api_key == dg.EnvVar("AIRTABLE_API_KEY")
    assert resources["email"].smtp_password == dg.EnvVar("SMTP_PASSWORD")
    assert "hunter2" not in repr(resources) and "patX" not in repr(resources)

    for broken, variable in (
        ({"JIBBLE_EMAIL_BACKEND": "smtp", "JIBBLE_DIGEST_FROM": SENDER}, "SMTP_HOST"),
        ({"JIBBLE_EMAIL_BACKEND": "resend", "JIBBLE_DIGEST_FROM": SENDER}, "RESEND_API_KEY"),
        ({"JIBBLE_EMAIL_BACKEND": "smtp", "SMTP_HOST": "h"}, "JIBBLE_DIGEST_FROM"),
        ({"JIBBLE_DIGEST_SOURCE": "airtable"}, "AIRTABLE_API_KEY"),
        ({"JIBBLE_DIGEST_TIMEZONE": "Mars/Olympus"}, "JIBBLE_DIGEST_TIMEZONE"),
        ({"JIBBLE_EMAIL_BACKEND": "pigeon"}, "JIBBLE_EMAIL_BACKEND"),
    ):
        with pytest.raises(ConfigurationError, match=variable):
            load_digest_settings(broken)
    production = load_digest_settings({"JIBBLE_CLIENT_ID": "id", "JIBBLE_CLIENT_SECRET": "s"})
    assert production.clients_file is None  # the demo's sample never mails real clients


def test_a_digest_whose_run_died_after_sending_is_not_sent_again_by_itself(
    pipeline_clean_log, monkeypatch
):
    pipeline = pipeline_clean_log
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pipeline.schema)))
        conn.execute(
            "CREATE OR REPLACE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'the process died'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER crash BEFORE UPDATE ON sent_digests FOR EACH ROW"
            " WHEN (NEW.status = 'sent') EXECUTE FUNCTION crash()"
        )
        with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
            email = {"email": smtp_email(server)}
            died = pipeline.run(["sent_digests"], resources=email, raise_on_error=False)
            conn.execute("DROP TRIGGER crash ON sent_digests")
            conn.execute("UPDATE sent_digests SET claimed_at = claimed_at - interval '2 hours'")
            later = pipeline.run(["sent_digests"], resources=email)
            received = len(server.received())
    assert not died.success and later.success
    assert received == 3  # each client once, though no run recorded it sent
    assert {r["status"] for r in log_rows(pipeline).values()} == {"attempting"}
    assert metadata(later, "sent_digests")["delivery_unknown"] == 3
    warnings = [e.user_message for e in pipeline.instance.all_logs(later.run_id) if e.level >= 30]
    assert any("3 message(s) of unknown delivery" in w and "force" in w for w in warnings)
    # Nothing of a digest that may not have gone is in the ledger.
    assert pipeline.query("SELECT count(*) FROM reported_weeks") == [(0,)]
