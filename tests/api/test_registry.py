"""The registry endpoints: certificates by number, state, change feed, snapshot upload."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.keys import Scope
from certcheck.registry.lock import registry_writer
from certcheck.snapshots import parser_process
from certcheck.snapshots.reader import certificate_to_snapshot_dict
from certcheck.verification.records import Status
from tests.api.helpers import CSV_HEADER, assert_problem
from tests.conftest import load, make_key
from tests.e2e.servers import free_port
from tests.e2e.upstream import running_fake
from tests.factories import cert
from tests.feeds import items_of

NUMBER = "2024010901234567"


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, [cert(NUMBER), cert("2024010901000002", holder="Other Co.")])
    await client.get("/readyz")


@pytest.mark.usefixtures("loaded")
class TestGetCertificate:
    async def test_found_by_messy_number(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        path = app.url_path_for("get_certificate", cert_no="CCC:2024-0109-0123-4567")
        response = await client.get(path, headers=headers)
        assert response.status_code == 200
        assert response.json() == {
            **certificate_to_snapshot_dict(cert(NUMBER)),
            "body_code": "01",
        }

    async def test_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        path = app.url_path_for("get_certificate", cert_no="2024010901999999")
        assert_problem(await client.get(path, headers=headers), 404, "NOT_FOUND")

    async def test_malformed_explains_the_format(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        path = app.url_path_for("get_certificate", cert_no="2024-01-09-0123")
        body = assert_problem(await client.get(path, headers=headers), 422, "MALFORMED")
        assert "16 digits" in body["detail"]

    async def test_malformed_says_what_is_wrong_as_verify_does(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        path = app.url_path_for("get_certificate", cert_no="2099999999999999")
        body = assert_problem(await client.get(path, headers=headers), 422, "MALFORMED")
        assert body["detail"].startswith("2099999999999999: year 2099 is in the future. ")
        verify = {"cert_no": "2099999999999999"}
        answer = await client.post(app.url_path_for("verify_one"), json=verify, headers=headers)
        assert answer.json()["detail"] == body["detail"]


@pytest.mark.usefixtures("loaded")
class TestRegistryInfo:
    async def test_counts_and_last_run(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (await client.get(app.url_path_for("registry_info"), headers=headers)).json()
        assert body["certificates"] == 2
        assert body["by_status"] == {
            "valid": 2,
            "suspended": 0,
            "revoked": 0,
            "cancelled": 0,
            "expired": 0,
        }
        assert body["source"] == "test"
        assert body["ready"] is True
        assert body["last_sync"]["outcome"] == "success"
        assert body["last_sync"]["added"] == 2
        assert body["catalogue"]["effective_from"] == "2023-09-05"

    async def test_an_import_is_not_reported_as_a_sync(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (await client.get(app.url_path_for("registry_info"), headers=headers)).json()
        assert body["last_sync"]["kind"] == "import"


class TestChanges:
    async def test_paged_oldest_first(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        engine: AsyncEngine,
        headers: dict[str, str],
    ) -> None:
        await load(engine, [cert(NUMBER), cert("2024010901000002")])
        await load(engine, [cert(NUMBER, status=Status.REVOKED), cert("2024010901000002")])
        url = app.url_path_for("list_changes")
        first = (await client.get(url, params={"limit": 2}, headers=headers)).json()
        assert [c["new_status"] for c in first["changes"]] == ["valid", "valid"]
        rest = (await client.get(url, params={"since": first["next"]}, headers=headers)).json()
        assert [(c["cert_no"], c["old_status"], c["new_status"]) for c in rest["changes"]] == [
            (NUMBER, "valid", "revoked")
        ]
        empty = (await client.get(url, params={"since": rest["next"]}, headers=headers)).json()
        assert empty == {"changes": [], "next": rest["next"]}

    @pytest.mark.parametrize("since", ["abc", "-1", "\uff11\uff12", "9" * 30])
    async def test_bad_cursor(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], since: str
    ) -> None:
        response = await client.get(
            app.url_path_for("list_changes"), params={"since": since}, headers=headers
        )
        assert_problem(response, 422, "INVALID_CURSOR")


@pytest.fixture(params=["in-process", "parser-process"])
def parsed_where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the upload's rows are parsed: every upload through a second process, or none."""
    monkeypatch.setattr(
        parser_process, "PROCESS_FROM_BYTES", 0 if request.param == "parser-process" else 1 << 62
    )
    return str(request.param)


