"""The settings a command runs with, read from the environment (used by cli.py and commands.py)."""

from __future__ import annotations

import os

from pydantic import ValidationError

from certcheck.config import DEFAULT_DATABASE_URL, Settings


class SettingsError(ValueError):
    """A CERTCHECK_* variable is unusable; the message names it, on one line."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def use_demo_database() -> Settings:
    """`serve --demo` runs on the embedded default, whatever the environment says.

    Set in the environment, not only passed on: uvicorn's worker processes read it from there.
    """
    os.environ["CERTCHECK_DATABASE_URL"] = DEFAULT_DATABASE_URL
    return load_settings()


def _one_line(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = f"CERTCHECK_{str(error['loc'][0]).upper()}: {message}"
        reasons.append(message)
    return "; ".join(reasons)
