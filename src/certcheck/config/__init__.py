"""Settings, read from CERTCHECK_* environment variables (and an optional .env file).

One module per concern (database, registry, serving, limits, imports, sync, jobs, watch,
evidence) holds its fields and validators; settings.py composes them into `Settings`.
"""

from certcheck.config.database import DEFAULT_DATABASE_URL
from certcheck.config.serving import AuthMode
from certcheck.config.settings import Settings

__all__ = ["DEFAULT_DATABASE_URL", "AuthMode", "Settings"]
