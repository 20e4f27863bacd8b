"""Unpartitioned snapshots of the Jibble workspace: agents, client groups, activities."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import rejected_metadata, table_metadata
from jibble_pipeline.jibble.frames import activities_frame, agents_frame, groups_frame
from jibble_pipeline.jibble.models import Activity, Group, Person, parse_payloads
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.rules.groups import update_group_history
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "jibble_workspace"


@dg.asset(group_name=GROUP, kinds={"jibble", "postgres"})
def agents(
    context: dg.AssetExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Every person of the Jibble organisation, with the client group they belong to."""
    with jibble_session(context, jibble, warehouse) as client:
        people, rejected = parse_payloads(Person, client.people())
    frame = agents_frame(people, datetime.now(UTC))
    per_group = frame.groupby("group_id", dropna=False).size().rename("agents").reset_index()
    context.add_output_metadata(
        {
            "agents": len(frame),
            "without_time_zone": int(frame["time_zone"].isna().sum()),
            "agents_per_group": table_metadata(per_group),
            **rejected_metadata(rejected),
        }
    )
    return frame


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


@dg.asset(group_name=GROUP, kinds={"postgres"})
def agent_group_history(
    context: dg.AssetExecutionContext, agents: pd.DataFrame, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Which client group each agent was in, when (valid_from / valid_to), from each sync."""
    previous = warehouse.read_table("agent_group_history")
    history = update_group_history(previous, agents[["person_id", "group_id"]], datetime.now(UTC))
    moves = len(history) - len(previous)
    context.add_output_metadata(
        {"history_rows": len(history), "new_rows": moves, "agents": agents["person_id"].nunique()}
    )
    return history
