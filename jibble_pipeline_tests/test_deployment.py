"""The deployed topology, as processes: the user-code server on its own port, the webserver
and the daemon pointed at it through ``deploy/workspace.yaml``, with ``deploy/dagster.yaml``
as the instance, all on a real Postgres database of their own. A run is launched through
the webserver's GraphQL API and the daemon evaluates a tick of the 10-minute schedule.
Plus: the compose file and the Helm values name what the code reads."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import ScheduleInstigatorData, TickStatus
from dagster_graphql import DagsterGraphQLClient

from jibble_pipeline.cli import CODE_LOCATION_NAME, PROJECT_ROOT
from jibble_pipeline.partitions import range_tags
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.warehouse.connection import sqlalchemy_url
from jibble_pipeline_tests.pipeline_harness import BIN, cli_environment

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

DEPLOY = PROJECT_ROOT / "deploy"
SCHEDULE = "refresh_every_10_minutes"
TODAY = datetime.now(UTC).date()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, ready: Callable[[], object], timeout: float, process_logs: Path) -> object:
    """Polls ``ready`` until it returns something truthy; on timeout, fails with the logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(1)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in process_logs.glob("*.log"))
    pytest.fail(f"{what} within {timeout:.0f} s\n{logs}")


class Deployment:
    """The three Dagster services as processes, each with the environment it would have in
    a container: only the code server knows the Jibble and warehouse settings."""

    def __init__(self, root: Path, code_env: dict[str, str], storage_url: str):
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.home = root / "dagster_home"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
        self.code_port, self.web_port = free_port(), free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("JIBBLE_", "DAGSTER_"))}
        base.update(
            DAGSTER_HOME=str(self.home),
            DAGSTER_POSTGRES_URL=storage_url,
            PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        )
        self.service_env = {
            **base,
            "JIBBLE_CODE_SERVER_HOST": "127.0.0.1",
            "JIBBLE_CODE_SERVER_PORT": str(self.code_port),
        }
        self.code_env = {**code_env, **base}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def start_code_server(self) -> None:
        command = [str(BIN / "jibble-pipeline"), "serve-code", "--host", "127.0.0.1"]
        self.start("code", [*command, "--port", str(self.code_port)], self.code_env)

    def start_webserver(self) -> None:
        command = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.web_port)]
        self.start("webserver", [*command, "-w", str(DEPLOY / "workspace.yaml")], self.service_env)

    def start_daemon(self) -> None:
        command = [str(BIN / "dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.yaml")]
        self.start("daemon", command, self.service_env)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def graphql(self, query: str) -> dict:
        url = f"http://127.0.0.1:{self.web_port}/graphql"
        return httpx.post(url, json={"query": query}, timeout=30).json()["data"]

    def location_loaded(self) -> bool:
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
                " locationOrLoadError { __typename } } } } }"
            )
        except httpx.HTTPError:
            return False
        entries = data["workspaceOrError"]["locationEntries"]
        return any(
            e["name"] == CODE_LOCATION_NAME
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )

    def instance(self) -> dg.DagsterInstance:
        os.environ["DAGSTER_POSTGRES_URL"] = self.service_env["DAGSTER_POSTGRES_URL"]
        return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture
def simulator() -> Iterator[JibbleSimulator]:
    """A small organisation on the real clock: the schedule's tick asks for today's dates."""
    org = SyntheticOrganisation(
        seed=11, agents=5, start=TODAY - timedelta(days=8), end=TODAY + timedelta(days=2)
    )
    with JibbleSimulator(org, page_cap=40) as running:
        yield running


@pytest.fixture
def deployment(tmp_path, simulator, own_database) -> Iterator[Deployment]:
    code_env = cli_environment(tmp_path / "code", simulator, own_database, "jibble")
    code_env.update(
        JIBBLE_EMBEDDED_POSTGRES="never",
        JIBBLE_PARTITIONS_START=(TODAY - timedelta(days=8)).isoformat(),
    )
    running = Deployment(tmp_path, code_env, sqlalchemy_url(own_database))
    running.start_code_server()
    running.start_webserver()
    running.start_daemon()
    try:
        yield running
    finally:
        running.stop_all()


