"""Jibble time entries to sessions and weekly hours, as Dagster assets in Postgres.

``dagster ... -m jibble_pipeline`` finds the project's Definitions here too (loaded only
when asked for, so importing a part of the package does not load them all).
"""


def __getattr__(name: str):
    if name == "defs":
        from jibble_pipeline.definitions import defs

        return defs
    raise AttributeError(f"module 'jibble_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
