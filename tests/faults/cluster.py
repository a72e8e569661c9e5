"""A throw-away PostgreSQL cluster the fault tests own, so they may kill, stop and freeze it.

initdb refuses to run as root: as root every PostgreSQL program runs as the `postgres` OS user
(`runuser`), in a temporary directory that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.servers import free_port

_SEARCH = ("/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))


def find_initdb() -> str | None:
    for directory in _SEARCH:
        path = os.path.join(directory, "initdb")
        if os.access(path, os.X_OK):
            return path
    return shutil.which("initdb")


class Cluster:
    """initdb, pg_ctl and signals for one data directory on a free loopback port."""

    def __init__(self, initdb: str) -> None:
        self._bin = Path(os.path.realpath(initdb)).parent
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="certcheck-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def url(self, database: str, *, port: int | None = None, driver: str = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{port or self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(self._bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}\n{self.tail()}")

    def init(self) -> None:
        args = ["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
        self._run("initdb", "-D", str(self.data), *args)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        data, log = str(self.data), str(self.log)
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.thaw()  # a frozen postmaster would never stop
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        return [postmaster, *_children(postmaster)]

    def freeze(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def ensure_running(self) -> None:
        self.thaw()
        if not self.running():
            self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _children(parent: int) -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            yield int(entry)
