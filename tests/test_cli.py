"""The `certcheck` command as a newcomer meets it: help texts, first runs, failures in one line."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import httpx
import pytest

from certcheck.cli import certcheck
from certcheck.cli.progress import progress
from tests.conftest import POSTGRES_ADMIN_URL, _admin, run_sync
from tests.e2e.servers import free_port

TOP = Path(__file__).resolve().parents[1]
DATABASE_COMMANDS = [
    "serve",
    "db upgrade",
    "import",
    "sync",
    "keys create",
    "keys revoke",
    "verify",
    "recheck",
]


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m certcheck ARGS` in `cwd`, with no CERTCHECK_* setting but those in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
    return subprocess.run(
        [sys.executable, "-m", "certcheck", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(TOP / "src"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_failure(done: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert done.returncode == status, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("certcheck: ")
    return line


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


class TestHelp:
    def test_names_only_what_exists(self, tmp_path: Path) -> None:
        done = run(tmp_path, "--help")
        assert done.returncode == 0
        assert "migrate" not in done.stdout
        assert "../" not in done.stdout
        assert done.stdout.startswith("Usage: certcheck ")

    def test_every_option_says_what_it_does_and_its_default(self) -> None:
        for name, command in commands(certcheck):
            for param in command.params:
                if isinstance(param, click.Option) and param.name != "help":
                    assert param.help, f"{name} {param.opts[0]} has no help"
                    context = click.Context(command, info_name=name, show_default=True)
                    default = param.get_default(context, call=False)
                    if isinstance(default, int | str) and not param.is_flag:
                        record = param.get_help_record(context)
                        assert record is not None
                        assert "default:" in record[1], f"{name} {param.opts[0]}"

    @pytest.mark.parametrize("name", DATABASE_COMMANDS)
    def test_database_commands_name_their_database(self, name: str, tmp_path: Path) -> None:
        done = run(tmp_path, *name.split(), "--help")
        assert done.returncode == 0
        text = " ".join(done.stdout.split())
        assert "CERTCHECK_DATABASE_URL" in text
        assert "./certcheck.db in the current directory" in text

    def test_every_command_says_which_database_it_touches(self) -> None:
        for name, command in commands(certcheck):
            context = click.Context(command, info_name=name)
            text = " ".join(command.get_help(context).split())
            assert "CERTCHECK_DATABASE_URL" in text or "Touches no database" in text, name

    def test_sync_needs_the_upstream(self, tmp_path: Path) -> None:
        assert "CERTCHECK_UPSTREAM_URL" in run(tmp_path, "sync", "--help").stdout

    def test_verify_documents_its_exit_statuses(self, tmp_path: Path) -> None:
        text = " ".join(run(tmp_path, "verify", "--help").stdout.split())
        assert "0 allow, 3 block, 4 review" in text

    def test_fake_upstream_lists_its_faults_one_a_line(self, tmp_path: Path) -> None:
        lines = [
            line.strip() for line in run(tmp_path, "fake-upstream", "--help").stdout.splitlines()
        ]
        assert "truncate           send half of the body, then close the connection" in lines
        assert "loop               next_page_token repeats this page's own token" in lines

    def test_the_repository_never_points_outside_itself(self) -> None:
        outside = ".." + "/shared"
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=TOP, capture_output=True, text=True, check=True
        ).stdout.split()
        mentions = [
            name
            for name in tracked
            if (TOP / name).is_file() and outside in (TOP / name).read_text(errors="replace")
        ]
        assert mentions == []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings naming a database no `db upgrade` has touched (SQLite: the default, absent)."""
    if request.param == "sqlite":
        yield {}
        return
    name = f"certcheck_blank_{uuid.uuid4().hex[:12]}"
    run_sync(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield {"CERTCHECK_DATABASE_URL": f"{base}/{name}"}
    finally:
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class TestBeforeDbUpgrade:
    @pytest.mark.parametrize(
        "args",
        [
            ["import", "registry.csv"],
            ["verify", "2020010901234567"],
            ["keys", "create", "--platform", "shop", "--scope", "verify"],
            ["keys", "revoke", "k1"],
            ["recheck", "registry.csv"],
        ],
    )
    def test_says_to_run_db_upgrade(
        self, args: list[str], blank_database: dict[str, str], tmp_path: Path
    ) -> None:
        assert run(tmp_path, "demo-registry", "registry.csv", "--count", "5").returncode == 0
        line = one_line_failure(run(tmp_path, *args, env=blank_database))
        assert "run `certcheck db upgrade`" in line
        assert not (tmp_path / "certcheck.db").exists()

    def test_sync_says_to_run_db_upgrade(
        self, blank_database: dict[str, str], tmp_path: Path
    ) -> None:
        env = {**blank_database, "CERTCHECK_UPSTREAM_URL": "http://127.0.0.1:9"}
        line = one_line_failure(run(tmp_path, "sync", env=env))
        assert "run `certcheck db upgrade`" in line
        assert not (tmp_path / "certcheck.db").exists()

    def test_sync_without_an_upstream_names_the_setting(self, tmp_path: Path) -> None:
        line = one_line_failure(run(tmp_path, "sync"))
        assert "CERTCHECK_UPSTREAM_URL" in line
        assert sorted(tmp_path.iterdir()) == []

    def test_import_of_a_missing_file_creates_nothing(self, tmp_path: Path) -> None:
        line = one_line_failure(run(tmp_path, "import", str(tmp_path / "nonexistent.csv")))
        assert "nonexistent.csv: no such file" in line
        assert sorted(tmp_path.iterdir()) == []


class TestAfterDbUpgrade:
    @pytest.fixture
    def env(self, database_url: str, tmp_path: Path) -> dict[str, str]:
        env = {"CERTCHECK_DATABASE_URL": database_url}
        assert run(tmp_path, "demo-registry", "registry.csv", "--count", "50").returncode == 0
        imported = run(tmp_path, "import", "registry.csv", env=env)
        assert imported.returncode == 0, imported.stderr
        return env

    def test_import_of_garbage_fails_in_one_line(self, env: dict[str, str], tmp_path: Path) -> None:
        (tmp_path / "garbage.csv").write_text("cert_no,status,holder\nx,y,z\n\x00\x01\n")
        line = one_line_failure(run(tmp_path, "import", "garbage.csv", env=env))
        assert "TOO_MANY_BAD_ROWS" in line

    @pytest.mark.parametrize(
        ("args", "status", "decision"),
        [
            (["VALID", "--model", "XK-200"], 0, "allow"),
            (["garbage"], 3, "block"),
            (["VALID", "--model", "ZZ-999"], 4, "review"),
        ],
    )
    def test_verify_exit_status_is_the_decision(
        self, args: list[str], status: int, decision: str, env: dict[str, str], tmp_path: Path
    ) -> None:
        # The demo registry's showcase certificate: issued last year, valid, model XK-200.
        args = [a.replace("VALID", f"{date.today().year - 1}010901234567") for a in args]
        done = run(tmp_path, "verify", *args, env=env)
        assert done.returncode == status, done.stdout + done.stderr
        assert json.loads(done.stdout)["decision"] == decision

    def test_keys_create_prints_the_key_alone(self, env: dict[str, str], tmp_path: Path) -> None:
        done = run(
            tmp_path,
            *("keys", "create", "--platform", "s", "--scope", "verify", "--scope", "batch"),
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("cc_")
        assert done.stdout.count("\n") == 1


class TestServe:
    def test_port_in_use_fails_before_anything_is_printed(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = run(tmp_path, "serve", "--demo", "--port", str(port))
        assert done.stdout == ""
        line = one_line_failure(done)
        assert line.startswith(f"certcheck: port {port} is in use")
        assert not (
            tmp_path / "certcheck.db"
        ).exists()  # nothing loaded for a server that won't run

    @pytest.mark.e2e
    def test_every_line_of_a_multiprocess_server_is_json(self, tmp_path: Path) -> None:
        port = free_port()
        log = tmp_path / "serve.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [sys.executable, "-m", "certcheck", "serve", "--workers", "2", "--port", str(port)],
                cwd=tmp_path,
                env={**clean, "PYTHONPATH": str(TOP / "src")},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_healthy(f"http://127.0.0.1:{port}/healthz", server, seconds=120)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
        lines = log.read_text().splitlines()
        assert any("Started parent process" in line for line in lines)
        assert any("Running upgrade" in line for line in lines)  # alembic's, in JSON too
        for line in lines:
            assert "\x1b" not in line
            assert set(json.loads(line)) >= {"time", "level", "logger", "message"}, line

    @pytest.mark.e2e
    def test_a_multiprocess_server_removes_its_metrics_directory(self, tmp_path: Path) -> None:
        port, scratch = free_port(), tmp_path / "tmp"
        scratch.mkdir()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
        clean.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "certcheck", "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env={**clean, "PYTHONPATH": str(TOP / "src"), "TMPDIR": str(scratch)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/healthz", server, seconds=120)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            made = [p.name for p in scratch.iterdir()]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        assert metrics.status_code == 200
        assert len(made) == 1, made
        assert made[0].startswith("certcheck-metrics-")
        assert list(scratch.iterdir()) == []


@pytest.mark.e2e
@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_demo_curl_line_answers_the_moment_it_is_printed(workers: str, tmp_path: Path) -> None:
    # A newcomer pastes the line as soon as it shows: it must not meet a port that is bound
    # but not yet listening, or a worker still loading the app.
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "certcheck", "serve", "--demo", "--workers", workers],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(TOP / "src"), "CERTCHECK_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    try:
        line = next((line for line in server.stdout if "curl -s" in line), "")
        assert line, "serve --demo exited without printing its curl line"
        url, key, body = curl_parts(line)
        answer = httpx.post(
            url,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            content=body,
            timeout=10,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        server.stdout.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "allow"


def curl_parts(line: str) -> tuple[str, str, str]:
    """The URL, the key and the body of the banner's curl line."""
    url = line.split("curl -s ", 1)[1].split(" ", 1)[0]
    key = line.split("Bearer ", 1)[1].split("'", 1)[0]
    body = line.split("-d '", 1)[1].rsplit("'", 1)[0]
    return url, key, body


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], *, seconds: float) -> None:
    # Two workers start slowly on a busy machine: a generous deadline, polled.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"certcheck serve --workers 2 did not answer on {url} in {seconds} s")


