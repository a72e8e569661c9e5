"""Starting `certcheck fake-upstream` as a real process on a free loopback port."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.servers import free_port
from tests.feeds import write_jsonl

_REQUEST = re.compile(r"request \d+: page (\d+), faults: ([^\"]*)")  # plain or JSON log lines


@dataclass
class Fake:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def requests(self, at_least: int = 0, seconds: float = 30) -> list[tuple[int, str]]:
        """(page, faults applied) of every request served, in order, once `at_least` are
        logged: the fake logs from a thread of its own, a moment after it answers."""
        deadline = time.monotonic() + seconds
        while True:
            found = (_REQUEST.search(line) for line in self.output().splitlines())
            served = [(int(m[1]), m[2].strip()) for m in found if m]
            if len(served) >= at_least or time.monotonic() > deadline:
                return served
            time.sleep(0.02)


@contextlib.contextmanager
def running_fake(workdir: Path, items: list[dict[str, Any]], *faults: str) -> Iterator[Fake]:
    port = free_port()
    snapshot = write_jsonl(workdir / f"upstream-{port}.jsonl", items)
    log = workdir / f"upstream-{port}.log"
    command = [sys.executable, "-m", "certcheck", "fake-upstream", "--snapshot", str(snapshot)]
    command += ["--port", str(port), *(f"--fault={fault}" for fault in faults)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        fake = Fake(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_listening(fake, port)
            yield fake
        finally:
            process.kill()  # a test double: nothing to shut down gracefully
            process.wait(timeout=10)


def _wait_listening(fake: Fake, port: int, seconds: float = 60) -> None:
    # A TCP connect, not a request: requests are counted, and faults are scripted by count.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if fake.process.poll() is not None:
            raise AssertionError(f"fake-upstream exited:\n{fake.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"fake-upstream did not listen within {seconds} s:\n{fake.output()}")


class Fakes:
    """Fake upstreams kept for a whole module, one per fault; for faults that keep no count
    (`@pageN`), whose answers are the same however often they are asked."""

    def __init__(self, workdir: Path, items: list[dict[str, Any]]) -> None:
        self._workdir = workdir
        self._items = items
        self._running: dict[str, Fake] = {}
        self._stack = contextlib.ExitStack()

    def get(self, fault: str) -> Fake:
        if fault not in self._running:
            self._running[fault] = self._stack.enter_context(
                running_fake(self._workdir, self._items, fault)
            )
        return self._running[fault]

    def close(self) -> None:
        self._stack.close()
