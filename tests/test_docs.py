"""The docs stand alone and cannot drift from the code they describe."""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from certcheck.config import Settings
from certcheck.verification.records import Reason

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "certcheck"
# Spelled in pieces so that this file does not trip its own check.
OUTSIDE_PATHS = ("../" + "shared", "shared" + "/spec")
# Directories that are not the project's own files (tool caches, environments, builds).
_SKIPPED_DIRS = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".import_linter_cache",
    "build",
    "dist",
    "node_modules",
}


def _project_files() -> Iterator[Path]:
    for directory, subdirs, names in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in _SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in names:
            yield Path(directory, name)


def _settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", DOCS / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _api_doc() -> str:
    return (DOCS / "api.md").read_text(encoding="utf-8")


class TestStandsAlone:
    def test_no_file_points_outside_the_repository(self) -> None:
        offenders = []
        for path in _project_files():
            content = path.read_bytes()
            offenders += [
                f"{path.relative_to(ROOT)}: {needle}"
                for needle in OUTSIDE_PATHS
                if needle.encode() in content
            ]
        assert offenders == [], "say it in the project's own words, or link docs/"

    def test_the_walk_sees_the_project(self) -> None:
        seen = {path.relative_to(ROOT).as_posix() for path in _project_files()}
        assert {"README.md", "docs/api.md", "src/certcheck/cli/main.py", ".ci/run"} <= seen

    def test_readme_links_resolve(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        targets = re.findall(r"\]\((docs/[^)#\s]+)", readme)
        assert targets, "the README links the docs"
        missing = [target for target in targets if not (ROOT / target).is_file()]
        assert missing == []


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    return headings | set(re.findall(r'<a id="([^"]+)"></a>', text))


class TestLinks:
    @pytest.mark.parametrize(
        "page",
        [*sorted(DOCS.glob("*.md")), ROOT / "README.md", ROOT / "bench" / "README.md"],
        ids=lambda p: str(p.relative_to(ROOT)),
    )
    def test_links_between_docs_resolve(self, page: Path) -> None:
        broken = []
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?(?:#([^)\s]+))?\)", page.read_text()):
            linked = (page.parent / target) if target else page
            if not linked.is_file():
                broken.append(f"{target}: no such file")
            elif anchor and anchor not in _anchors(linked.read_text(encoding="utf-8")):
                broken.append(f"{target}#{anchor}: no such heading or anchor")
        assert broken == []


class TestApiDoc:
    @pytest.mark.parametrize("reason", list(Reason))
    def test_every_reason_is_documented_with_its_decision(self, reason: Reason) -> None:
        row = f"| `{reason.value}` | `{reason.verdict.value}` |"
        assert row in _api_doc(), f"docs/api.md lacks the reasons table row {row!r}"

    def test_every_problem_code_is_documented(self) -> None:
        source = "\n".join(path.read_text(encoding="utf-8") for path in SRC.rglob("*.py"))
        patterns = (
            r'code(?::\s*str)?\s*=\s*"([A-Z][A-Z_]+)"',  # class attributes and code="..."
            r'\d{3}: "([A-Z][A-Z_]+)"',  # the fallback code of each HTTP status
            r'problem\(\s*\d{3},\s*"([A-Z][A-Z_]+)"',
        )
        codes = {code for pattern in patterns for code in re.findall(pattern, source)}
        assert {"REGISTRY_UNAVAILABLE", "TOO_MANY_REMOVALS", "INVALID_JSON"} <= codes
        doc = _api_doc()
        missing = sorted(code for code in codes if f"`{code}`" not in doc)
        assert missing == [], "docs/api.md, section Errors, lacks these problem codes"


class TestSettingsDoc:
    def test_every_setting_is_in_the_doc(self) -> None:
        doc = (DOCS / "settings.md").read_text(encoding="utf-8")
        missing = [
            f"CERTCHECK_{name.upper()}"
            for name in Settings.model_fields
            if f"`CERTCHECK_{name.upper()}`" not in doc
        ]
        assert missing == [], "run `python docs/settings_table.py` and describe them there"

    def test_the_table_is_what_the_model_says(self) -> None:
        table = _settings_table()
        doc = (DOCS / "settings.md").read_text(encoding="utf-8")
        assert table.current(doc) == table.render(), "run `python docs/settings_table.py`"

    def test_every_setting_has_a_meaning(self) -> None:
        table = _settings_table()
        undocumented = [
            name for name, info in Settings.model_fields.items() if not table.meaning_of(name, info)
        ]
        assert undocumented == [], "describe them in docs/settings_table.py (DOCUMENTED)"


class TestOperationsDoc:
    def test_every_alert_has_a_runbook_section(self) -> None:
        rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
        alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
        doc = (DOCS / "operations.md").read_text(encoding="utf-8")
        missing = [alert for alert in alerts if f'<a id="{alert.lower()}"></a>' not in doc]
        assert alerts
        assert missing == [], "docs/operations.md needs a runbook section per alert"


def _import_contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


class TestArchitectureDoc:
    def test_every_module_is_on_the_map(self) -> None:
        doc = (DOCS / "architecture.md").read_text(encoding="utf-8")
        modules = [p for p in SRC.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
        missing = [str(p.relative_to(SRC)) for p in modules if f"`{p.name}`" not in doc]
        assert len(modules) > 100
        assert missing == [], "docs/architecture.md should say what these modules hold"

    def test_the_layers_are_the_ones_lint_imports_enforces(self) -> None:
        contracts = _import_contracts()
        (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
        written = " > ".join(
            f"`{name}`" if i == 0 else f"`{name.removeprefix('certcheck')}`"
            for i, name in enumerate(layers)
        )
        assert written in (DOCS / "architecture.md").read_text(encoding="utf-8")

    def test_what_verification_may_not_import_is_the_contract(self) -> None:
        contracts = _import_contracts()
        (forbidden,) = [c["forbidden_modules"] for c in contracts if c["type"] == "forbidden"]
        (row,) = [
            line
            for line in (DOCS / "architecture.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| verification is pure |")
        ]
        named = set(re.findall(r"`([\w.]+)`", row))
        written = {f"certcheck{name}" if name.startswith(".") else name for name in named}
        assert written - {"certcheck.verification"} == set(forbidden)

    def test_the_readme_layout_names_every_top_level_module_and_package(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        layout = readme.split("## Layout", 1)[1].split("```")[1]
        entries = [
            p.name + ("/" if p.is_dir() else "")
            for p in SRC.iterdir()
            if p.name not in ("__init__.py", "__main__.py", "py.typed", "__pycache__")
            and p.suffix != ".so"  # an editable install's compiled modules (hatch_build.py)
        ]
        missing = [n for n in entries if not re.search(rf"^  {re.escape(n)}\s", layout, re.M)]
        assert len(entries) > 20
        assert missing == []
