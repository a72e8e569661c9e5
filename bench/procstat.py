"""CPU and memory of processes from /proc (Linux): what a server or a load generator cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_LAUNCH = Path(__file__).with_name("launch.py")


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """`pid` and its descendants alive now (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User plus system CPU each process has used so far (fields utime and stime)."""
    used: dict[int, float] = {}
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return used


def peak_rss_mib(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM): exact, where sampling can miss."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak RSS needs Linux")


@dataclass
class CpuWindow:
    """The CPU a process tree uses between `start()` and `stop()`, in cores (1.0: one core)."""

    pid: int
    _before: dict[int, float] | None = None
    _started: float = 0.0
    cores: float = 0.0
    peak_rss_mib: float = 0.0  # the largest process of the tree: per worker, not summed

    def start(self) -> None:
        self._before = cpu_seconds(tree(self.pid))
        self._started = time.perf_counter()

    def stop(self) -> None:
        assert self._before is not None, "stop() before start()"
        pids = tree(self.pid)
        after = cpu_seconds(pids)
        used = sum(after[p] - self._before.get(p, 0.0) for p in after)
        self.cores = used / (time.perf_counter() - self._started)
        rss = [peak_rss_mib(p) for p in pids if p in after]
        # The supervisor of `serve --workers N` does no work: count the largest worker.
        self.peak_rss_mib = max(rss, default=0.0)


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_cores: float  # user + system CPU over the wall time
    cpu_seconds: float
    peak_rss_mib: float


def run_measured(command: list[str], env: dict[str, str] | None = None) -> Finished:
    """Run `command` to its end; its wall time, CPU and peak RSS (wait4's rusage) as measured by
    launch.py, which starts it: forked from this process, its peak would be ours."""
    read, write = os.pipe()
    launcher = [sys.executable, str(_LAUNCH), str(write), *command]
    try:
        process = subprocess.Popen(
            launcher,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(write,),
        )
    finally:
        os.close(write)
    with os.fdopen(read) as figures_pipe:
        out, err = _drain(process)
        figures = figures_pipe.read()
    process.wait()
    if not figures:  # the launcher itself failed
        return Finished(process.returncode or 1, out, err, 0.0, 0.0, 0.0, 0.0)
    done = json.loads(figures)
    seconds = done["seconds"]
    return Finished(
        done["returncode"],
        out,
        err,
        seconds,
        done["cpu_seconds"] / seconds,
        done["cpu_seconds"],
        done["peak_rss_mib"],
    )


def _drain(process: subprocess.Popen[str]) -> tuple[str, str]:
    # communicate() would reap the child and lose its rusage: read the pipes, reap ourselves.
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None
    assert stderr is not None
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(stderr.read()), daemon=True)
    reader.start()
    out = stdout.read()
    reader.join()
    return out, "".join(err)
