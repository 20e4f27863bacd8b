"""Writing the site: one file atomically, or a whole folder swapped in at once (a reader
never sees half a page, nor a week with pages of two runs)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import date
from pathlib import Path, PurePosixPath


def _safe(root: Path, relative_path: str) -> Path:
    path = PurePosixPath(relative_path)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"unsafe site path {relative_path!r}")
    return root.joinpath(*path.parts)


def write_file(root: Path, relative_path: str, content: str | bytes) -> Path:
    """Writes one file atomically (a reader never sees half a page); text as UTF-8."""
    target = _safe(root, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, target)
    return target


def publish(root: Path, folder: str, files: Mapping[str, str | bytes]) -> int:
    """Replaces ``root/folder`` by exactly ``files`` (paths relative to ``root``, all inside
    ``folder``): pages of a client or agent gone from the data disappear too."""
    target = _safe(root, folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.new-{uuid.uuid4().hex}")
    prefix = PurePosixPath(folder)
    for relative_path, content in files.items():
        inner = PurePosixPath(relative_path).relative_to(prefix)
        write_file(staging, inner.as_posix(), content)
    staging.mkdir(parents=True, exist_ok=True)
    retired: list[Path] = []
    for attempt in range(5):  # another run may swap its own folder in at the same moment
        if target.exists():
            retired.append(target.with_name(f".{target.name}.old-{uuid.uuid4().hex}"))
            try:
                os.replace(target, retired[-1])
            except FileNotFoundError:
                retired.pop()
        try:
            os.replace(staging, target)
            break
        except OSError:
            if attempt == 4:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    for folder_gone in retired:
        shutil.rmtree(folder_gone, ignore_errors=True)
    return len(files)


def existing_weeks(root: Path) -> list[date]:
    """Weeks the site has pages for."""
    weeks = []
    folder = root / "weeks"
    if folder.is_dir():
        for child in folder.iterdir():
            try:
                weeks.append(date.fromisoformat(child.name))
            except ValueError:
                continue
    return sorted(weeks)
