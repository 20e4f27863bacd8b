"""The Jibble API as a Dagster resource.

Credentials arrive through ``dg.EnvVar`` so the UI shows the variable's name, never its
value. Without credentials ``definitions.py`` wires the demo resource instead
(``simulator.demo``), which serves the same client from the project's local simulator.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.tenant import TenantProfile
from jibble_pipeline.settings.catalog import (
    PRODUCTION_IDENTITY_URL,
    PRODUCTION_TIME_ATTENDANCE_URL,
    PRODUCTION_TIME_TRACKING_URL,
    PRODUCTION_WORKSPACE_URL,
)
from jibble_pipeline.transport import Pacing, RetryPolicy

Urls = tuple[str, str, str, str]  # identity, workspace, time tracking, time attendance


class JibbleResource(dg.ConfigurableResource):
    """Opens sessions with the Jibble API."""

    client_id: str | None = None
    client_secret: str | None = None
    identity_url: str = PRODUCTION_IDENTITY_URL
    workspace_url: str = PRODUCTION_WORKSPACE_URL
    time_tracking_url: str = PRODUCTION_TIME_TRACKING_URL
    time_attendance_url: str = PRODUCTION_TIME_ATTENDANCE_URL  # Jibble's own totals
    page_size: int = 1000
    concurrency: int = 8
    max_requests_per_second: float | None = None
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    max_wait_seconds: float = 900.0
    api_runs: int = 2  # steps calling Jibble at once, across runs (see warehouse.api_slots)
    # Seconds an agent-week may differ from Jibble's own total (check hours_match_jibble).
    reconcile_tolerance_seconds: float = 60.0
    # The organisation to read when the credentials see several (default: the token's).
    organization_id: str | None = None
    # Requests a minute the late-edits sweep may spend (tenants without updatedAt filters).
    sweep_requests: int = 60

    @property
    def tenant(self) -> str:
        """What the tenant's profile is kept under: its client id (the demo's is fixed)."""
        return self.client_id or ""

    @contextmanager
    def get_client(
        self,
        log: Any | None = None,
        share: Callable[[], int] | None = None,
        profile: TenantProfile | None = None,
    ) -> Iterator[JibbleClient]:
        """A session; ``share`` counts the runs using the API now: each paces itself at its
        share of the limits. ``profile``: what is known of the tenant."""
        with (
            self.api_access(log) as (client_id, client_secret, urls),
            self.client_for(client_id, client_secret, urls, log, share, profile) as client,
        ):
            yield client

    @contextmanager
    def api_access(self, log: Any | None) -> Iterator[tuple[str, str, Urls]]:
        """The credentials and the URLs (identity, workspace, time tracking, time attendance)
        of the API while the block runs."""
        urls = (
            self.identity_url,
            self.workspace_url,
            self.time_tracking_url,
            self.time_attendance_url,
        )
        yield self.client_id or "", self.client_secret or "", urls

    def client_for(
        self,
        client_id: str,
        client_secret: str,
        urls: Urls,
        log: Any | None,
        share: Callable[[], int] | None,
        profile: TenantProfile | None = None,
    ) -> JibbleClient:
        """A client with this resource's paging, pacing and retry settings."""
        return JibbleClient(
            client_id,
            client_secret,
            identity_url=urls[0],
            workspace_url=urls[1],
            time_tracking_url=urls[2],
            time_attendance_url=urls[3],
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
            profile=profile,
            organization_id=self.organization_id,
        )
