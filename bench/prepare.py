"""What the scenarios run against, made once per run and shared by every round: the snapshot,
a served registry per database with a key, request bodies and re-check listings."""

from __future__ import annotations

import gzip
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import BenchError, cli, copy_database, database_url, drop_database
from bench.recheck_workload import registry_numbers, write_listings

_Certificate = tuple[str, str, list[str]]


@dataclass(frozen=True, slots=True)
class Sizes:
    certificates: int
    hot: int  # numbers of the cache-warm set
    cold_bodies: int  # random numbers drawn for the cache-cold runs
    batch_items: int
    batch_requests: int  # per batch measurement, over two connections
    recheck_lines: int
    seconds: float  # each closed- or open-loop measurement
    warmup: float


FULL = Sizes(1_000_000, 10_000, 300_000, 10_000, 20, 1_000_000, 10.0, 2.0)
QUICK = Sizes(20_000, 2_000, 20_000, 10_000, 4, 20_000, 2.0, 1.0)


@dataclass(frozen=True, slots=True)
class Registry:
    """A migrated database holding the snapshot, and a key with the verify and batch scopes."""

    kind: str
    env: dict[str, str]
    key: str


@dataclass
class Workload:
    workdir: Path
    sizes: Sizes
    settings: dict[str, str]  # CERTCHECK_ settings for every certcheck process
    kept_snapshot: Path | None = None  # reused if it exists, else written there for next time
    _snapshot: Path | None = None
    _certificates: list[_Certificate] | None = None
    _registries: dict[str, Registry] = field(default_factory=dict)
    _files: dict[str, Path] = field(default_factory=dict)
    _urls: list[str] = field(default_factory=list)
    _templates: dict[str, str] = field(default_factory=dict)

    def env(self, url: str) -> dict[str, str]:
        return {**self.settings, "CERTCHECK_DATABASE_URL": url}

    def snapshot(self) -> Path:
        if self._snapshot is None:
            started = time.perf_counter()
            path = self.kept_snapshot or self.workdir / "registry.csv.gz"
            if path.exists():
                with gzip.open(path, "rb") as rows:
                    found = sum(1 for _ in rows) - 1  # the header
                if found != self.sizes.certificates:
                    raise BenchError(
                        f"{path} holds {found:,} certificates, not the run's "
                        f"{self.sizes.certificates:,} (--certificates)"
                    )
                note(f"reused {path}", started)
            else:
                cli({}, "demo-registry", str(path), "--count", str(self.sizes.certificates))
                note(f"wrote a {self.sizes.certificates:,}-certificate snapshot", started)
            self._snapshot = path
        return self._snapshot

    def scratch_database(self, kind: str, label: str) -> str:
        """A new, migrated, empty database; the caller drops it (`drop`). Migrated once per
        run and copied after that, so a measurement does not wait for Alembic."""
        template = self._templates.get(kind)
        if template is None:
            template = database_url(kind, self.workdir, f"template_{kind}")
            cli(self.env(template), "db", "upgrade")
            self._templates[kind] = template
            self._urls.append(template)
        return copy_database(template, kind, self.workdir, label)

    def drop(self, url: str) -> None:
        drop_database(url)
        if url.startswith("sqlite"):
            Path(url.split(":///", 1)[1]).unlink(missing_ok=True)

    def registry(self, kind: str) -> Registry:
        if kind not in self._registries:
            started = time.perf_counter()
            url = self.scratch_database(kind, f"served_{kind}")
            self._urls.append(url)
            env = self.env(url)
            cli(env, "import", str(self.snapshot()))
            scopes = ("--scope", "verify", "--scope", "batch")
            key = cli(env, "keys", "create", "--platform", "bench", *scopes).strip()
            self._registries[kind] = Registry(kind, env, key)
            note(f"loaded the {kind} registry", started)
        return self._registries[kind]

    def bodies(self, name: str) -> Path:
        """One request body per line: `hot`, `cold`, `batch-warm` or `batch-cold`."""
        if name not in self._files:
            certs = self._certs()
            rng = random.Random(f"{name}-20261202")
            if name == "hot":
                lines = [_verify(c) for c in self._hot(certs)]
            elif name == "cold":
                lines = [_verify(rng.choice(certs)) for _ in range(self.sizes.cold_bodies)]
            elif name == "batch-warm":
                lines = [_batch([_verify(c) for c in self._hot(certs)][: self.sizes.batch_items])]
            else:
                n = self.sizes.batch_items
                count = self.sizes.batch_requests  # never the same number twice: cold
                lines = [
                    _batch([_verify(c) for c in rng.choices(certs, k=n)]) for _ in range(count)
                ]
            path = self.workdir / f"bodies-{name}.ndjson"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            self._files[name] = path
        return self._files[name]

    def distinct_batches(self, count: int) -> Path:
        """Batch bodies (one a line) asking for `count` different certificates of the
        registry (all of them if it holds fewer), each once: what fills a cache."""
        name = f"batch-distinct-{count}"
        if name not in self._files:
            certs = self._certs()
            chosen = random.Random(f"{name}-20261202").sample(certs, min(count, len(certs)))
            size = self.sizes.batch_items
            lines = [
                _batch([_verify(c) for c in chosen[start : start + size]])
                for start in range(0, len(chosen), size)
            ]
            path = self.workdir / f"bodies-{name}.ndjson"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            self._files[name] = path
        return self._files[name]

    def listings(self) -> Path:
        if "listings" not in self._files:
            path = self.workdir / "listings.ndjson"
            write_listings(path, self.sizes.recheck_lines, self._certs())
            self._files["listings"] = path
        return self._files["listings"]

    def close(self) -> None:
        for url in self._urls:
            drop_database(url)

    def _certs(self) -> list[_Certificate]:
        if self._certificates is None:
            self._certificates = registry_numbers(self.snapshot())
        return self._certificates

    def _hot(self, certs: list[_Certificate]) -> list[_Certificate]:
        return random.Random(20261202).sample(certs, min(self.sizes.hot, len(certs)))


def _verify(cert: _Certificate) -> str:
    cert_no, product_code, models = cert
    return json.dumps({"cert_no": cert_no, "product_code": product_code, "model": models[0]})


def _batch(items: list[str]) -> str:
    return '{"items":[' + ",".join(items) + "]}"


def note(what: str, started: float) -> None:
    print(f"{what}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
