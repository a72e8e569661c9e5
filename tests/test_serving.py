"""The served app as uvicorn's factory builds it in each worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from certcheck.serving import available_cores, cgroup_cpu_quota

_FROZEN = """
import gc, sys
from certcheck.serving import served_app
app = served_app()
print(gc.get_freeze_count(), any(o is app for o in gc.get_objects()), sys.getswitchinterval())
"""


def test_start_up_objects_are_out_of_the_collectors_sight_and_threads_switch_often(
    tmp_path: Path,
) -> None:
    # A process of its own: the factory configures logging and freezes the whole heap.
    env = {**os.environ, "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", _FROZEN], env=env, capture_output=True, text=True, check=True
    )
    frozen, app_tracked, switch_interval = done.stdout.split()
    # Full collections during bulk work then walk only what was made since (issue #10).
    assert int(frozen) > 50_000
    assert app_tracked == "False"
    # The event loop waits at most 1 ms, not 5, for a computing thread to let go of the GIL.
    assert float(switch_interval) == 0.001


# As `run` starts one worker: uvicorn's Config, then the factory in the worker, then a
# connection's protocol.
_ACCESS_LOG = """
import asyncio, uvicorn
from uvicorn.server import ServerState
from certcheck.config import Settings
from certcheck.http_protocol import GuardedHttpToolsProtocol
from certcheck.serving import _APP, served_app, uvicorn_options
config = uvicorn.Config(_APP, **uvicorn_options(Settings(), 1))
served_app()
loop = asyncio.new_event_loop()
print(GuardedHttpToolsProtocol(config, ServerState(), {}, loop).access_log)
"""


def test_uvicorn_makes_no_access_line_of_its_own(tmp_path: Path) -> None:
    # Our request log has the line; uvicorn's would be made for each answer and then dropped.
    env = {**os.environ, "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", _ACCESS_LOG], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False"]


class TestWorkerCount:
    """`serve` without --workers starts one process per core it may use (issue 12)."""

    def test_no_quota_means_every_core_of_the_affinity(self, tmp_path: Path) -> None:
        limits = tmp_path / "cpu.max"
        limits.write_text("max 100000\n")
        assert cgroup_cpu_quota(str(limits)) is None
        assert available_cores() == min(len(os.sched_getaffinity(0)), _quota_or_many())

    def test_a_quota_is_rounded_up_to_whole_cores(self, tmp_path: Path) -> None:
        limits = tmp_path / "cpu.max"
        limits.write_text("150000 100000\n")
        assert cgroup_cpu_quota(str(limits)) == 2
        limits.write_text("20000 100000\n")  # a fifth of a core still gets one worker
        assert cgroup_cpu_quota(str(limits)) == 1

    def test_no_cgroup_file_means_no_quota(self, tmp_path: Path) -> None:
        assert cgroup_cpu_quota(str(tmp_path / "absent")) is None

    def test_help_names_the_default_and_the_setting(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "certcheck", "serve", "--help"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert "CERTCHECK_WORKERS" in done.stdout
        assert "one per CPU core available" in done.stdout


def _quota_or_many() -> int:
    return cgroup_cpu_quota() or 1 << 20
