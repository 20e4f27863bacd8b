"""docs/settings.md and deploy/.env.example, written from the settings' definitions.

``python -m jibble_pipeline.settings.reference`` writes both; a test fails when either
differs from what this module would write.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from jibble_pipeline.settings.catalog import (
    ALERT_SETTINGS,
    DEPLOYMENT_SETTINGS,
    DIGEST_SETTINGS,
    PIPELINE_SETTINGS,
)
from jibble_pipeline.settings.fields import Group, Setting

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DOC = PROJECT_ROOT / "docs" / "settings.md"
ENV_EXAMPLE = PROJECT_ROOT / "deploy" / ".env.example"
COMMAND = "python -m jibble_pipeline.settings.reference"

ALL_SETTINGS: tuple[Setting, ...] = (
    *PIPELINE_SETTINGS,
    *DIGEST_SETTINGS,
    *ALERT_SETTINGS,
    *DEPLOYMENT_SETTINGS,
)

# A line or two above a group's settings, in both files.
GROUP_NOTES = {
    Group.JIBBLE_API: "Without both credentials the pipeline reads the project's simulator: "
    "a demo, not your data.",
    Group.WAREHOUSE: "Without `JIBBLE_DATABASE_URL` the project starts an embedded "
    "PostgreSQL under `JIBBLE_HOME`.",
    Group.DIRECTORY: "Who gets which client group's weekly digest: an Airtable table, or a "
    "YAML or CSV file.",
    Group.CONTRACTS: "Optional Airtable fields of a client's contract: hours a week, or seats "
    "and hours per seat.",
    Group.EMAIL: "How digests and the operations alert are sent.",
    Group.CORRECTIONS: "Corrections of weeks already reported; older weeks go to the "
    "operations alert instead.",
    Group.ALERTS: "Yesterday's problems per client group, each morning; emails go through "
    "the email backend above.",
    Group.DEPLOYMENT: "Read by Dagster and by deploy/docker-compose.yaml.",
}


def by_group() -> dict[Group, list[Setting]]:
    groups: dict[Group, list[Setting]] = {group: [] for group in Group}
    for setting in ALL_SETTINGS:
        groups[setting.group].append(setting)
    return groups


def default_text(setting: Setting) -> str:
    if setting.required:
        return "none: required"
    if setting.default_doc:
        return setting.default_doc
    return f"`{setting.default}`" if setting.default else "unset"


def settings_doc() -> str:
    lines = [
        "# Settings",
        "",
        f"<!-- Written by `{COMMAND}` from jibble_pipeline/settings/: edit there. -->",
        "",
        "Every setting is an environment variable; an unset or empty one takes its default. A",
        "value that cannot be read stops every command with one line naming the setting. A",
        "secret's value reaches Dagster only through `EnvVar`: it never appears in the UI, run",
        "configuration, logs, metadata or error messages. deploy/.env.example offers the same",
        "settings for a deployment.",
    ]
    for group, settings in by_group().items():
        lines += ["", f"## {group.value}", ""]
        if group in GROUP_NOTES:
            lines += [GROUP_NOTES[group], ""]
        lines += ["| variable | value | default | meaning | secret |", "|---|---|---|---|---|"]
        for s in settings:
            cells = (f"`{s.env}`", s.kind.takes, default_text(s), s.description)
            lines.append(f"| {' | '.join(cells)} | {'yes' if s.secret else ''} |")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, 90, initial_indent="# ", subsequent_indent="# ")


def env_example() -> str:
    lines = [
        f"# Written by `{COMMAND}`;",
        "# docs/settings.md describes every setting.",
        "# Copy to deploy/.env and fill in; keep that file out of version control (it holds",
        "# secrets). A setting left commented or empty takes its default.",
    ]
    for group, settings in by_group().items():
        offered = [s for s in settings if s.deployed]
        if not offered:
            continue
        lines += ["", f"# ---- {group.value}"]
        if group in GROUP_NOTES:
            lines += _comment(GROUP_NOTES[group])
        for s in offered:
            secret = " Secret." if s.secret else ""
            meaning = s.description[0].upper() + s.description[1:]
            lines += _comment(f"{meaning}. Default: {default_text(s)}.{secret}")
            value = s.example if s.example is not None else s.default or ""
            lines.append(f"{'' if s.required else '# '}{s.env}={value}")
    return "\n".join(lines) + "\n"


def main() -> None:
    SETTINGS_DOC.write_text(settings_doc())
    ENV_EXAMPLE.write_text(env_example())
    for path in (SETTINGS_DOC, ENV_EXAMPLE):
        print(f"Wrote {path.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
