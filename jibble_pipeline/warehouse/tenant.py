"""The tenant profile (``jibble.tenant``) kept in the warehouse: read when a session with
Jibble opens, what it learned written when it closes."""

from __future__ import annotations

import hashlib

import pandas as pd
from psycopg import sql

from jibble_pipeline.jibble.tenant import Learned, TenantProfile
from jibble_pipeline.warehouse.store import Warehouse

TABLE = "jibble_tenant"


def tenant_key(client_id: str) -> str:
    """A tenant's key: a digest of its client id (the id itself is not kept)."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:16]


def load_profile(warehouse: Warehouse, tenant: str) -> TenantProfile:
    query = sql.SQL(
        "SELECT capability, value, evidence, learned_at FROM {} WHERE tenant = %(tenant)s"
    ).format(warehouse.identifier(TABLE))
    rows = warehouse.query_frame(query, {"tenant": tenant})
    return TenantProfile(
        {
            row.capability: Learned(row.capability, row.value, row.evidence or "", row.learned_at)
            for row in rows.itertuples(index=False)
        }
    )


def save_learned(warehouse: Warehouse, tenant: str, learned: list[Learned]) -> None:
    """Upserts what a session learned (one set-based write)."""
    if not learned:
        return
    frame = pd.DataFrame(
        {
            "tenant": tenant,
            "capability": [item.capability for item in learned],
            "value": [item.value for item in learned],
            "evidence": [item.evidence for item in learned],
            "learned_at": pd.to_datetime([item.learned_at for item in learned], utc=True),
        }
    )
    warehouse.write(TABLE, frame.astype({c: object for c in frame.columns if c != "learned_at"}))