@pytest.mark.usefixtures("parsed_where")
class TestImportUpload:
    async def test_csv_upload_replaces_the_registry_at_once(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = CSV_HEADER + f"{NUMBER},有效,Example Co.,,XK-1|XK-2\n"
        response = await client.post(
            app.url_path_for("import_registry"),
            content=body.encode(),
            headers={**headers, "Content-Type": "text/csv"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["added"] == 1
        verify = await client.post(
            app.url_path_for("verify_one"),
            json={"cert_no": NUMBER, "model": "xk-2"},
            headers=headers,
        )
        assert verify.json()["reason"] == "VALID"

    async def test_gzip_jsonl_upload(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        line = f'{{"cert_no": "{NUMBER}", "status": "revoked", "holder": "X"}}\n'
        response = await client.post(
            app.url_path_for("import_registry"),
            content=gzip.compress(line.encode()),
            headers={**headers, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 200, response.text
        verify = await client.post(
            app.url_path_for("verify_one"), json={"cert_no": NUMBER}, headers=headers
        )
        assert verify.json()["reason"] == "REVOKED"

    async def test_bad_rows_are_reported_with_lines(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        engine: AsyncEngine,
    ) -> None:
        admin = {"Authorization": f"Bearer {await make_key(engine, Scope.ADMIN)}"}
        good = "".join(f"2024010901{i:06d},valid,Co.,,\n" for i in range(200))
        body = CSV_HEADER + good + "2024010901999999,bogus,Co.,,\n"
        response = await client.post(
            app.url_path_for("import_registry"),
            content=body.encode(),
            headers={**admin, "Content-Type": "text/csv"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected_rows"] == 1
        assert response.json()["errors"][0]["line"] == 202

    @pytest.mark.parametrize(
        "bad_row",
        ["{n},bogus,Co.,,\n", "{n},valid,Co.,,,extra\n", "{n},valid,,,\n"],
        ids=["unknown-status", "ragged", "no-holder"],
    )
    async def test_an_unreadable_row_keeps_its_certificate(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], bad_row: str
    ) -> None:
        url = app.url_path_for("import_registry")
        upload = {**headers, "Content-Type": "text/csv"}
        numbers = [f"2024010901{i:06d}" for i in range(200)]
        first = CSV_HEADER + "".join(f"{n},valid,Co.,,\n" for n in numbers)
        assert (await client.post(url, content=first.encode(), headers=upload)).status_code == 200
        changes = app.url_path_for("list_changes")
        cursor = (await client.get(changes, params={"limit": 1000}, headers=headers)).json()["next"]
        second = CSV_HEADER + "".join(
            bad_row.format(n=n) if i == 10 else f"{n},valid,Co.,,\n" for i, n in enumerate(numbers)
        )

        response = await client.post(url, content=second.encode(), headers=upload)

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["rejected_rows"], body["removed"], body["changed"]) == (1, 0, 0)
        assert body["errors"][0]["line"] == 12
        feed = await client.get(changes, params={"since": cursor}, headers=headers)
        assert feed.json()["changes"] == []
        verify = await client.post(
            app.url_path_for("verify_one"), json={"cert_no": numbers[10]}, headers=headers
        )
        assert (verify.json()["decision"], verify.json()["reason"]) == ("allow", "VALID")

    async def test_unsupported_type(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            app.url_path_for("import_registry"),
            content=b"x",
            headers={**headers, "Content-Type": "application/pdf"},
        )
        assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")

    async def test_unreadable_file_leaves_the_registry(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            app.url_path_for("import_registry"),
            content=b"no,header,we,know\n1,2,3,4\n",
            headers={**headers, "Content-Type": "text/csv"},
        )
        assert_problem(response, 422, "INVALID_SNAPSHOT")
        info = (await client.get(app.url_path_for("registry_info"), headers=headers)).json()
        assert info["certificates"] == 0
        assert info["last_sync"]["outcome"] == "failed"

    @pytest.mark.usefixtures("loaded")
    async def test_mass_removal_refused_unless_forced(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        url = app.url_path_for("import_registry")
        body = (CSV_HEADER + f"{NUMBER},valid,Co.,,\n").encode()
        upload = {**headers, "Content-Type": "text/csv"}
        refused = await client.post(url, content=body, headers=upload)
        assert_problem(refused, 409, "TOO_MANY_REMOVALS")
        forced = await client.post(url, params={"force": "true"}, content=body, headers=upload)
        assert forced.status_code == 200
        assert forced.json()["removed"] == 1


class TestProbes:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}

    @pytest.mark.usefixtures("loaded")
    async def test_readyz_when_ready(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready",
            "checks": {"database": "ok", "registry": "ok"},
        }


@asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app built with `settings` (here: an upstream of each test's choosing)."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://certcheck.test") as c:
            yield c


def with_upstream(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"upstream_url": url, "sync_max_attempts": 1})


class TestSyncEndpoint:
    async def test_needs_the_admin_scope(
        self, client: httpx.AsyncClient, app: FastAPI, verify_only: dict[str, str]
    ) -> None:
        response = await client.post(app.url_path_for("sync_registry"), headers=verify_only)
        assert_problem(response, 403, "FORBIDDEN")

    async def test_without_an_upstream(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(app.url_path_for("sync_registry"), headers=headers)
        body = assert_problem(response, 409, "UPSTREAM_NOT_CONFIGURED")
        assert "CERTCHECK_UPSTREAM_URL" in body["detail"]

    async def test_while_another_import_or_sync_runs(
        self, settings: Settings, engine: AsyncEngine, app: FastAPI, headers: dict[str, str]
    ) -> None:
        upstream = with_upstream(settings, "http://127.0.0.1:9")
        async with client_of(upstream) as client, registry_writer(engine):
            response = await client.post(app.url_path_for("sync_registry"), headers=headers)
        assert_problem(response, 409, "SYNC_IN_PROGRESS")

    async def test_an_unreachable_upstream(
        self, settings: Settings, app: FastAPI, headers: dict[str, str]
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        async with client_of(with_upstream(settings, url)) as client:
            response = await client.post(app.url_path_for("sync_registry"), headers=headers)
            info = (await client.get(app.url_path_for("registry_info"), headers=headers)).json()
        body = assert_problem(response, 502, "SYNC_FAILED")
        assert body["detail"].startswith("ConnectError")
        assert (info["last_sync"]["outcome"], info["last_sync"]["error"]) == (
            "failed",
            body["detail"],
        )

    @pytest.mark.usefixtures("loaded")
    async def test_answers_from_the_new_registry_at_once(
        self, settings: Settings, app: FastAPI, headers: dict[str, str], tmp_path: Path
    ) -> None:
        revoked = items_of([cert(NUMBER, status=Status.REVOKED)])
        with running_fake(tmp_path, revoked) as fake:
            async with client_of(with_upstream(settings, fake.base)) as client:
                verify = {"cert_no": NUMBER}
                before = await client.post(
                    app.url_path_for("verify_one"), json=verify, headers=headers
                )
                response = await client.post(app.url_path_for("sync_registry"), headers=headers)
                after = await client.post(
                    app.url_path_for("verify_one"), json=verify, headers=headers
                )
                info = (await client.get(app.url_path_for("registry_info"), headers=headers)).json()
        assert (before.json()["reason"], after.json()["reason"]) == ("VALID", "REVOKED")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["outcome"], body["pages"], body["changed"], body["errors"]) == (
            "success",
            1,
            1,
            [],
        )
        assert body["cursor"] == revoked[0]["updated_at"].replace(".000000Z", "Z")
        assert (info["source"], info["last_sync"]["outcome"]) == ("upstream:127.0.0.1", "success")

    @pytest.mark.usefixtures("loaded")
    async def test_the_last_run_says_it_was_a_sync(
        self, settings: Settings, app: FastAPI, headers: dict[str, str], tmp_path: Path
    ) -> None:
        with running_fake(tmp_path, items_of([cert(NUMBER)])) as fake:
            async with client_of(with_upstream(settings, fake.base)) as client:
                before = await client.get(app.url_path_for("registry_info"), headers=headers)
                await client.post(app.url_path_for("sync_registry"), headers=headers)
                after = await client.get(app.url_path_for("registry_info"), headers=headers)
        assert before.json()["last_sync"]["kind"] == "import"
        assert (after.json()["last_sync"]["kind"], after.json()["last_sync"]["outcome"]) == (
            "sync",
            "success",
        )
