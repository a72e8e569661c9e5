"""Durable re-check jobs (api.md "Re-check jobs"): millions of listings in one upload.

    upload ──► upload.py (gunzip, caps, digest, spool to a temporary file)
           ──► framing.py (lines → records, cut into chunks) ──► intake.py (one transaction)
    workers ─► queue.py (lease a chunk) ──► processing.py (parse, Checker, render)
           ──► queue.py (results + progress in one transaction) ──► views.py (NDJSON out)

worker.py runs the workers of a `serve` process, supervision.py restarts a loop that fails, and
housekeeping.py publishes the jobs by state and forgets old ones. The wire format of a line
(parse and render) belongs to api/ and is handed in as a LineCodec.
"""
