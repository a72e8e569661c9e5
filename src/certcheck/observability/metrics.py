"""The Prometheus metrics (prometheus-client). No label holds an unbounded value.

Labels are route templates, status codes, decisions, reasons, outcomes and states: closed sets.
Under `serve --workers N` the values live in PROMETHEUS_MULTIPROC_DIR and /metrics merges them.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

# The latency objective for POST /v1/verify is 100 ms at p99: it gets a bucket of its own.
LATENCY_OBJECTIVE_SECONDS = 0.1

REQUEST_DURATION = Histogram(
    "certcheck_http_request_duration_seconds",
    "HTTP request duration by route template, method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, LATENCY_OBJECTIVE_SECONDS, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "certcheck_decisions_total",
    "Decisions given, by decision and primary reason.",
    ["decision", "reason"],
)
CACHE_LOOKUPS = Counter(
    "certcheck_registry_cache_lookups_total",
    "Certificate look-ups by where the answer came from.",
    ["result"],
)
UNAVAILABLE = Counter(
    "certcheck_unavailable_responses_total",
    "Answers of 503 instead of a decision, by problem code.",
    ["code"],
)
REGISTRY_CERTIFICATES = Gauge(
    "certcheck_registry_certificates",
    "Certificates in the registry, by status.",
    ["status"],
    multiprocess_mode="livemax",
)
REGISTRY_AGE = Gauge(
    "certcheck_registry_age_seconds",
    "Seconds since the last successful import or sync committed.",
    multiprocess_mode="livemax",
)
REGISTRY_GENERATION = Gauge(
    "certcheck_registry_generation",
    "Registry generation this process answers from.",
    multiprocess_mode="livemin",
)
REGISTRY_RUNS = Counter(
    "certcheck_registry_runs_total",
    "Imports and syncs by kind and outcome.",
    ["kind", "outcome"],
)
SYNC_LAST_SUCCESS = Gauge(
    "certcheck_sync_last_success_timestamp_seconds",
    "Unix time of the last successful upstream sync.",
    multiprocess_mode="livemax",
)
RECHECK_LINES = Counter(
    "certcheck_recheck_lines_processed_total",
    "Re-check job lines answered, by decision.",
    ["decision"],
)
RECHECK_JOBS = Gauge(
    "certcheck_recheck_jobs",
    "Re-check jobs by state.",
    ["state"],
    multiprocess_mode="livemax",
)
RECHECK_CHUNK_FAILURES = Counter(
    "certcheck_recheck_chunk_failures_total",
    "Re-check chunks whose processing failed; each is retried until its attempts run out.",
)
JOB_WORKERS_RUNNING = Gauge(
    "certcheck_job_workers_running",
    "Job worker tasks running; fewer than CERTCHECK_JOB_WORKERS means some crashed.",
    multiprocess_mode="livesum",
)
JOB_WORKER_CRASHES = Counter(
    "certcheck_job_worker_crashes_total",
    "Job worker and housekeeping loops that failed unexpectedly and were restarted, by task.",
    ["task"],
)
WATCHED_LISTINGS = Gauge(
    "certcheck_watched_listings",
    "Listings watched, all platforms together (refreshed by the watch processor's housekeeping).",
    multiprocess_mode="livemax",
)
WATCH_EVENTS = Counter(
    "certcheck_watch_events_total",
    "Watch events recorded (a watched listing's decision changed), by new decision.",
    ["decision"],
)
WATCH_ROUNDS = Counter(
    "certcheck_watch_rounds_total",
    "Rounds of the watch processor that did work, by kind (change feed or expiry pass).",
    ["kind"],
)
WEBHOOK_DELIVERIES = Counter(
    "certcheck_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: acknowledged (2xx), rejected (another status, "
    "redirects included), timeout, unreachable, refused_address.",
    ["outcome"],
)
WEBHOOK_DELIVERY_LAG = Histogram(
    "certcheck_webhook_delivery_lag_seconds",
    "Seconds from an event's recording to its acknowledgement by the platform's webhook.",
    buckets=(1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
WEBHOOK_DEAD_LETTERS = Counter(
    "certcheck_webhook_dead_letters_total",
    "Events given up on after CERTCHECK_WEBHOOK_RETRY_HOURS of failed deliveries.",
)
WEBHOOKS_PENDING = Gauge(
    "certcheck_webhooks_pending",
    "Events recorded for a registered webhook and not yet acknowledged, all platforms.",
    multiprocess_mode="livemax",
)
WEBHOOKS_FAILING = Gauge(
    "certcheck_webhooks_failing",
    "Registered webhooks whose next event has failed at least once.",
    multiprocess_mode="livemax",
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "certcheck_webhook_oldest_pending_seconds",
    "Age of the oldest event not yet acknowledged by its webhook, all platforms (0: none).",
    multiprocess_mode="livemax",
)
CHECK_RECORDS_WRITTEN = Counter(
    "certcheck_check_records_written_total",
    "Check records written to the database, by source (verify, batch, job).",
    ["source"],
)
CHECK_RECORDS_DROPPED = Counter(
    "certcheck_check_records_dropped_total",
    "Check records dropped because the buffer was full (CERTCHECK_CHECK_BUFFER_FULL=shed).",
)
CHECK_RECORDS_REFUSED = Counter(
    "certcheck_check_records_refused_total",
    "Check records dropped because the database refused a value in them; each is logged.",
)
CHECK_RECORDS_BUFFERED = Gauge(
    "certcheck_check_records_buffered",
    "Check records waiting in this process's buffer to be written, as of its last flush.",
    multiprocess_mode="livesum",
)
CHECK_RECORD_FLUSH_FAILURES = Counter(
    "certcheck_check_record_flush_failures_total",
    "Flushes of the check record buffer that failed; their records are tried again.",
)
CHECK_RECORDS_WAITS = Counter(
    "certcheck_check_record_buffer_waits_total",
    "Times a request waited for room in a full buffer (CERTCHECK_CHECK_BUFFER_FULL=wait).",
)


# Children bound once: `labels()` builds a key and takes a lock on every call, a cost the
# per-request paths paid several times per answer. The label values are closed sets (see above),
# so the caches stay small; the bound is a guard, not a limit in practice.


@functools.lru_cache(maxsize=1024)
def request_duration(route: str, method: str, status: int) -> Histogram:
    return REQUEST_DURATION.labels(route=route, method=method, status=str(status))


@functools.lru_cache(maxsize=256)
def decisions(decision: str, reason: str) -> Counter:
    return DECISIONS.labels(decision=decision, reason=reason)


CACHE_HITS = CACHE_LOOKUPS.labels(result="hit")
CACHE_MISSES = CACHE_LOOKUPS.labels(result="miss")
