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
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Installs only when the lock or pyproject.toml changed since the last install into .venv.
# pip itself first: older ones mishandle extras in hash-checking mode.
stamp=".venv/installed-$REQUIREMENTS.txt"
installs=(requirements/pip.txt "requirements/$REQUIREMENTS.txt" pyproject.toml)
if ! cat "${installs[@]}" | cmp -s - "$stamp"; then
    pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" --require-hashes -r requirements/pip.txt
    "${pip[@]}" --require-hashes -r "requirements/$REQUIREMENTS.txt"
    # (setuptools warns, on every editable install, of folders named like the package.)
    PYTHONWARNINGS=ignore "${pip[@]}" --no-deps --no-build-isolation -e .
    cat "${installs[@]}" >"$stamp"
fi
