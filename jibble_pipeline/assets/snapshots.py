"""Unpartitioned snapshots of the Jibble workspace: agents, client groups, activities."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import rejected_metadata, selected_names, table_metadata
from jibble_pipeline.assets.table_metadata import column_schema, table_out
from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.frames import agents_frame, snapshot_frame
from jibble_pipeline.jibble.models import Activity, Group, JibblePayload, Person, parse_payloads
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.jibble.time_zones import find_zone
from jibble_pipeline.rules.groups import update_group_history
from jibble_pipeline.schema import table
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "jibble_workspace"


@dg.multi_asset(
    outs={
        "agents": table_out(
            "agents",
            "Every person of the Jibble organisation, with their client group.",
            kinds={"jibble", "postgres"},
        ),
        "agent_group_history": table_out(
            "agent_group_history",
            "Which client group each agent was in, when (valid_from / valid_to), from each "
            "People sync.",
            kinds={"postgres"},
        ),
    },
    group_name=GROUP,
    can_subset=True,
)
def agents(
    context: dg.AssetExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """People, and the group history that follows every sync of them (a sync alone would
    leave new agents' sessions without a client group). Both are written whichever of the
    two was selected."""
    with jibble_session(context, jibble, warehouse) as client:
        people, rejected = parse_payloads(Person, client.people())
        organisation = None
        if any(find_zone(person.raw).zone is None for person in people):
            organisation = our_organisation(client)  # its zone stands in
    now = datetime.now(UTC)
    frame = agents_frame(people, now, organisation)
    unrecognised = sorted({z for p in people if (z := find_zone(p.raw).unrecognised)})
    if unrecognised:
        context.log.warning(
            f"Time zones this machine does not know, left out: {', '.join(unrecognised[:10])}"
        )
    store = warehouse.open()
    previous = store.read("agent_group_history")
    history = update_group_history(previous, frame[["person_id", "group_id"]], now)
    written = store.write("agents", frame)
    store.write("agent_group_history", history)
    per_group = frame.groupby("group_id", dropna=False).size().rename("agents").reset_index()
    selected = selected_names(context)
    if "agents" in selected:
        yield dg.MaterializeResult(
            asset_key="agents",
            metadata={
                **written.metadata(),
                "without_time_zone": int(frame["time_zone"].isna().sum()),
                "time_zones_from": table_metadata(
                    frame["time_zone_source"]
                    .fillna("(none)")
                    .value_counts()
                    .rename_axis("source")
                    .reset_index(name="agents")
                ),
                "agents_per_group": table_metadata(per_group),
                **rejected_metadata(rejected),
            },
        )
    if "agent_group_history" in selected:
        yield dg.MaterializeResult(
            asset_key="agent_group_history",
            metadata={
                "dagster/row_count": len(history),
                "new_rows": len(history) - len(previous),
                "agents": int(frame["person_id"].nunique()),
            },
        )


def our_organisation(client: JibbleClient) -> dict[str, Any] | None:
    """The payload of the organisation read, among those the credentials see."""
    organisations = client.organizations()
    ours = client.organization_id
    matching = [o for o in organisations if isinstance(o, dict) and o.get("id") == ours]
    if matching:
        return matching[0]
    return organisations[0] if len(organisations) == 1 else None


def list_snapshot(
    name: str,
    description: str,
    read: Callable[[JibbleClient], list[dict[str, Any]]],
    model: type[JibblePayload],
) -> dg.AssetsDefinition:
    """The asset ``name``: one Jibble list, validated, as the rows of its table, with a
    table of it and any payloads that failed validation as metadata (the IO manager adds the
    row count)."""
    spec = table(name)

    @dg.asset(
        name=name,
        description=description,
        group_name=GROUP,
        kinds={"jibble", "postgres"},
        metadata=column_schema(name),
    )
    def snapshot(
        context: dg.AssetExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
    ) -> pd.DataFrame:
        with jibble_session(context, jibble, warehouse) as client:
            items, rejected = parse_payloads(model, read(client))
        frame = snapshot_frame(items, spec, datetime.now(UTC))
        shown = [*spec.primary_key, "name", "code", "status"]
        context.add_output_metadata(
            {"list": table_metadata(frame[shown]), **rejected_metadata(rejected)}
        )
        return frame

    return snapshot


client_groups = list_snapshot(
    "client_groups", "Client accounts (Jibble groups).", JibbleClient.groups, Group
)
activities = list_snapshot(
    "activities", "Activity types agents clock in on.", JibbleClient.activities, Activity
)
