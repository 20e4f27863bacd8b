"""A simulator in its own process, the remote-API conditions it is given, and the raw-entry
command of docs/operations.md run against it as a user runs it."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks._support import PROJECT, Stopwatch, WorkDates, add_database_arguments
from jibble_pipeline.jibble.odata import between_dates

ENTRY_ORDER = "createdAt asc,id asc"  # the pipeline's $orderby (jibble.client.ENTRY_ORDER)
ORGANISATION_START = date(2025, 1, 1)  # the simulated organisation's first work date


@dataclass(frozen=True)
class Simulator:
    """A simulator running in its own process (``python -m jibble_pipeline.simulator``)."""

    url: str
    client_id: str
    client_secret: str
    pid: int

    def environment(self) -> dict[str, str]:
        """Pipeline settings (docs/rules.md, Configuration) that point it at this simulator."""
        return {
            "JIBBLE_CLIENT_ID": self.client_id,
            "JIBBLE_CLIENT_SECRET": self.client_secret,
            "JIBBLE_IDENTITY_URL": self.url,
            "JIBBLE_WORKSPACE_URL": self.url,
            "JIBBLE_TIME_TRACKING_URL": self.url,
            "JIBBLE_TIME_ATTENDANCE_URL": self.url,
        }

    def token(self) -> str:
        answer = httpx.post(
            f"{self.url}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def stats(self) -> dict[str, int]:
        """What the simulator answered since it started (or since its faults were set)."""
        answer = httpx.get(
            f"{self.url}/_simulator/stats", headers={"X-Simulator-Control": self.client_secret}
        )
        answer.raise_for_status()
        return answer.json()

    def set_faults(self, **plan: Any) -> None:
        """A new fault plan (``FaultPlan`` fields) from now on; the stats start again."""
        answer = httpx.post(
            f"{self.url}/_simulator/faults",
            json=plan,
            headers={"X-Simulator-Control": self.client_secret},
        )
        answer.raise_for_status()

    def count_entries(self, first: date, last: date, timeout: float = 1800) -> int:
        """The simulator's own count of the entries of work dates [first, last] (ground
        truth). It also makes it generate those dates and cache the sorted result of the
        pipeline's query of each date, so what is timed afterwards is serving, not
        generating (as a real Jibble would)."""
        token = self.token()
        total = self._count(between_dates("belongsToDate", first, last), token, timeout)
        day = first
        while day <= last:
            self._count(between_dates("belongsToDate", day, day), token, timeout)
            day += timedelta(days=1)
        return total

    def _count(self, condition: str, token: str, timeout: float) -> int:
        params = {"$filter": condition, "$orderby": ENTRY_ORDER, "$count": "true", "$top": "1"}
        answer = httpx.get(
            f"{self.url}/v1/TimeEntries",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        answer.raise_for_status()
        return int(answer.json()["@odata.count"])


@contextmanager
def simulator_process(
    *,
    agents: int,
    start: date,
    now: datetime | None,
    page_cap: int,
    seed: int = 7,
    options: list[str] | None = None,
) -> Iterator[Simulator]:
    """Starts the simulator CLI on a free port and stops it (Ctrl-C) at the end. ``options``:
    further CLI options (``--latency-ms 100``, ``--rate-limit 20``, ...)."""
    client_id, client_secret = "benchmark", secrets.token_urlsafe(24)
    command = [
        sys.executable,
        "-m",
        "jibble_pipeline.simulator",
        "--port", "0",
        "--agents", str(agents),
        "--page-cap", str(page_cap),
        "--seed", str(seed),
        "--start", start.isoformat(),
        f"--client-id={client_id}",
        f"--client-secret={client_secret}",  # a secret may start with "-"
    ]  # fmt: skip
    if now is not None:
        command += ["--now", now.isoformat()]
    command += options or []
    process = subprocess.Popen(
        command, cwd=PROJECT, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        url = None
        assert process.stdout is not None
        for line in process.stdout:
            match = re.match(r"\s*URL\s+(http://\S+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError(f"the simulator exited ({process.wait()}) without serving")
        yield Simulator(url, client_id, client_secret, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def weeks_parser(
    doc: str, *, agents: int, latency_ms: float | None = None, rounds: int | None = None
) -> argparse.ArgumentParser:
    """The options of a benchmark over whole weeks against a simulator: ``--agents``,
    ``--weeks`` (12), ``--page-cap`` (100), ``--database-url``, and ``--latency-ms`` and
    ``--rounds`` where given a default. The description: ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--agents", type=int, default=agents)
    parser.add_argument("--weeks", type=int, default=12)
    if latency_ms is not None:
        parser.add_argument("--latency-ms", type=float, default=latency_ms)
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--page-cap", type=int, default=100, help="the simulator's page cap")
    add_database_arguments(parser)
    return parser


