"""Shared helpers for the benchmarks: scratch databases, CLI calls, served processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


class BenchError(Exception):
    """A measurement that could not be made; the run goes on with the other scenarios."""


REPOSITORY = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN = os.environ.get(
    "CERTCHECK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def database_url(kind: str, workdir: Path, label: str = "bench") -> str:
    """A new, empty database: a SQLite file in `workdir`, or one on the PostgreSQL server."""
    if kind == "sqlite":
        path = workdir / f"{label}.db"
        path.unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    name = f"certcheck_{label}_{os.getpid()}"
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def copy_database(template: str, kind: str, workdir: Path, label: str) -> str:
    """A copy of the database at `template` (nobody may be connected to it)."""
    url = database_url(kind, workdir, label)
    if kind == "sqlite":
        shutil.copyfile(template.split(":///", 1)[1], url.split(":///", 1)[1])
        return url
    name, source = url.rsplit("/", 1)[1], template.rsplit("/", 1)[1]
    _psql(f'DROP DATABASE "{name}"')
    _psql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        _psql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _psql(statement: str) -> str:
    done = subprocess.run(
        ["psql", POSTGRES_ADMIN, "-qAtc", statement], check=True, capture_output=True, text=True
    )
    return done.stdout


_VACUUMING = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"


def settle_postgres(patience: float = 60.0) -> float:
    """Let PostgreSQL finish what the scenario before left it: write its dirty pages (a
    CHECKPOINT) and wait, up to `patience` seconds, for autovacuum to end. Without it, a
    scenario that follows a big write (the plain COPY before an import, a job's records)
    pays for that write's checkpoint on the same two cores. The seconds it took."""
    started = time.perf_counter()
    _psql("CHECKPOINT")
    while _psql(_VACUUMING).strip() not in ("", "0"):
        if time.perf_counter() - started > patience:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "certcheck", *args],
        env=python_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"certcheck {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    base: str
    pid: int


def python_env(env: dict[str, str]) -> dict[str, str]:
    """`env` over ours, with this repository (and an absolute PYTHONPATH) importable anywhere:
    servers run in a scratch directory."""
    paths = [str(REPOSITORY), *(str(Path(p).resolve()) for p in _pythonpath() if p)]
    # Settings of the caller's shell would skew a run: only the benchmark's own count.
    ours = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
    return {**ours, **env, "PYTHONPATH": os.pathsep.join(paths)}


def _pythonpath() -> list[str]:
    return os.environ.get("PYTHONPATH", "").split(os.pathsep)


def certcheck_serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "certcheck", "serve", *args]


def uvicorn_app(target: str) -> list[str]:
    """A baseline app on uvicorn with uvloop and httptools, one worker, no access log."""
    return [
        *(sys.executable, "-m", "uvicorn", target, "--loop", "uvloop", "--http", "httptools"),
        *("--no-access-log", "--log-level", "warning"),
    ]


@contextlib.contextmanager
def served(
    env: dict[str, str], workdir: Path, command: list[str], ready: str = "/readyz"
) -> Iterator[Served]:
    """`command --port P` running until the block ends, once GET `ready` answers 200."""
    port = free_port()
    with (workdir / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=python_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, f"{base}{ready}")
            yield Served(base, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"the server behind {url} did not become ready; see serve.log")
