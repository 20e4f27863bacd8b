"""The Jibble API as a Dagster resource.

Credentials arrive through ``dg.EnvVar`` so the UI shows the variable's name, never its
value. Without credentials the resource runs in demo mode: each run starts the project's
local Jibble simulator (a deterministic synthetic organisation following the real clock)
and reads it over HTTP like the real API, and says so in the run's logs.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.settings import (
    PRODUCTION_IDENTITY_URL,
    PRODUCTION_TIME_TRACKING_URL,
    PRODUCTION_WORKSPACE_URL,
    load_settings,
)
from jibble_pipeline.transport import Pacing, RetryPolicy

DEMO_MESSAGE = (
    "DEMO MODE: JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET are not set, so this run reads the "
    "project's local Jibble simulator (a synthetic organisation), not Jibble."
)
DEMO_SEED = 7
DEMO_AGENTS = 40
DEMO_PAGE_CAP = 100


class JibbleResource(dg.ConfigurableResource):
    """Opens sessions with the Jibble API (or, without credentials, the local simulator)."""

    client_id: str | None = None
    client_secret: str | None = None
    identity_url: str = PRODUCTION_IDENTITY_URL
    workspace_url: str = PRODUCTION_WORKSPACE_URL
    time_tracking_url: str = PRODUCTION_TIME_TRACKING_URL
    page_size: int = 1000
    concurrency: int = 8
    max_requests_per_second: float | None = None
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    max_wait_seconds: float = 900.0
    api_runs: int = 2  # steps calling Jibble at once, across runs (see warehouse.api_slots)

    @property
    def demo_mode(self) -> bool:
        return not (self.client_id and self.client_secret)

    @contextmanager
    def get_client(
        self, log: Any | None = None, share: Callable[[], int] | None = None
    ) -> Iterator[JibbleClient]:
        """A session; ``share`` counts the runs using the API now: each paces itself at its
        share of the limits."""
        with ExitStack() as stack:
            client_id, client_secret = self.client_id or "", self.client_secret or ""
            urls = (self.identity_url, self.workspace_url, self.time_tracking_url)
            if self.demo_mode:
                simulator = stack.enter_context(demo_simulator())
                if log is not None:
                    log.warning(DEMO_MESSAGE)
                client_id, client_secret = simulator.client_id, simulator.client_secret
                urls = (simulator.url,) * 3
            yield stack.enter_context(
                JibbleClient(
                    client_id,
                    client_secret,
                    identity_url=urls[0],
                    workspace_url=urls[1],
                    time_tracking_url=urls[2],
                    page_size=self.page_size,
                    timeout_seconds=self.timeout_seconds,
                    pacing=Pacing(
                        max_requests_per_second=self.max_requests_per_second,
                        concurrency=self.concurrency,
                    ),
                    retry=RetryPolicy(
                        max_attempts=self.max_attempts, patience_seconds=self.max_wait_seconds
                    ),
                    log=log,
                    share=share,
                )
            )


@contextmanager
def demo_simulator() -> Iterator[Any]:
    """The demo organisation served on a free local port for the length of a run.

    Every process builds the same organisation (same seed, real clock), so runs in
    different processes see the same data."""
    from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation

    today = datetime.now(UTC).date()
    organisation = SyntheticOrganisation(
        seed=DEMO_SEED,
        agents=DEMO_AGENTS,
        start=load_settings().partitions_start,
        end=today + timedelta(days=2),
    )
    with JibbleSimulator(organisation, page_cap=DEMO_PAGE_CAP) as simulator:
        yield simulator