def loaded(imports: str, modules: list[str], cwd: Path) -> list[str]:
    """Which of `modules` a new interpreter holds after `import {imports}`."""
    probe = f"import sys, {imports}; print([m for m in {modules!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(TOP / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: list[str] = ast.literal_eval(done.stdout.strip())
    return found


def test_the_command_line_starts_without_what_only_some_commands_use(tmp_path: Path) -> None:
    # Each costs every command its import time at start (an import of a million rows too):
    # the server's stack, the sync's and receipts' HTTP client, the terminal's progress bar,
    # Alembic (only `db upgrade` and `serve` migrate), the rate limiter (only `serve` limits).
    heavy = [
        *("fastapi", "uvicorn", "httpx", "rich", "cryptography", "certcheck.app"),
        *("alembic", "limits"),
    ]
    assert loaded("certcheck.cli", heavy, tmp_path) == []


def test_a_server_process_holds_no_alembic(tmp_path: Path) -> None:
    # A worker keeps what it imports: Alembic (with mako and pygments, ~10 MiB) is loaded only
    # when a database needs its migrations (db/revision.py).
    server = "certcheck.app, certcheck.startup, certcheck.serving, certcheck.cli.commands"
    assert loaded(server, ["alembic", "mako"], tmp_path) == []


class TestProgress:
    def test_on_a_terminal_draws_a_bar(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        with progress("importing r.csv", "bytes", total=200) as update:
            update(100)
        assert "importing r.csv" in capsys.readouterr().err

    def test_without_a_terminal_prints_plain_lines_now_and_then(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with progress("importing r.csv", "bytes", total=200, every=0) as update:
            update(50)
            update(100)
        with progress("checking l.csv", "lines", every=3600) as update:
            update(10)
        assert capsys.readouterr().err.splitlines() == [
            "certcheck: importing r.csv: 50 bytes (25%)",
            "certcheck: importing r.csv: 100 bytes (50%)",
        ]
