"""The installed package: the request path's modules are mypyc's extensions (hatch_build.py)."""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path

import pytest

from certcheck import serving
from tests.conftest import IN_CI, source_of, stale_extensions

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]["include"]
    return [path.removeprefix("src/").removesuffix(".py").replace("/", ".") for path in listed]


def test_every_listed_module_exists() -> None:
    modules = compiled_modules()
    assert "certcheck.api.verify_lane" in modules
    for module in modules:
        assert (ROOT / "src" / (module.replace(".", "/") + ".py")).is_file(), module


@pytest.mark.skipif(bool(os.environ.get("CERTCHECK_PURE_PYTHON")), reason="plain Python asked for")
def test_the_request_path_runs_compiled() -> None:
    modules = compiled_modules()
    plain = sorted(name for name in modules if not serving.compiled(importlib.import_module(name)))
    if plain and not IN_CI and len(plain) == len(modules):
        pytest.skip("installed as plain Python: no C compiler or Python headers at install time")
    assert plain == []
    assert serving.request_path_build() == "compiled by mypyc"


def test_a_source_changed_after_its_compilation_is_named() -> None:
    package = Path(importlib.import_module("certcheck").__file__ or "").parent
    extensions = sorted(package.rglob("*.so"))
    if not extensions:
        pytest.skip("installed as plain Python: nothing compiled to go stale")
    source = source_of(extensions[0])
    before = source.stat()
    assert stale_extensions() == []
    try:
        os.utime(source, (before.st_atime, extensions[0].stat().st_mtime + 10))
        assert stale_extensions() == [str(source.relative_to(package.parent))]
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert stale_extensions() == []
