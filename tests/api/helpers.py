"""Helpers shared by the API tests: problem documents, snapshot CSV, re-check job round trips."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.schemas import RecheckResult
from certcheck.config import Settings
from tests.conftest import load
from tests.factories import cert

PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"
CSV_HEADER = "cert_no,status,holder,product_code,models\n"
JOB_REGISTRY_SIZE = 50  # number(0) ... number(49) are in the registry of the job tests


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body


def number(i: int) -> str:
    return f"2024010901{i:06d}"


def job_settings(database_url: str) -> Settings:
    """Small chunks and fast polls, so a job runs several chunks in a test's time."""
    return Settings(
        database_url=database_url, max_registry_age=3600, job_chunk_lines=4, job_poll_interval=0.1
    )


async def load_job_registry(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, [cert(number(i)) for i in range(JOB_REGISTRY_SIZE)])
    await client.get("/readyz")  # the store adopts the registry now, not at its next poll


async def submit(
    client: httpx.AsyncClient,
    app: FastAPI,
    headers: dict[str, str],
    body: bytes,
    media: str = NDJSON,
    **extra: str,
) -> httpx.Response:
    url = app.url_path_for("create_recheck_job")
    return await client.post(url, content=body, headers={**headers, "Content-Type": media, **extra})


async def finished(
    client: httpx.AsyncClient, location: str, headers: dict[str, str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(location, headers=headers)).json()
        if job["status"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job did not finish: {job}")


async def results(
    client: httpx.AsyncClient, location: str, headers: dict[str, str], decision: str | None = None
) -> list[dict[str, Any]]:
    params = {"decision": decision} if decision else {}
    response = await client.get(f"{location}/results", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NDJSON
    assert response.text == "" or response.text.endswith("\n")
    lines = response.text.splitlines()
    for line in lines:
        RecheckResult.model_validate_json(line)  # every line is what the contract says
    return [json.loads(line) for line in lines]


async def run_job(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: bytes, **how: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = await submit(client, app, headers, body, **how)
    assert created.status_code == 202, created.text
    job = await finished(client, created.headers["location"], headers)
    assert job["status"] == "done", job
    return job, await results(client, created.headers["location"], headers)


def ndjson(*items: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)
