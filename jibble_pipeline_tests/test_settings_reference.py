"""The settings reference and deploy/.env.example are written from the settings' definitions,
and every setting the package names is defined there."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from jibble_pipeline.settings.reference import (
    ALL_SETTINGS,
    COMMAND,
    ENV_EXAMPLE,
    PROJECT_ROOT,
    SETTINGS_DOC,
    env_example,
    settings_doc,
)

PACKAGE = PROJECT_ROOT / "jibble_pipeline"
SETTING_NAME = re.compile(r"\b(?:JIBBLE|AIRTABLE|SMTP|RESEND|DAGSTER)_[A-Z0-9_]*[A-Z0-9]\b")


def test_the_written_files_are_up_to_date():
    for path, text in ((SETTINGS_DOC, settings_doc()), (ENV_EXAMPLE, env_example())):
        assert path.read_text() == text, f"{path.name} is stale: run `{COMMAND}`"


def names_in_strings_and_comments(source: Path) -> set[str]:
    """Setting names in the file's strings, docstrings and comments: code identifiers such
    as the ``JIBBLE_TENANT`` table or ``smtplib.SMTP_SSL`` are not settings."""
    names: set[str] = set()
    for token in tokenize.generate_tokens(io.StringIO(source.read_text()).readline):
        if token.type in (tokenize.STRING, tokenize.COMMENT):
            names.update(SETTING_NAME.findall(token.string))
    return names


def test_every_setting_the_package_names_is_defined_once():
    defined = [setting.env for setting in ALL_SETTINGS]
    assert len(defined) == len(set(defined))
    named = {
        (name, str(source.relative_to(PROJECT_ROOT)))
        for source in PACKAGE.rglob("*.py")
        for name in names_in_strings_and_comments(source)
    }
    undefined = sorted(pair for pair in named if pair[0] not in defined)
    assert not undefined, f"named in the package but not defined as settings: {undefined}"
    assert any(name == "JIBBLE_EMBEDDED_POSTGRES" for name, _ in named)


def test_secrets_stay_out_of_reprs():
    from jibble_pipeline.settings.pipeline import load_settings

    settings = load_settings(
        {
            "JIBBLE_CLIENT_ID": "id-7f3a",
            "JIBBLE_CLIENT_SECRET": "hunter2secret",
            "JIBBLE_DATABASE_URL": "postgresql://u:pa55word@db.example/jibble",
        }
    )
    assert not [
        value for value in ("id-7f3a", "hunter2secret", "pa55word") if value in repr(settings)
    ]
    assert settings.client_secret == "hunter2secret"
