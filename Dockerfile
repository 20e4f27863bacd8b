# One image for the whole deployment: the user-code gRPC server (the default command), and
# the Dagster webserver and daemon run from it too (see deploy/docker-compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/home \
    # A deployment never starts the embedded PostgreSQL: JIBBLE_DATABASE_URL is required.
    JIBBLE_EMBEDDED_POSTGRES=never \
    JIBBLE_HOME=/opt/dagster/data

WORKDIR /opt/dagster/app
# The pinned dependencies, every file checked against its hash (requirements/runtime.txt, made
# by scripts/lock: no embedded PostgreSQL, no test tools), then the project alone.
COPY requirements/pip.txt requirements/runtime.txt ./requirements/
RUN pip install --require-hashes -r requirements/pip.txt \
    && pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY jibble_pipeline ./jibble_pipeline
RUN pip install --no-deps --no-build-isolation . \
    && useradd --create-home --uid 10001 dagster \
    && mkdir -p "$DAGSTER_HOME" "$JIBBLE_HOME/reports" \
    && chown -R dagster "$DAGSTER_HOME" "$JIBBLE_HOME"
COPY deploy/dagster.yaml deploy/workspace.yaml "$DAGSTER_HOME"/

USER dagster
EXPOSE 4000
# Checks the settings and the warehouse (one line if either is wrong), then serves the
# definitions as `dagster code-server start` on port 4000.
CMD ["jibble-pipeline", "serve-code", "--host", "0.0.0.0", "--port", "4000"]