def stored_entries(database_url: str, first: date, last: date) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM jibble.raw_time_entries WHERE belongs_to_date BETWEEN %s AND %s"
            " AND removed_at IS NULL",
            (first, last),
        ).fetchone()[0]


def schedule_state(instance: dg.DagsterInstance):
    states = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
    return next((s for s in states if s.name == SCHEDULE), None)


def test_runs_and_ticks_through_the_deployed_services(deployment, simulator, own_database):
    """The webserver and the daemon hold no project code and no Jibble or warehouse
    settings: everything they do goes through the code server."""
    wait_for("the webserver loads the code location", deployment.location_loaded, 180,
             deployment.logs)  # fmt: skip

    # A run launched through the webserver's GraphQL API, queued, started by the daemon.
    first, last = TODAY - timedelta(days=6), TODAY - timedelta(days=4)
    client = DagsterGraphQLClient("127.0.0.1", port_number=deployment.web_port)
    run_id = client.submit_job_execution(
        "refresh_daily_assets",
        repository_location_name=CODE_LOCATION_NAME,
        tags=range_tags(first, last),
    )

    def finished():
        status = client.get_run_status(run_id)
        return (
            status if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) else None
        )

    assert wait_for("the GraphQL run ends", finished, 300, deployment.logs) == (
        dg.DagsterRunStatus.SUCCESS
    )
    expected = len(simulator.organisation.time_entries_for_dates(first, last))
    assert stored_entries(own_database, first, last) == expected > 0

    # A tick of the 10-minute schedule, evaluated by the daemon: its state is the daemon's
    # own, moved back so the last cron boundary falls after it.
    instance = deployment.instance()
    wait_for("the daemon records the schedule", lambda: schedule_state(instance), 120,
             deployment.logs)  # fmt: skip
    deployment.stop("daemon")
    state = schedule_state(instance)
    earlier = time.time() - 11 * 60
    instance.update_instigator_state(
        state.with_data(
            ScheduleInstigatorData(
                cron_schedule=state.instigator_data.cron_schedule,
                start_timestamp=earlier,
                last_iteration_timestamp=earlier,
            )
        )
    )
    deployment.start_daemon()

    def launched_tick():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5)
        return next((t for t in ticks if t.status == TickStatus.SUCCESS and t.run_ids), None)

    tick = wait_for("the daemon evaluates a tick", launched_tick, 180, deployment.logs)
    tick_run = tick.run_ids[0]
    assert (
        wait_for(
            "the tick's run ends",
            lambda: (
                instance.get_run_by_id(tick_run).is_finished and instance.get_run_by_id(tick_run)
            ),
            300,
            deployment.logs,
        ).status
        == dg.DagsterRunStatus.SUCCESS
    )
    ticked = instance.get_run_by_id(tick_run).tags
    window_first = date.fromisoformat(ticked["dagster/asset_partition_range_start"])
    window_last = date.fromisoformat(ticked["dagster/asset_partition_range_end"])
    assert window_first <= TODAY <= window_last
    expected = len(simulator.organisation.time_entries_for_dates(window_first, window_last))
    assert stored_entries(own_database, window_first, window_last) == expected > 0


