"""The probes of ``jibble-pipeline doctor``: small requests, in order, each adding what the
tenant answered and what the pipeline will do about it to the diagnosis."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.doctor import estimates
from jibble_pipeline.jibble.doctor.findings import Diagnosis, Plan
from jibble_pipeline.jibble.errors import JibbleAuthError, JibbleError
from jibble_pipeline.jibble.odata import at_or_after, between_dates
from jibble_pipeline.jibble.paths import (
    ACTIVITIES_PATH,
    GROUPS_PATH,
    ORGANIZATIONS_PATH,
    PEOPLE_PATH,
    TIME_ENTRIES_PATH,
)
from jibble_pipeline.jibble.probing import Probe
from jibble_pipeline.jibble.reports import ReportUnavailable, logged_seconds
from jibble_pipeline.jibble.tenant import (
    ENTRY_ORDERS,
    REPORT_DURATIONS,
    REPORT_SHAPE,
    WORKSPACE_ORDERS,
)
from jibble_pipeline.jibble.time_zones import find_zone
from jibble_pipeline.transport.rate_limits import Quota

SAMPLE_ROWS = 20  # rows asked for by the probes whose page is kept as a sample
SWEEP_DAYS = 31  # as automation.late_edits: dates read again without updatedAt filters
WORKSPACE = ((PEOPLE_PATH, "People"), (GROUPS_PATH, "Groups"), (ACTIVITIES_PATH, "Activities"))


class Doctor:
    """Runs the probes in order; a blocking finding about the basics stops the rest."""

    def __init__(self, client: JibbleClient, plan: Plan, today: date | None = None):
        self.client = client
        self.plan = plan
        self.today = today or datetime.now(UTC).date()
        self.result = Diagnosis()
        self._probes: list[Probe] = []
        self._cap: int | None = None
        self._per_date: dict[date, int] = {}
        self._organisation: dict[str, Any] | None = None
        self._order = ""
        self._quota: Quota | None = None

    def run(self) -> Diagnosis:
        started = datetime.now(UTC)
        steps: list[Callable[[], bool]] = [
            self._credentials,
            self._organisations,
            self._workspace,
            self._entry_order,
            self._entries_per_date,
            self._paging,
            self._updated_at,
            self._report,
            self._hour_entries,
            self._rate_limit,
            self._backfill,
        ]
        for step in steps:
            try:
                if not step():
                    break
            except JibbleAuthError as error:
                self.result.add("credentials", str(error), "nothing can run", blocking=True)
                break
            except JibbleError as error:
                self.result.add(step.__name__.strip("_"), str(error), "stops a run", True)
                break
        self.result.requests = self.client.stats.requests
        self.result.seconds = (datetime.now(UTC) - started).total_seconds()
        return self.result

    # ----------------------------------------------------------------------- probes

    def _get(self, host: str, path: str, params: dict[str, str] | None = None) -> Probe:
        probe = self.client.probe(host, path, params)
        self._probes.append(probe)
        return probe

    def _keep(self, name: str, probe: Probe) -> None:
        if name not in self.result.samples and probe.status < 400:
            self.result.samples[name] = probe.body

    def _credentials(self) -> bool:
        answer = self.client.token_answer()
        self.result.samples["token"] = answer
        organisation = answer.get("organizationId") or "none named"
        lifetime = answer.get("expires_in", "?")
        self.result.add(
            "credentials",
            f"token issued, valid {lifetime} s, organisation {organisation}",
            "refreshes the token before it expires and once on a 401",
        )
        return True

    def _organisations(self) -> bool:
        probe = self._get("workspace", ORGANIZATIONS_PATH, {"$top": str(SAMPLE_ROWS)})
        self._keep("Organizations", probe)
        if probe.status >= 400:
            self.result.add("organisations", f"{probe.status}: {probe.message}", "not needed")
            return True
        names = [f"{o.get('name') or '?'} ({o.get('id')})" for o in probe.rows]
        token = self.client.token_organization
        configured = self.plan.organization_id
        ids = {o.get("id") for o in probe.rows}
        if configured and ids and configured not in ids:
            self.result.add(
                "organisations",
                f"{len(names)} visible: {', '.join(names)}",
                f"JIBBLE_ORGANIZATION_ID={configured} is not among them: set it to one of them",
                blocking=True,
            )
            return False
        if len(names) > 1 and not (configured or token):
            self.result.add(
                "organisations",
                f"{len(names)} visible: {', '.join(names)}; the token names none",
                "set JIBBLE_ORGANIZATION_ID to the one to read",
                blocking=True,
            )
            return False
        chosen = configured or token or (probe.rows[0].get("id") if probe.rows else "?")
        how = "JIBBLE_ORGANIZATION_ID" if configured else "the token's"
        others = " (rows of the others are left out everywhere)" if len(names) > 1 else ""
        self.result.add(
            "organisations",
            f"{len(names)} visible: {', '.join(names)}",
            f"reads {chosen} ({how}){others}",
        )
        self._organisation = next((o for o in probe.rows if o.get("id") == chosen), None)
        return True

    def _workspace(self) -> bool:
        sort = None
        for path, name in WORKSPACE:
            params = {"$top": str(SAMPLE_ROWS), "$count": "true"}
            probe = None
            refused = []
            for order in WORKSPACE_ORDERS if sort is None else (sort,):
                ordered = {"$orderby": order} if order else {}
                probe = self._get("workspace", path, {**params, **ordered})
                if probe.status != 400:
                    sort = order
                    break
                refused.append(f"$orderby={order}: {probe.message}")
            assert probe is not None
            self._keep(name, probe)
            if probe.status >= 400:
                self.result.add(name, f"{probe.status}: {probe.message}", "cannot sync", True)
                return False
            count = probe.body.get("@odata.count") if isinstance(probe.body, dict) else None
            shown = f"{count} rows" if isinstance(count, int) else f"{len(probe.rows)}+ rows"
            others = sum(1 for row in probe.rows if self._elsewhere(row))
            if others:
                shown += f" ({others} of the first {len(probe.rows)} of other organisations)"
            if refused:
                shown += f"; {'; '.join(refused)}"
            order_text = f"sorted by {sort}" if sort else "in the server's own order"
            self.result.add(name, shown, f"reads them {order_text}")
            if name == "People":
                self._time_zones(probe.rows)
        return True

    def _elsewhere(self, row: Any) -> bool:
        """A row of another organisation than the one read."""
        ours = self.plan.organization_id or self.client.token_organization
        theirs = row.get("organizationId") if isinstance(row, dict) else None
        return ours is not None and theirs is not None and theirs != ours

    def _time_zones(self, people: list) -> None:
        ours = [p for p in people if isinstance(p, dict) and not self._elsewhere(p)]
        found = [find_zone(p, self._organisation) for p in ours]
        sources = Counter(f.source or "nowhere" for f in found)
        unknown = sorted({f.unrecognised for f in found if f.unrecognised})
        answered = ", ".join(f"{n} from {s}" for s, n in sources.most_common()) or "no people"
        if unknown:
            answered += f"; not a zone known here: {', '.join(unknown[:5])}"
        missing = sources.get("nowhere", 0)
        will_do = "keeps each agent's zone (agents.time_zone, time_zone_source)"
        if missing:
            will_do += f"; {missing} of {len(found)} sampled have none"
        sampled = f"of {len(found)} people of the organisation sampled: {answered}"
        self.result.add("time zones", sampled, will_do)

    def _entry_order(self) -> bool:
        day = self.today - timedelta(days=1)
        refused = []
        for order in ENTRY_ORDERS:
            params = {"$filter": _on(day), "$top": "1"}
            if order:
                params["$orderby"] = order
            probe = self._get("time_tracking", TIME_ENTRIES_PATH, params)
            if probe.status == 400:
                refused.append(f"{order or '(none)'}: {probe.message}")
                continue
            if probe.status >= 400:
                answer = f"{probe.status}: {probe.message}"
                self.result.add("TimeEntries", answer, "cannot read", blocking=True)
                return False
            answered = "; ".join([*refused, f"{order or '(none)'} accepted"])
            will_do = (
                f"reads each work date sorted by {order}"
                if order
                else "reads in the server's own order; the paging's overlap check guards it"
            )
            self.result.add("TimeEntries sort order", answered, will_do)
            self._order = order
            return True
        self.result.add(
            "TimeEntries sort order",
            "; ".join(refused),
            "cannot page time entries: report this table",
            blocking=True,
        )
        return False

    def _entries_per_date(self) -> bool:
        for back in range(1, 8):
            day = self.today - timedelta(days=back)
            probe = self._get(
                "time_tracking",
                TIME_ENTRIES_PATH,
                {"$filter": _on(day), "$top": "1", "$count": "true", **self._order_param()},
            )
            count = probe.body.get("@odata.count") if isinstance(probe.body, dict) else None
            if isinstance(count, int):
                self._per_date[day] = count
        if not self._per_date:
            self.result.add("entries per work date", "no @odata.count", "counts as it reads")
            return True
        counts = list(self._per_date.values())
        self.result.add(
            "entries per work date",
            f"last 7 days: mean {statistics.mean(counts):.0f}, max {max(counts)}",
            "reads one work date per query, several at once",
        )
        return True

    def _paging(self) -> bool:
        busiest = max(self._per_date, key=lambda d: self._per_date[d], default=self.today)
        params = {"$filter": _on(busiest), "$top": "1000", "$count": "true", **self._order_param()}
        probe = self._get("time_tracking", TIME_ENTRIES_PATH, params)
        self._keep("TimeEntries", self._trimmed(probe))
        rows = probe.rows
        body = probe.body if isinstance(probe.body, dict) else {}
        count = body.get("@odata.count")
        link = body.get("@odata.nextLink")
        if isinstance(count, int) and count > len(rows):
            self._cap = len(rows)
            cap_text = f"pages of at most {len(rows)} rows although $top=1000 was asked"
        else:
            cap_text = f"all {len(rows)} rows of {busiest} in one page (cap not reached)"
        self.result.add(
            "page cap",
            cap_text,
            "asks $top=1000 and pages by the rows received, never by $top",
        )
        self.result.add(
            "nextLink",
            "sent" if link else "never sent",
            "follows it when sent; pages with $skip otherwise",
        )
        self.result.add(
            "$count",
            "honoured" if isinstance(count, int) else "not honoured",
            "reads windows in parallel up to the count"
            if isinstance(count, int)
            else "reads page after page until a page brings nothing new",
        )
        if len(rows) >= 3:
            skipped = self._get(
                "time_tracking",
                TIME_ENTRIES_PATH,
                {"$filter": _on(busiest), "$top": "2", "$skip": "1", **self._order_param()},
            )
            same = [r.get("id") for r in skipped.rows] == [r.get("id") for r in rows[1:3]]
            if not same:
                self.result.add(
                    "$skip",
                    "not honoured: $skip=1 did not return rows 2 and 3",
                    "cannot read more than one page: report this table",
                    blocking=True,
                )
                return False
            self.result.add("$skip", "honoured", "pages with it")
        return True

    def _updated_at(self) -> bool:
        since = datetime.now(UTC) - timedelta(days=1)
        params = {"$filter": at_or_after("updatedAt", since), "$top": "1", **self._order_param()}
        probe = self._get("time_tracking", TIME_ENTRIES_PATH, params)
        if probe.status == 400:
            pages = estimates.pages_per_date(self._mean_per_date(), self._cap)
            self.result.add(
                "$filter on updatedAt",
                f"refused (400: {probe.message})",
                f"late edits by reading the last {SWEEP_DAYS} days again: about "
                f"{round(pages * (SWEEP_DAYS - 2))} requests per pass, at most 60 a minute; "
                "resumed backfills keep the dates they landed",
            )
        elif probe.status >= 400:
            self.result.add("$filter on updatedAt", f"{probe.status}: {probe.message}", "?")
        else:
            self.result.add(
                "$filter on updatedAt",
                "accepted",
                "late edits from an updatedAt watermark every 5 minutes",
            )
        return True

    def _report(self) -> bool:
        monday = self.today - timedelta(days=self.today.weekday() + 7)
        report = self.client.tracked_time_by_member(monday, monday + timedelta(days=6))
        if isinstance(report, ReportUnavailable):
            self.result.add("TrackedTimeReport", report.reason, "hours_match_jibble is skipped")
            return True
        profile = self.client.profile
        shape = profile.get(REPORT_SHAPE)
        durations = profile.get(REPORT_DURATIONS) or "no rows to tell"
        evidence = next(
            (item.evidence for item in profile.learned() if item.capability == REPORT_SHAPE), ""
        )
        self.result.add(
            "TrackedTimeReport",
            f"{len(report)} members for the week of {monday}, asked as {shape}, durations as "
            f"{durations}" + (f" ({evidence})" if evidence and evidence != "accepted" else ""),
            "hours_match_jibble compares each agent's week with it",
        )
        return True

    def _hour_entries(self) -> bool:
        first = self.today - timedelta(days=14)
        entries = self.client.hour_entries(first, self.today)
        if entries is None:
            self.result.add("HourEntries", "none (the path does not exist here)", "nothing to do")
            return True
        self.result.samples["HourEntries"] = {"value": entries[:SAMPLE_ROWS]}
        seconds = sum(s for _, _, s in logged_seconds(entries))
        will_do = "nothing to do"
        if entries:
            will_do = "weekly hours leave them out: the check hour_entries_not_counted warns"
        self.result.add(
            "HourEntries",
            f"{len(entries)} entries holding {seconds / 3600:.1f} h over {first}..{self.today}",
            will_do,
        )
        return True

    def _rate_limit(self) -> bool:
        configured = self.plan.max_requests_per_second
        finding, self._quota = estimates.pace(self._probes, self.client.stated_quota, configured)
        self.result.findings.append(finding)
        return True

    def _backfill(self) -> bool:
        latencies = [p.seconds for p in self._probes]
        per_date = self._mean_per_date()
        finding = estimates.backfill(self.plan, latencies, per_date, self._cap, self._quota)
        self.result.findings.append(finding)
        return True

    # ---------------------------------------------------------------------- helpers

    def _mean_per_date(self) -> float:
        """Entries of a work date, as the last days' counts say (0: no counts)."""
        return statistics.mean(self._per_date.values()) if self._per_date else 0.0

    def _order_param(self) -> dict[str, str]:
        return {"$orderby": self._order} if self._order else {}

    def _trimmed(self, probe: Probe) -> Probe:
        """The probe with its page cut to the sample's size (a page of 1000 is a lot)."""
        if not isinstance(probe.body, dict):
            return probe
        body = {**probe.body, "value": probe.rows[:SAMPLE_ROWS]}
        return Probe(probe.status, body, probe.headers, probe.seconds)


def _on(day: date) -> str:
    return between_dates("belongsToDate", day, day)
