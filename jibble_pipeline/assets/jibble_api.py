"""Sessions with Jibble as the assets, checks and sensors open them.

A step first takes one of the slots every run shares (so the API's limits hold across runs,
processes and machines), then a client paced at its share of the limits. The client starts
from what the warehouse knows of the tenant (``jibble.tenant``); what it learns is kept
there, said once in the run's log and once in the UI (an observation of ``jibble_tenant``).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.jibble.tenant import Learned, TenantProfile
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.tenant import load_profile, save_learned, tenant_key

TENANT_ASSET = "jibble_tenant"

jibble_tenant = dg.AssetSpec(
    TENANT_ASSET,
    description="What this Jibble tenant accepts and how it answers (sort orders, filters, "
    "the report's shape, the rate limit, the organisation), as the pipeline learned it. "
    "Each change is observed here once; `jibble-pipeline doctor` shows it all.",
    group_name="jibble_workspace",
    kinds={"jibble"},
)


@contextmanager
def jibble_session(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    jibble: JibbleResource,
    warehouse: WarehouseResource,
) -> Iterator[JibbleClient]:
    def observe(observation: dg.AssetObservation) -> None:
        if isinstance(context, dg.AssetCheckExecutionContext):
            context.op_execution_context.log_event(observation)
        else:
            context.log_event(observation)

    with (
        warehouse.api_slot("jibble", jibble.api_runs, jibble.max_wait_seconds) as share,
        tenant_client(jibble, warehouse, context.log, share, observe) as client,
    ):
        yield client


@contextmanager
def tenant_client(
    jibble: JibbleResource,
    warehouse: WarehouseResource,
    log: Any,
    share: Callable[[], int] | None = None,
    observe: Callable[[dg.AssetObservation], None] | None = None,
) -> Iterator[JibbleClient]:
    """A client that starts from the tenant's profile; when it closes, what it learned is
    written back, logged once and handed to ``observe`` (the UI)."""
    store = warehouse.open()
    tenant = tenant_key(jibble.tenant)
    profile = load_profile(store, tenant)
    try:
        with jibble.get_client(log, share=share, profile=profile) as client:
            try:
                yield client
            finally:
                client.learn_rate_limit()
                if client.foreign:
                    counts = ", ".join(f"{path}: {n}" for path, n in sorted(client.foreign.items()))
                    log.info(
                        f"Left out rows of other organisations than {client.organization_id} "
                        f"that these credentials also see ({counts})"
                    )
    finally:
        changes = list(profile.changes)
        if changes:
            save_learned(store, tenant, changes)
            for learned in changes:
                say = log.warning if "refused" in learned.evidence else log.info
                say(f"Learned of this Jibble tenant: {learned.describe()}; kept for next runs")
            if observe is not None:
                observe(tenant_observation(profile, changes))


def tenant_observation(profile: TenantProfile, changes: list[Learned]) -> dg.AssetObservation:
    """The tenant's whole profile, with what just changed, for the UI."""
    frame = pd.DataFrame(
        [
            {
                "capability": item.capability,
                "value": item.value or "(none)",
                "evidence": item.evidence,
                "learned_at": item.learned_at.isoformat(timespec="seconds"),
            }
            for item in profile.learned()
        ]
    )
    return dg.AssetObservation(
        asset_key=TENANT_ASSET,
        metadata={
            "learned_now": dg.MetadataValue.md("\n".join(f"- {c.describe()}" for c in changes)),
            "profile": table_metadata(frame),
        },
    )
