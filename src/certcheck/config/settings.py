"""The one `Settings`: every concern's fields, read from CERTCHECK_* variables (and .env).

Each concern declares its fields and the validators that check them in a module of its own;
`Settings` composes them. An environment variable is `CERTCHECK_` + the field name in capitals
whichever concern declares it, so moving a field between concerns changes no variable.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from certcheck.config.database import DatabaseSettings
from certcheck.config.evidence import EvidenceSettings
from certcheck.config.imports import ImportSettings
from certcheck.config.jobs import JobSettings
from certcheck.config.limits import RequestLimitSettings
from certcheck.config.registry import RegistrySettings
from certcheck.config.serving import ServingSettings
from certcheck.config.sync import SyncSettings
from certcheck.config.watch import WatchSettings


# Pydantic collects fields from the last base to the first: listed bottom-up, they read from
# the database at the top of Settings.model_fields to evidence at the end.
class Settings(
    EvidenceSettings,
    WatchSettings,
    JobSettings,
    SyncSettings,
    ImportSettings,
    RequestLimitSettings,
    ServingSettings,
    RegistrySettings,
    DatabaseSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(
        env_prefix="CERTCHECK_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # A validation error must not print the settings it was given: the token is among them.
        hide_input_in_errors=True,
    )
