"""Settings read by Dagster and the compose file rather than by the pipeline's models.

``DAGSTER_HOME`` is Dagster's own (the command line points it at the project folder when it
is unset); the others are read by deploy/docker-compose.yaml. They are defined here so the
reference and deploy/.env.example describe them with the rest.
"""

from __future__ import annotations

from jibble_pipeline.settings.fields import Folder, Group, Number, Setting, Text

_DEPLOYMENT = Group.DEPLOYMENT
DAGSTER_HOME = Setting(
    env="DAGSTER_HOME", group=_DEPLOYMENT, kind=Folder(), deployed=False,
    description="Dagster instance: the folder of its dagster.yaml (run, event and schedule "
    "storage in the warehouse's Postgres); the image sets it",
    default_doc="the project folder",
)  # fmt: skip
POSTGRES_PASSWORD = Setting(
    env="POSTGRES_PASSWORD", group=_DEPLOYMENT, kind=Text("password"), secret=True,
    required=True, example="change-me",
    description="password of the compose file's own PostgreSQL (remove that service to use "
    "a managed one instead)",
)  # fmt: skip
DAGSTER_POSTGRES_URL = Setting(
    env="DAGSTER_POSTGRES_URL", group=_DEPLOYMENT, kind=Text("`postgresql+psycopg2://...` URL"),
    secret=True, description="Dagster's storage: with a managed Postgres, the database of "
    "`JIBBLE_DATABASE_URL` with the psycopg2 driver",
    default_doc="the compose file's PostgreSQL",
    example="postgresql+psycopg2://user:password@db.example.supabase.co:5432/postgres"
    "?sslmode=require",
)  # fmt: skip
UI_PORT = Setting(
    env="JIBBLE_UI_PORT", group=_DEPLOYMENT, kind=Number(1, whole=True), default="3000",
    description="the UI's port on the host",
)  # fmt: skip
IMAGE = Setting(
    env="JIBBLE_IMAGE", group=_DEPLOYMENT, kind=Text("image name"),
    default="jibble-pipeline:latest", description="the project's image",
)  # fmt: skip

DEPLOYMENT_SETTINGS = (DAGSTER_HOME, POSTGRES_PASSWORD, DAGSTER_POSTGRES_URL, UI_PORT, IMAGE)