def days_parser(doc: str, *, days: int) -> argparse.ArgumentParser:
    """The options of a benchmark over ``--days`` work dates from ``--start`` against a
    simulator of ``--agents`` (400) with pages of at most ``--page-cap`` (100) rows; the
    database's options are the script's to add."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--start", type=date.fromisoformat, default=ORGANISATION_START)
    parser.add_argument("--page-cap", type=int, default=100, help="the simulator's page cap")
    return parser


def weeks_simulator(
    args: argparse.Namespace, dates: WorkDates, options: list[str] | None = None
) -> AbstractContextManager[Simulator]:
    """The simulator of ``weeks_parser``'s options: ``--agents``, pages of at most
    ``--page-cap`` rows, its clock fixed at ``dates.now``."""
    return simulator_process(
        agents=args.agents,
        start=ORGANISATION_START,
        now=dates.now,
        page_cap=args.page_cap,
        options=options,
    )


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's remote-API conditions, and the pipeline's pacing settings."""
    parser.add_argument("--latency-ms", type=float, default=0, help="per request, simulator")
    parser.add_argument("--rate-limit", type=float, default=0, help="requests/s, simulator")
    parser.add_argument("--error-rate", type=float, default=0, help="5xx fraction, simulator")
    parser.add_argument("--drop-rate", type=float, default=0, help="dropped, simulator")
    parser.add_argument("--concurrency", type=int, default=8, help="the pipeline's setting")
    parser.add_argument(
        "--max-rps", type=float, default=None, help="the pipeline's requests/s ceiling"
    )


def api_conditions(args: argparse.Namespace) -> dict[str, float]:
    """The ``FaultPlan`` of the remote-API options, set once the benchmark has warmed the
    simulator up (``Simulator.set_faults``)."""
    return {
        "latency_seconds": args.latency_ms / 1000,
        "rate_limit_per_second": args.rate_limit,
        "error_rate_5xx": args.error_rate,
        "drop_rate": args.drop_rate,
    }


def describe_api(args: argparse.Namespace) -> str:
    conditions = [
        f"{args.latency_ms:g} ms per request" if args.latency_ms else "no latency",
        f"limit {args.rate_limit:g} requests/s" if args.rate_limit else "no rate limit",
    ]
    if args.error_rate or args.drop_rate:
        conditions.append(f"{args.error_rate:.0%} 5xx, {args.drop_rate:.0%} dropped")
    ceiling = f"{args.max_rps:g} requests/s" if args.max_rps else "none (adapts to 429s)"
    return (
        f"simulated API: {', '.join(conditions)}; pipeline: concurrency {args.concurrency}, "
        f"ceiling {ceiling}"
    )


class CliRun:
    """The raw-entry command of docs/operations.md (Backfills) for the work dates, run as a
    user runs it: in its own process (group), with the project's ``dagster.yaml`` in a
    Dagster home of its own."""

    def __init__(self, simulator: Simulator, url: str, schema: str, dates: WorkDates):
        self.home = tempfile.mkdtemp(prefix="jibble-bench-home-")
        shutil.copy(PROJECT / "dagster.yaml", Path(self.home) / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JIBBLE_", "DAGSTER_"))}
        env.update(
            simulator.environment(),
            DAGSTER_HOME=self.home,
            JIBBLE_HOME=str(Path(self.home) / "jibble"),
            JIBBLE_DATABASE_URL=url,
            JIBBLE_DB_SCHEMA=schema,
            JIBBLE_PARTITIONS_START=dates.first.isoformat(),
        )
        command = [
            str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
            "-m", "jibble_pipeline.definitions",
            "--select", "raw_time_entries,quarantined_entries",
            "--partition-range", f"{dates.first}...{dates.last}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip

    def wait(self) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=3600)
        shutil.rmtree(self.home, ignore_errors=True)
        return self.process.returncode, output

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.wait()


def run_to_end(simulator: Simulator, url: str, schema: str, dates: WorkDates) -> float:
    """Seconds of the raw-entry command for ``dates``, start-up included; raises with the
    end of its output if it fails."""
    with Stopwatch() as watch:
        code, output = CliRun(simulator, url, schema, dates).wait()
    if code != 0:
        raise RuntimeError(f"the run failed:\n{output[-3000:]}")
    return watch.seconds
