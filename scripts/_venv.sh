# Sourced by the scripts: creates .venv with Python 3.11+ and installs into it the pinned
# packages of requirements/$REQUIREMENTS.txt, then the project itself (editable, no
# dependencies of its own: the lock holds them all). REQUIREMENTS is dev unless told (the
# dependencies, the embedded PostgreSQL and the test tools); bench adds the benchmarks' extra.
# The lock files are made by scripts/lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "Python 3.11 or newer is required (set PYTHON=...)." >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
REQUIREMENTS="${REQUIREMENTS:-dev}"
if [ ! -f "requirements/$REQUIREMENTS.txt" ]; then
    echo "No requirements/$REQUIREMENTS.txt: REQUIREMENTS is dev, bench or runtime." >&2
    exit 1
fi
# The environment is made anew whenever its lock (or REQUIREMENTS) differs from the one it was
# made from: it then holds exactly what the lock names, nothing left over. pip itself comes
# first: older ones mishandle extras in hash-checking mode. The project is installed again
# when pyproject.toml changed (its commands, say).
locks=(requirements/pip.txt "requirements/$REQUIREMENTS.txt")
if ! cat "${locks[@]}" 2>/dev/null | cmp -s - .venv/installed-lock.txt; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
        -r requirements/pip.txt
    .venv/bin/python -m pip install --quiet --require-hashes -r "requirements/$REQUIREMENTS.txt"
    cat "${locks[@]}" >.venv/installed-lock.txt
fi
if ! cmp -s pyproject.toml .venv/installed-pyproject.toml; then
    # (setuptools warns, on every editable install, of folders named like the package.)
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --no-deps \
        --no-build-isolation -e .
    cp pyproject.toml .venv/installed-pyproject.toml
fi
