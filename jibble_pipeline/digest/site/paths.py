"""Where each page and file of the report site lives, relative to the site root, and the
links between them.

::

    index.html                               clients -> their weeks (totals)
    weeks/<monday>/index.html                the week: every client and every agent
    weeks/<monday>/clients/<client>.html     a client's week (the digest, agents linked)
    weeks/<monday>/agents/<agent>.html       an agent's week: daily clock-in/out and sessions
    weeks/<monday>/reported/<client>-version-<n>.html  each version the client was told
    digests/<monday>/<client>.html|.txt      the digest exactly as emailed
    digests/<monday>/<client>-hours.xlsx     its exports: a workbook, and the same two tables
    digests/<monday>/<client>-hours.csv|-sessions.csv  as CSV (``digest/exports.py``)
    corrections/<monday>/<client>-correction-<n>.html|.txt  each correction as emailed
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """A file name for any text: readable part plus a short hash (no collisions, no ``..``)."""
    readable = _UNSAFE.sub("-", text.lower()).strip("-")[:48] or "x"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def week_dir(week: date) -> str:
    return f"weeks/{week.isoformat()}"


def client_page(week: date, email: str) -> str:
    return f"{week_dir(week)}/clients/{slug(email)}.html"


def agent_page(week: date, person_id: str) -> str:
    return f"{week_dir(week)}/agents/{slug(person_id)}.html"


def digest_dir(week: date) -> str:
    return f"digests/{week.isoformat()}"


def digest_file(week: date, email: str, suffix: str = ".html") -> str:
    return f"{digest_dir(week)}/{slug(email)}{suffix}"


def correction_file(week: date, email: str, number: int, suffix: str = ".html") -> str:
    """A correction of a client's week as emailed (number 1: the first after the digest)."""
    return f"corrections/{week.isoformat()}/{slug(email)}-correction-{number}{suffix}"


# The exports of a client's week, beside its digest (rendered by ``digest/exports.py``).
EXPORT_SUFFIXES = {
    "hours_xlsx": "-hours.xlsx",
    "hours_csv": "-hours.csv",
    "sessions_csv": "-sessions.csv",
}


def export_file(week: date, email: str, kind: str) -> str:
    return digest_file(week, email, EXPORT_SUFFIXES[kind])


def export_links(from_page: str, week: date, email: str) -> dict[str, str]:
    """The links from a page to a client's week of exports, by kind."""
    return {kind: relative(from_page, export_file(week, email, kind)) for kind in EXPORT_SUFFIXES}


def relative(from_page: str, to_page: str) -> str:
    """The link from one site page to another (both relative to the site root)."""
    start = PurePosixPath(from_page).parent
    return os.path.relpath(to_page, start.as_posix() if start.parts else ".")


def version_file(week: date, email: str, version: int) -> str:
    """A version of a client's week as it was sent, rendered from the ledger's figures."""
    return f"{week_dir(week)}/reported/{slug(email)}-version-{version}.html"
