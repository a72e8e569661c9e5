"""The fault layer: certcheck served as a real process while its database fails under it.

Each test starts `certcheck serve` on loopback against a PostgreSQL cluster the session creates
itself (initdb into a temporary directory, so tests may kill, stop and SIGSTOP it), through a
TCP fault proxy written here (proxy.py: pass, delay, blackhole, reset, close-after-N-bytes,
switchable at runtime). Every scenario drives verify requests with httpx and holds every answer
to the contract (load.py): never an `allow` the registry does not support, every failure a 503
problem document with a `code` and `Retry-After` within CERTCHECK_DB_TIMEOUT + 250 ms, never a
500, and recovery without restarting certcheck.

Marked `faults` (and `e2e`); each test has a hard timeout (pytest-timeout). Needs the PostgreSQL
server programs (initdb, pg_ctl); as root they run as the `postgres` OS user.
"""
