"""The demo's correction, end to end: a timesheet corrected at the simulator after last
week's digests went out, picked up by the pipeline as in production (the late-edits sensor,
the re-fetch of the dates it names, the week's hours), and the correction its client would
get, rendered in a dry run (the demo has no email backend).

Each demo run reads its own simulator (``simulator/demo.py``), so the edit is made to one
kept open here, and the runs that must see it read that one.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from jibble_pipeline.digest.ledger import Ledger
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.partitions import range_tags
from jibble_pipeline.resources import pipeline_resources
from jibble_pipeline.simulator.demo import demo_simulator
from jibble_pipeline.simulator.organisation import SyntheticOrganisation

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
LATER = timedelta(minutes=45)


def clock_out_to_move(organisation: SyntheticOrganisation, week: date) -> dict[str, Any]:
    """A plain clock-out of last week by an agent who shares a name, else by anybody: the
    first on the week's earliest day that has one."""
    names: dict[str, int] = {}
    for person in organisation.people:
        names[person["fullName"]] = names.get(person["fullName"], 0) + 1
    shared = {p["id"] for p in organisation.people if names[p["fullName"]] > 1}
    outs = [
        e
        for e in organisation.time_entries_for_dates(week, week + timedelta(days=4))
        if e["type"] == "Out" and e.get("clientType") != "AutoOut" and e["status"] == "Active"
    ]
    outs.sort(key=lambda e: (e["personId"] not in shared, e["belongsToDate"], e["time"]))
    return outs[0]


def show_a_correction(week: date) -> None:
    """Edits a clock-out of ``week`` at the simulator, lets the pipeline pick it up and
    renders the correction of the week in a dry run; prints where it is."""
    from jibble_pipeline.definitions import defs
    from jibble_pipeline.digest.site.paths import client_page, correction_file
    from jibble_pipeline.settings.digests import load_digest_settings
    from jibble_pipeline.settings.pipeline import load_settings

    settings, digests = load_settings(), load_digest_settings()
    instance = dg.DagsterInstance.get()
    embedded = None if settings.database_url else str(settings.embedded_data_dir)
    with demo_simulator(settings.partitions_start) as simulator:
        url = simulator.url
        jibble = JibbleResource(
            client_id=simulator.client_id,
            client_secret=simulator.client_secret,
            identity_url=url,
            workspace_url=url,
            time_tracking_url=url,
            time_attendance_url=url,
        )
        resources = pipeline_resources(jibble, settings.database_url, settings.db_schema, embedded)
        sensor = defs.resolve_sensor_def("late_edits_sensor")

        def evaluate(cursor: str | None):
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=resources
            ) as context:
                result = sensor(context)
                return result, context.cursor

        _, cursor = evaluate(None)  # the sensor starts watching now
        entry = clock_out_to_move(simulator.organisation, week)
        moved = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")) + LATER
        simulator.organisation.edit_entry(entry["id"], time=moved.isoformat())
        person = next(p for p in simulator.organisation.people if p["id"] == entry["personId"])
        print(
            f"Late edit at the simulator: {person['fullName']} ({person['code']}) clocked out "
            f"45 minutes later on {entry['belongsToDate']} than reported.",
            flush=True,
        )
        time.sleep(1)  # the sensor reads changes up to the second before it asks
        found, _ = evaluate(cursor)
        requests = found.run_requests if isinstance(found, dg.SensorResult) else []
        refetch = defs.resolve_job_def("refetch_work_dates")
        for request in requests or []:
            refetch.execute_in_process(
                instance=instance, tags=request.tags, resources={"jibble": jibble}, run_config=QUIET
            )
        print(f"The late-edits sensor saw it: {len(requests or [])} run(s) re-derived the date.")
    weekly = defs.resolve_job_def("derive_weekly_hours")
    weekly.execute_in_process(instance=instance, tags=range_tags(week, week), run_config=QUIET)
    # Decide as if the week had stayed quiet for the quiet period since the edit.
    now = datetime.now(UTC) + timedelta(hours=digests.correction_quiet_hours, minutes=1)
    config = {"ops": {"sent_corrections": {"config": {"now": now.isoformat()}}}}
    result = defs.resolve_job_def("send_corrections").execute_in_process(
        instance=instance, partition_key=week.isoformat(), run_config={**QUIET, **config}
    )
    history = Ledger(resources["warehouse"].open()).history([week])
    made = history[(history["run_id"] == result.run_id) & (history["kind"] != "digest")]
    if made.empty:
        print("No correction: the edit did not move the week's hours beyond the tolerance.")
    for email, version in zip(made["client_email"], made["version"], strict=True):
        path = digests.reports_dir / correction_file(week, email, int(version) - 1)
        page = digests.reports_dir / client_page(week, email)
        print(
            f"Correction {int(version) - 1} for {email} (week of {week}; a dry run, nothing "
            f"sent): {path}\n  the client's page, marked corrected: {page}",
            flush=True,
        )
