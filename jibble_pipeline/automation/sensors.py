"""The project's sensors are on from the start (a deployment need not switch them on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

# Runs that may still write: a sensor leaves their partitions to them.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def running_sensor(
    job: dg.UnresolvedAssetJobDefinition, every_seconds: int, description: str
) -> Callable[[Callable[..., Any]], dg.SensorDefinition]:
    """A sensor of ``job``, running from the start, evaluated every ``every_seconds``."""
    return dg.sensor(
        job=job,
        minimum_interval_seconds=every_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
