"""Demo mode: the Jibble resource the definitions use when no credentials are set.

Each run starts the project's local simulator (a deterministic synthetic organisation on the
real clock), reads it over HTTP like the real API, and says so in its logs. Every process
builds the same organisation (same seed, real clock), so runs in different processes see the
same data.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from jibble_pipeline.jibble.resource import JibbleResource, Urls
from jibble_pipeline.simulator.organisation import SyntheticOrganisation
from jibble_pipeline.simulator.server import JibbleSimulator

DEMO_MESSAGE = (
    "DEMO MODE: JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET are not set, so this run reads the "
    "project's local Jibble simulator (a synthetic organisation), not Jibble."
)
DEMO_SEED = 7
DEMO_AGENTS = 40
DEMO_PAGE_CAP = 100
DEMO_CLIENT_ID = "demo-mode"  # fixed, so what is learned of the demo's tenant is kept


class DemoJibbleResource(JibbleResource):
    """The Jibble resource of demo mode: the simulator's organisation from ``first_date``."""

    first_date: str  # ISO date: the organisation's first work date (JIBBLE_PARTITIONS_START)

    @property
    def tenant(self) -> str:
        return DEMO_CLIENT_ID

    @contextmanager
    def api_access(self, log: Any | None) -> Iterator[tuple[str, str, Urls]]:
        """The simulator's credentials and URL, served while the block runs."""
        with demo_simulator(date.fromisoformat(self.first_date)) as simulator:
            if log is not None:
                log.warning(DEMO_MESSAGE)
            yield simulator.client_id, simulator.client_secret, (simulator.url,) * 4


@contextmanager
def demo_simulator(first_date: date) -> Iterator[JibbleSimulator]:
    """The demo organisation served on a free local port while the block runs."""
    organisation = SyntheticOrganisation(
        seed=DEMO_SEED,
        agents=DEMO_AGENTS,
        start=first_date,
        end=datetime.now(UTC).date() + timedelta(days=2),
    )
    with JibbleSimulator(
        organisation, page_cap=DEMO_PAGE_CAP, client_id=DEMO_CLIENT_ID
    ) as simulator:
        yield simulator
