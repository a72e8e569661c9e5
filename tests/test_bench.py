"""The benchmark harness (`python -m bench`) still runs and writes the figures it promises.

Figures themselves are not checked: they depend on the machine. A quick run of the cheapest
scenario (a SQLite import against the plain loader; no wrk, no PostgreSQL) keeps the harness
from rotting between the runs someone makes by hand.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bench.measures import Figure, same_as
from bench.prepare import QUICK
from bench.recheck import through_batches
from bench.scenarios import catalogue, select

REPOSITORY = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


class TestQuickRun:
    def test_import_sqlite_writes_a_row_per_scenario_with_positive_figures(
        self, tmp_path: Path
    ) -> None:
        out = tmp_path / "bench.json"
        command = [sys.executable, "-m", "bench", "--quick", "--rounds", "1"]
        command += ["--certificates", "2000", "--only", "import-sqlite", "--json-out", str(out)]
        done = subprocess.run(
            command, cwd=REPOSITORY, env=_env(), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr

        report = json.loads(out.read_text())
        assert report["meta"]["quick"] is True
        assert report["meta"]["sizes"]["certificates"] == 2000
        # The baseline comes along with the scenario, so the ratio has its denominator.
        assert list(report["scenarios"]) == ["plain-load-sqlite", "import-sqlite"]
        for row in report["scenarios"].values():
            assert row["unit"] == "s"
            assert row["value"] > 0
            assert row["server_cpu"] > 0
            assert row["rss_mib"] > 0
            assert len(row["rounds"]) == 1
        imported = report["scenarios"]["import-sqlite"]
        assert imported["baseline"] == "plain-load-sqlite"
        assert imported["ratio"] > 0
        assert [t["label"] for t in imported["targets"]] == ["≥0.9x plain executemany"]
        assert isinstance(imported["targets"][0]["met"], bool)
        assert "import-sqlite" in done.stdout  # the table


def _env() -> dict[str, str]:
    # The sources under test first, as pytest has them, whatever the shell's PYTHONPATH says.
    paths = [str(REPOSITORY / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


class TestRecordsScenarios:
    """The check-record rows repeat a figure against the same load without records."""

    def test_a_records_row_brings_its_measurement_and_its_baseline(self) -> None:
        everything = catalogue(QUICK)
        chosen = [s.name for s in select(everything, ["records-verify-pg"], baselines=True)]
        # In catalogue order: the measured figure and its records-off twin before the row.
        assert chosen == [
            "bare",
            "verify-warm-pg",
            "verify-warm-pg-records-off",
            "records-verify-pg",
        ]
        by_name = {s.name: s for s in everything}
        assert by_name["records-recheck-pg"].baseline == "recheck-job-pg-records-off"
        assert by_name["cache-full-pg"].lower_is_better

    def test_the_row_reports_the_figure_measured_in_its_round(self) -> None:
        measured = Figure(1234.0, p99_ms=5.0, detail={"loop": "closed"})
        again = same_as("verify-warm-pg")(None, {"verify-warm-pg": measured})  # type: ignore[arg-type]
        assert again.value == 1234.0
        assert again.p99_ms == 5.0
        assert again.detail == {"loop": "closed", "same_as": "verify-warm-pg"}


class _Unready(http.server.BaseHTTPRequestHandler):
    """POST /v1/verify/batch: 503 with Retry-After to the first `refusals` posts, then a
    summary-only answer counting the items of the body."""

    refusals = 2
    posts: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append(body)
        if len(self.posts) <= self.refusals:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        items = json.loads(body)["items"]
        answer = b'{"results":[],"summary":{"allow":%d,"block":0,"review":0}}' % len(items)
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TestBatchPath:
    def test_a_503_with_retry_after_is_retried_as_a_platform_would(self, tmp_path: Path) -> None:
        listings = tmp_path / "listings.ndjson"
        listings.write_text("".join(f'{{"cert_no":"{n}"}}\n' for n in range(5)))
        _Unready.posts = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unready)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            done = through_batches(f"http://127.0.0.1:{server.server_port}", "k", listings, 3)
        finally:
            server.shutdown()
            server.server_close()
        assert done.counts == (5, 0, 0)
        assert done.phases["retries"] == 2
        assert len(_Unready.posts) == 4  # the first batch three times, the second once
        assert _Unready.posts[0] == _Unready.posts[2]


class TestStatsRead:
    @pytest.mark.postgres
    @pytest.mark.usefixtures("postgres_url")  # skipped without the server, failed in CI
    def test_it_reads_both_databases_and_checks_the_counts(self) -> None:
        """bench.stats fails unless the service's figures are the rows it filled."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.stats",
                "--listings",
                "500",
                "--merchants",
                "7",
                "--rounds",
                "1",
            ],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        for kind in ("sqlite", "postgresql"):
            assert f"{kind}: 500 listings filled" in done.stdout
        rows = [line.split() for line in done.stdout.splitlines() if line.startswith("day ")]
        assert len(rows) == 2
        assert all(float(row[1]) > 0 and float(row[3]) > 0 for row in rows)


class TestInstructions:
    def test_records_on_counts_the_flush_in_the_process(self) -> None:
        """bench.instructions runs the loop under callgrind and counts only the requests: on
        SQLite the records' writing runs in the process, so records on must count more."""
        if shutil.which("valgrind") is None:
            reason = "valgrind is not installed (Debian: apt-get install valgrind)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{reason} (CI=true: .ci/run installs it)")
            pytest.skip(reason)
        command = ["-m", "bench.instructions", "--database", "sqlite", "--hot", "50"]
        done = subprocess.run(
            [sys.executable, *command, "--requests", "20", "--rounds", "1"],
            cwd=REPOSITORY,
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        line = r"^sqlite .*records off ([\d,]+); on ([\d,]+) \+ flush ([\d,]+) a record = ([\d,]+)"
        figures = re.search(line, done.stdout, re.M)
        assert figures is not None, done.stdout
        off, on, flush, total = (int(figures.group(i).replace(",", "")) for i in range(1, 5))
        # A verify is tens of thousands of instructions; the app's start-up (billions) is not
        # counted, nor is the warm-up.
        assert 10_000 < off < 5_000_000
        assert flush > 0
        assert abs(total - (on + flush)) <= 1  # each printed rounded
        assert total > off
