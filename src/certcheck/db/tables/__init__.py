"""Every table, one module per concern, all on the one MetaData of db/metadata.py.

Importing this package registers every table on `metadata`, which is what Alembic's env.py and
the drift test compare against the migrations; `from certcheck.db.tables import x` finds any
table whichever module defines it. A new concern's module is imported here.
"""

from certcheck.db.metadata import metadata
from certcheck.db.tables.evidence import check_records, signing_keys
from certcheck.db.tables.jobs import recheck_chunks, recheck_inputs, recheck_jobs, recheck_results
from certcheck.db.tables.keys import api_keys
from certcheck.db.tables.registry import certificates, changes, registry_runs, registry_state
from certcheck.db.tables.stats import check_counts, check_pairs, signal_counts, signal_merchants
from certcheck.db.tables.sync import sync_state
from certcheck.db.tables.watch import (
    watch_cursors,
    watch_events,
    watch_webhooks,
    watched_listings,
)

__all__ = [
    "api_keys",
    "certificates",
    "changes",
    "check_counts",
    "check_pairs",
    "check_records",
    "metadata",
    "recheck_chunks",
    "recheck_inputs",
    "recheck_jobs",
    "recheck_results",
    "registry_runs",
    "registry_state",
    "signal_counts",
    "signal_merchants",
    "signing_keys",
    "sync_state",
    "watch_cursors",
    "watch_events",
    "watch_webhooks",
    "watched_listings",
]
