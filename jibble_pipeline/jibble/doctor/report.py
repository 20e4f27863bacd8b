"""What the doctor prints (a plain-text table, or JSON with ``--json``) and the redacted
sample it writes with ``--sample``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jibble_pipeline.jibble.doctor.findings import Diagnosis
from jibble_pipeline.jibble.redact import Redactor

SAMPLE_README = (
    "The first page each Jibble endpoint answered, as jibble-pipeline doctor read it.\n"
    "Names, emails, notes, phone numbers, addresses, pictures and coordinates are\n"
    "replaced by placeholders; every id is replaced by a digest that is the same\n"
    "wherever the id appears (salted for this sample only). Times, durations,\n"
    "statuses and field names are as Jibble sent them.\n"
)


def as_json(diagnosis: Diagnosis) -> str:
    findings = [vars(finding) for finding in diagnosis.findings]
    summary = {"requests": diagnosis.requests, "seconds": round(diagnosis.seconds, 1)}
    return json.dumps({"findings": findings, **summary, "blocked": diagnosis.blocked})


def as_text(diagnosis: Diagnosis) -> str:
    """The findings as a plain-text table, and the requests it took."""
    return f"{_table(diagnosis)}\n\n{diagnosis.requests} requests in {diagnosis.seconds:.1f} s."


def write_sample(folder: Path, samples: dict[str, Any]) -> Path:
    """The first page of each endpoint, redacted (``jibble.redact``), one JSON file each."""
    folder.mkdir(parents=True, exist_ok=True)
    redactor = Redactor()
    for name, body in samples.items():
        text = json.dumps(redactor.redact(body), indent=2, ensure_ascii=False)
        (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    (folder / "README.txt").write_text(SAMPLE_README, encoding="utf-8")
    return folder


def _table(diagnosis: Diagnosis) -> str:
    headers = ("capability", "what the tenant answered", "what the pipeline will do")
    rows = [
        (("BLOCKS: " if f.blocking else "") + f.capability, f.answered, f.will_do)
        for f in diagnosis.findings
    ]
    widths = [min(60, max(len(r[i]) for r in [headers, *rows])) for i in range(3)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for row in rows:
        wrapped = [_wrap(cell, width) for cell, width in zip(row, widths, strict=True)]
        for n in range(max(len(w) for w in wrapped)):
            lines.append(
                " | ".join(
                    (w[n] if n < len(w) else "").ljust(width)
                    for w, width in zip(wrapped, widths, strict=True)
                )
            )
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines or [""]
