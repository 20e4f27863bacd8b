"""Sessions with Jibble as the assets open them: first one of the slots every run shares
(so the API's limits hold across runs, processes and machines), then a client paced at its
share of the limits."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.warehouse.resource import WarehouseResource


@contextmanager
def jibble_session(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    jibble: JibbleResource,
    warehouse: WarehouseResource,
) -> Iterator[JibbleClient]:
    with (
        warehouse.api_slot("jibble", jibble.api_runs, jibble.max_wait_seconds) as share,
        jibble.get_client(context.log, share=share) as client,
    ):
        yield client
