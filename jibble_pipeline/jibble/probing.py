"""What a tenant accepts, found out by asking: request shapes tried in turn until one is
taken (``negotiated``, the one taken learned), and single requests answered as they are
(``Probe``, for ``jibble.doctor``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jibble_pipeline.jibble.errors import JibbleError, JibbleStatusError
from jibble_pipeline.jibble.tenant import TenantProfile


def negotiated(
    profile: TenantProfile,
    capability: str,
    candidates: tuple[str, ...],
    attempt: Callable[[str], Any],
    what: str,
) -> Any:
    """``attempt`` with the shape the tenant is known to take, else with each candidate
    in turn until one is not refused (400); the one taken is learned."""
    known = profile.get(capability)
    order = list(candidates)
    if known is not None:
        order = [known, *(c for c in candidates if c != known)]
    refusals: list[str] = []
    for candidate in order:
        try:
            result = attempt(candidate)
        except JibbleStatusError as error:
            if error.status != 400:
                raise
            refusals.append(f"{candidate or '(none)'} refused: {error.detail}")
            if candidate == known:
                profile.forget(capability)
            continue
        evidence = "; ".join(refusals) if refusals else "accepted"
        profile.learn(capability, candidate, evidence)
        return result
    raise JibbleError(
        f"GET {what}: Jibble refused every form the pipeline can use "
        f"({'; '.join(refusals)}). Run `jibble-pipeline doctor` and report what it prints."
    )


@dataclass(frozen=True)
class Probe:
    """One request as it was answered, for diagnosis (``jibble.doctor``): never an error for
    an HTTP status. ``body`` is the parsed JSON, or the text when it is not JSON."""

    status: int
    body: Any
    headers: Mapping[str, str]
    seconds: float

    @property
    def rows(self) -> list:
        rows = self.body.get("value") if isinstance(self.body, dict) else None
        return rows if isinstance(rows, list) else []

    @property
    def message(self) -> str:
        """What an error answer said, shortened."""
        if isinstance(self.body, dict):
            error = self.body.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return error["message"][:200]
            if isinstance(error, str):
                return error[:200]
        return str(self.body)[:200].strip()