def test_the_code_server_refuses_to_start_without_a_warehouse(tmp_path, simulator):
    """A deployment never starts an embedded PostgreSQL: no JIBBLE_DATABASE_URL is one line."""
    env = cli_environment(tmp_path / "code", simulator, "", "jibble")
    del env["JIBBLE_DATABASE_URL"]
    env["JIBBLE_EMBEDDED_POSTGRES"] = "never"
    done = subprocess.run(
        [str(BIN / "jibble-pipeline"), "serve-code", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1, lines
    assert "JIBBLE_DATABASE_URL is not set" in lines[0]
    assert not (tmp_path / "code" / "jibble" / "postgres").exists()


def names_read_by_the_code() -> set[str]:
    """Every ``JIBBLE_*``, ``SMTP_*``, ``AIRTABLE_*``, ``RESEND_*`` setting the package reads."""
    pattern = re.compile(r"\"((?:JIBBLE|SMTP|AIRTABLE|RESEND)_[A-Z_]+)\"")
    names: set[str] = set()
    for source in (PROJECT_ROOT / "jibble_pipeline").rglob("*.py"):
        names.update(pattern.findall(source.read_text()))
    return names


# Read by the code, never set by a deployment: fixed by the image, or development only.
FIXED_OR_DEVELOPMENT = {
    "JIBBLE_HOME",
    "JIBBLE_EMBEDDED_POSTGRES",
    "JIBBLE_IDENTITY_URL",
    "JIBBLE_WORKSPACE_URL",
    "JIBBLE_TIME_TRACKING_URL",
    "AIRTABLE_API_URL",
    "RESEND_API_URL",
}
# Read by the deployment files themselves, not by the package.
DEPLOYMENT_OWN = {
    "POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_URL",
    "JIBBLE_UI_PORT",
    "JIBBLE_IMAGE",
    "JIBBLE_CODE_SERVER_HOST",
    "JIBBLE_CODE_SERVER_PORT",
}


def test_compose_names_the_image_ports_and_every_setting():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "code", "webserver", "daemon"} <= set(services)
    project = [services[name] for name in ("code", "webserver", "daemon")]
    assert {s["image"] for s in project} == {"${JIBBLE_IMAGE:-jibble-pipeline:latest}"}
    assert all(s["env_file"] == [".env"] for s in project)
    assert (DEPLOY / services["code"]["build"]["context"] / "Dockerfile").is_file()
    assert services["webserver"]["ports"] == ["${JIBBLE_UI_PORT:-3000}:3000"]
    assert services["webserver"]["command"][-2:] == ["-w", "/opt/dagster/home/workspace.yaml"]
    assert "4000" in services["code"]["healthcheck"]["test"]
    environment = services["code"]["environment"]
    assert environment["JIBBLE_CODE_SERVER_PORT"] == "4000"
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (server,) = workspace["load_from"]
    assert server["grpc_server"]["host"] == {"env": "JIBBLE_CODE_SERVER_HOST"}
    assert server["grpc_server"]["port"] == {"env": "JIBBLE_CODE_SERVER_PORT"}
    assert server["grpc_server"]["location_name"] == CODE_LOCATION_NAME
    # .env.example offers every setting the code reads, and nothing it does not.
    example = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(),
                             re.M))  # fmt: skip
    read = names_read_by_the_code()
    assert read - FIXED_OR_DEVELOPMENT <= example | set(environment)
    assert example <= read | DEPLOYMENT_OWN
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "EXPOSE 4000" in dockerfile and '"serve-code"' in dockerfile
    assert '"--port", "4000"' in dockerfile and "JIBBLE_EMBEDDED_POSTGRES=never" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)


def test_helm_values_name_the_image_the_location_and_the_secrets():
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    values = yaml.safe_load(text)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"] and deployment["image"]["tag"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "jibble_pipeline.definitions"]
    (server,) = values["dagsterWebserver"]["workspace"]["servers"]
    assert server == {"host": deployment["name"], "port": deployment["port"],
                      "name": CODE_LOCATION_NAME}  # fmt: skip
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert secrets == {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]}
    assert values["postgresql"]["enabled"] is False
    # The values and the documented secret keys set real settings, the required ones included.
    given = set(deployment["env"]) | set(re.findall(r"--from-literal=([A-Z_]+)=", text))
    assert given <= names_read_by_the_code()
    required = {"JIBBLE_CLIENT_ID", "JIBBLE_CLIENT_SECRET", "JIBBLE_DATABASE_URL"}
    assert required | {"JIBBLE_EMBEDDED_POSTGRES", "JIBBLE_REPORTS_DIR"} <= given
    assert deployment["env"]["JIBBLE_EMBEDDED_POSTGRES"] == "never"
    # The same run queue as the compose deployment's instance.
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_coordinator"]["config"]
    assert queued["maxConcurrentRuns"] == instance["max_concurrent_runs"]
    assert [limit["value"] for limit in queued["tagConcurrencyLimits"]] == [
        limit["value"] for limit in instance["tag_concurrency_limits"]
    ]


def test_the_deployment_instance_keeps_everything_in_postgres_and_retries_runs():
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert instance["run_monitoring"]["enabled"] is True
    assert instance["run_retries"]["enabled"] is True
    # The same run queue as the one-machine instance.
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert instance["run_coordinator"] == local["run_coordinator"]
