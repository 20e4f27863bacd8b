"""Unpartitioned snapshots of the Jibble workspace: agents, client groups, activities."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import rejected_metadata, selected_names, table_metadata
from jibble_pipeline.jibble.frames import activities_frame, agents_frame, groups_frame
from jibble_pipeline.jibble.models import Activity, Group, Person, parse_payloads
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.rules.groups import update_group_history
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "jibble_workspace"


@dg.multi_asset(
    outs={
        "agents": dg.AssetOut(
            is_required=False,
            description="Every person of the Jibble organisation, with their client group.",
            kinds={"jibble", "postgres"},
        ),
        "agent_group_history": dg.AssetOut(
            is_required=False,
            description="Which client group each agent was in, when (valid_from / valid_to), "
            "from each People sync.",
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
    now = datetime.now(UTC)
    frame = agents_frame(people, now)
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


@dg.asset(group_name=GROUP, kinds={"jibble", "postgres"})
def client_groups(
    context: dg.AssetExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Client accounts (Jibble groups)."""
    with jibble_session(context, jibble, warehouse) as client:
        groups, rejected = parse_payloads(Group, client.groups())
    frame = groups_frame(groups, datetime.now(UTC))
    context.add_output_metadata(
        {
            "client_groups": len(frame),
            "groups": table_metadata(frame[["group_id", "name", "code", "status"]]),
            **rejected_metadata(rejected),
        }
    )
    return frame


@dg.asset(group_name=GROUP, kinds={"jibble", "postgres"})
def activities(
    context: dg.AssetExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Activity types agents clock in on."""
    with jibble_session(context, jibble, warehouse) as client:
        items, rejected = parse_payloads(Activity, client.activities())
    frame = activities_frame(items, datetime.now(UTC))
    context.add_output_metadata(
        {
            "activities": len(frame),
            "list": table_metadata(frame[["activity_id", "name", "code", "status"]]),
            **rejected_metadata(rejected),
        }
    )
    return frame
