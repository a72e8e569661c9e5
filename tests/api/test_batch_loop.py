"""A 10,000-item batch lets other requests run while it is parsed and validated, and its
validation errors name the same places FastAPI's one-piece validation does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api import strict_json
from certcheck.api.schemas import BatchRequest
from certcheck.checking import SLICE, Check, Checker
from certcheck.verification.records import ListingClaims
from tests.api.helpers import assert_problem
from tests.conftest import load
from tests.factories import cert

ITEMS = 10_000


def number(i: int) -> str:
    return f"2024010901{i:06d}"


@pytest.fixture
async def fifty(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Fifty certificates in the registry, and the app ready to answer."""
    await load(engine, [cert(number(i)) for i in range(50)])
    await client.get("/readyz")


async def test_other_requests_run_while_a_10k_batch_is_parsed_and_validated(
    client: httpx.AsyncClient,
    app: FastAPI,
    headers: dict[str, str],
    fifty: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turns = 0

    async def other_request() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    # The turns other requests get from the start of parsing to the endpoint's check.
    parsing: list[int] = []
    validated: list[int] = []
    loads = strict_json.loads_strict
    check = Checker.check

    def parse(body: bytes, *, max_items: int | None = None) -> Any:
        parsing.append(turns)
        return loads(body, max_items=max_items)

    async def checked(
        self: Checker, listings: Sequence[ListingClaims], **options: Any
    ) -> list[Check]:
        validated.append(turns)
        return await check(self, listings, **options)

    monkeypatch.setattr(strict_json, "loads_strict", parse)
    monkeypatch.setattr(Checker, "check", checked)
    body = json.dumps({"items": [{"cert_no": number(i), "model": "XK-200"} for i in range(ITEMS)]})
    other = asyncio.create_task(other_request())
    response = await client.post(
        app.url_path_for("verify_batch"),
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    other.cancel()
    assert response.status_code == 200, response.text
    # In one piece, the body was parsed and validated before anything else could run (0.1-0.5 s
    # of a core for 10,000 items, most of it in the garbage collector); now other requests get
    # a turn between every two slices.
    assert validated[0] - parsing[0] >= ITEMS // SLICE - 1


def _fastapi_errors(body: Any) -> list[dict[str, Any]]:
    """The errors FastAPI's own validation of the whole body reports (its loc starts "body")."""
    try:
        TypeAdapter(BatchRequest).validate_python(body, from_attributes=True)
    except ValidationError as exc:
        return [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
    raise AssertionError("the body is valid")


_GOOD = {"cert_no": number(1)}


@pytest.mark.parametrize(
    "body",
    [
        {"items": [_GOOD, {"cert_no": 7}]},
        {"items": [_GOOD] * 600 + [{"cert_no": 7, "model": 1}] + [_GOOD] * 10 + [{"x": 1}]},
        {"items": [1, _GOOD, "x", None, [], {"cert_no": "1" * 65}] + [_GOOD] * 300 + [2]},
        {"items": [_GOOD, {"cert_no": 7}], "extra": 1},
        {"items": [_GOOD] * 3, "extra": 1},
        {"items": []},
        {"items": "x"},
        {"items": None},
        {},
        [],
    ],
    ids=[
        "one-bad",
        "across-slices",
        "not-objects",
        "bad-and-extra",
        "extra",
        "empty",
        "not-array",
        "null",
        "no-items",
        "not-object",
    ],
)
async def test_validation_errors_are_fastapis(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: Any
) -> None:
    response = await client.post(app.url_path_for("verify_batch"), json=body, headers=headers)
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    assert problem["errors"] == _fastapi_errors(body)


async def test_a_process_decides_one_batch_at_a_time(
    client: httpx.AsyncClient,
    app: FastAPI,
    headers: dict[str, str],
    fifty: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each check's start and end, as turns of a counter every check moves on: two batches
    # decided at once interleave their slices, and so their spans.
    spans: list[tuple[int, int]] = []
    clock = iter(range(1_000_000))
    check = Checker.check

    async def checked(
        self: Checker, listings: Sequence[ListingClaims], **options: Any
    ) -> list[Check]:
        began = next(clock)
        done = await check(self, listings, **options)
        spans.append((began, next(clock)))
        return done

    monkeypatch.setattr(Checker, "check", checked)

    async def batch(offset: int) -> httpx.Response:
        items = [{"cert_no": number((offset + i) % 50)} for i in range(2 * SLICE * 4)]
        return await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )

    first, second = await asyncio.gather(batch(0), batch(7))
    assert [first.status_code, second.status_code] == [200, 200]
    assert first.json()["results"][0]["cert_no"] == number(0)
    assert second.json()["results"][0]["cert_no"] == number(7)
    first_span, second_span = sorted(spans)
    assert first_span[1] < second_span[0], spans  # the second began once the first was done
