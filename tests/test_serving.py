"""The served app as uvicorn's factory builds it in each worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_FROZEN = """
import gc
from certcheck.serving import served_app
app = served_app()
print(gc.get_freeze_count(), any(o is app for o in gc.get_objects()))
"""


def test_start_up_objects_are_out_of_the_collectors_sight(tmp_path: Path) -> None:
    # A process of its own: the factory configures logging and freezes the whole heap.
    env = {**os.environ, "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", _FROZEN], env=env, capture_output=True, text=True, check=True
    )
    frozen, app_tracked = done.stdout.split()
    # Full collections during bulk work then walk only what was made since (issue #10).
    assert int(frozen) > 50_000
    assert app_tracked == "False"
